use core::fmt;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What can go wrong with keys, stores and the CA.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase or PIN was wrong. Counted as a failed verification.
    WrongSecret,
    /// The token shows its keys only after login: ask for the PIN and try
    /// again with it.
    PinNeeded,
    /// The CA's policy refuses this certificate; the text says which rule.
    PolicyDenied(String),
    /// Anything else, already worded for a person.
    Other(String),
}

impl Error {
    /// An [`Error::Other`] from anything printable.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

impl From<vmux_state::Error> for Error {
    fn from(e: vmux_state::Error) -> Self {
        Error::Other(e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongSecret => f.write_str("wrong passphrase or PIN"),
            Error::PinNeeded => f.write_str("the token shows its keys only after its PIN is given"),
            Error::PolicyDenied(m) => write!(f, "the CA policy refuses this certificate: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}
