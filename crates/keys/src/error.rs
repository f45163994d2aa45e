use core::fmt;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What can go wrong with keys, stores and the CA.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase or PIN was wrong. Counted as a failed verification.
    WrongSecret,
    /// Anything else, already worded for a person.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongSecret => f.write_str("wrong passphrase or PIN"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}
