//! What can go wrong with the signer's own state (named host keys, key
//! policies), worded for the person who has to fix it.

use std::fmt;
use std::path::PathBuf;

/// Result type of the signer's state files.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or locking a state file failed.
    State(vmux_link::Error),
    /// A state file does not read as this build writes it.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file given on the command line could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is larger than it may be.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        max: u64,
    },
    /// Input that cannot be used (a host name, a policy word, a key).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::State(e) => write!(f, "{e}"),
            Error::Corrupt { path, why } => write!(
                f,
                "{}: {why}; fix or remove the file (it holds only what `vmux hostkeys` and `vmux key policy` wrote)",
                path.display()
            ),
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::TooLarge { path, max } => write!(
                f,
                "{} is larger than {} MiB, more than vmux reads there; move it aside (vmux never writes one that large)",
                path.display(),
                max >> 20
            ),
            Error::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

impl From<vmux_state::Error> for Error {
    fn from(e: vmux_state::Error) -> Self {
        match e {
            vmux_state::Error::TooLarge { path, max } => Error::TooLarge { path, max },
            e => Error::State(e.into()),
        }
    }
}

impl From<vmux_link::Error> for Error {
    fn from(e: vmux_link::Error) -> Self {
        Error::State(e)
    }
}
