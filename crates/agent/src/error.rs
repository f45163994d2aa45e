//! What can stop the agent from starting or a control command from working.

use core::fmt;
use std::io;
use std::path::PathBuf;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Errors a person meets; each says what to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another agent answers on the socket path.
    AlreadyRunning { path: PathBuf },
    /// The socket path holds something that is not a socket.
    NotASocket { path: PathBuf },
    /// The socket's directory could be written by someone else.
    UnsafeDirectory { path: PathBuf, why: String },
    /// No socket path could be worked out.
    NoSocketPath,
    /// A file or socket operation failed.
    Io { path: PathBuf, source: io::Error },
    /// The link layer failed (device identity, trust store).
    Link(vmux_link::Error),
    /// The agent at the socket did not answer a control request.
    Control { path: PathBuf, why: String },
    /// The upstream agent leads back to this agent.
    UpstreamLoop { path: PathBuf },
    /// `--upstream` without a socket, and none usable in the environment.
    NoUpstream { why: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning { path } => write!(
                f,
                "an agent is already listening on {}; use it (export SSH_AUTH_SOCK={}), stop it, or choose another path with --socket",
                path.display(),
                path.display()
            ),
            Error::NotASocket { path } => write!(
                f,
                "{} exists and is not a socket; move it away or choose another path with --socket",
                path.display()
            ),
            Error::UnsafeDirectory { path, why } => write!(
                f,
                "refusing to put the agent socket in {}: {why}; run `chmod 700 {}` or choose another path with --socket",
                path.display(),
                path.display()
            ),
            Error::NoSocketPath => f.write_str(
                "HOME is not set, so there is no default socket path; give --socket PATH or set VMUX_HOME",
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Link(e) => write!(f, "{e}"),
            Error::Control { path, why } => write!(f, "agent at {}: {why}", path.display()),
            Error::UpstreamLoop { path } => write!(
                f,
                "the upstream agent {} leads back to this agent, so every request would go round in a loop; \
                 give --upstream the socket of another agent (e.g. the SSH_AUTH_SOCK from before vmux)",
                path.display()
            ),
            Error::NoUpstream { why } => write!(f, "no upstream agent: {why}; give --upstream SOCKET"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Link(e) => Some(e),
            _ => None,
        }
    }
}

impl From<vmux_link::Error> for Error {
    fn from(e: vmux_link::Error) -> Self {
        Error::Link(e)
    }
}
