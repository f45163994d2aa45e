use core::fmt;
use std::io;
use std::path::PathBuf;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What can go wrong with a state file.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file or directory could not be read, written or locked.
    Io { path: PathBuf, source: io::Error },
    /// The file is larger than a file of its kind may be; it was not read.
    TooLarge { path: PathBuf, max: u64 },
}

impl Error {
    /// The file it is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. } | Error::TooLarge { path, .. } => path,
        }
    }

    /// What is wrong, without the file's name.
    pub fn reason(&self) -> String {
        match self {
            Error::Io { source, .. } => source.to_string(),
            Error::TooLarge { max, .. } => format!(
                "larger than {}, more than vmux ever writes there; it was not read",
                size(*max)
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::TooLarge { path, .. } => write!(
                f,
                "{} is {}; move it aside to start over",
                path.display(),
                self.reason()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::TooLarge { .. } => None,
        }
    }
}

/// `max` bytes in the largest whole unit.
fn size(max: u64) -> String {
    match max {
        m if m >= 1 << 20 && m % (1 << 20) == 0 => format!("{} MiB", m >> 20),
        m if m >= 1 << 10 && m % (1 << 10) == 0 => format!("{} KiB", m >> 10),
        m => format!("{m} bytes"),
    }
}
