use core::fmt;
use std::io;
use std::path::PathBuf;

use vmux_proto::envelope::ErrorCode;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why `vmux ssh` stopped; each says what to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `HOME` is unset, so there are no known_hosts files.
    NoHome,
    /// The OS random source failed.
    Random,
    /// A file could not be read or written.
    Io { path: PathBuf, source: io::Error },
    /// The destination does not parse.
    Destination(String),
    /// No saved host by that name.
    NoSuchHost(String),
    /// The saved hosts file does not parse.
    SavedHosts { path: PathBuf, reason: String },
    /// The link layer failed (device identity, trust store, pairing).
    Link(vmux_link::Error),
    /// This device has no pinned signer.
    NotPaired,
    /// No paired signer answered in time.
    NoSigner {
        waited_secs: u64,
        last: Option<String>,
    },
    /// Nothing listens at any of the signers' addresses, none is on the
    /// local network, and none can be woken.
    NotRunning { last: Option<String> },
    /// The signer answered but offers no identity.
    NoIdentities { signer: String },
    /// The signer refused to sign.
    Refused { code: ErrorCode, message: String },
    /// The session with the signer ended before its answer.
    SignerLost,
    /// The server accepted none of the signer's identities.
    PermissionDenied { tried: usize },
    /// The host key is not trusted; the warning was printed.
    HostKeyVerification,
    /// The SSH connection failed.
    Ssh(russh::Error),
    /// Connecting to the server failed.
    Connect { address: String, source: io::Error },
    /// The terminal could not be set up.
    Terminal(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoHome => f.write_str("HOME is not set, so there is no ~/.ssh/known_hosts; set HOME"),
            Error::Random => f.write_str("the operating system's random source failed"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Destination(why) => f.write_str(why),
            Error::NoSuchHost(name) => write!(
                f,
                "no saved host named {name:?}; see `vmux hosts list`, or give [user@]host[:port]"
            ),
            Error::SavedHosts { path, reason } => write!(
                f,
                "{} is damaged ({reason}); fix or remove it",
                path.display()
            ),
            Error::Link(e) => write!(f, "{e}"),
            Error::NotPaired => f.write_str(
                "No signer found: this device is not paired with one; run `vmux pair` (or `vmux pair --signer HOST:PORT`) first",
            ),
            Error::NoSigner { waited_secs, last } => {
                write!(f, "No signer found: no paired signer answered within {waited_secs} s")?;
                if let Some(last) = last {
                    write!(f, " (last attempt: {last})")?;
                }
                f.write_str(
                    ".\n  - Is `vmux signer` running, and reachable from here? Start it (or `vmux up`) and retry.\
                     \n  - If it runs on another machine, check both are on the same network, or name it with --signer HOST:PORT.\
                     \n  - Never paired this device? Run `vmux pair` first.",
                )
            }
            Error::NotRunning { last } => {
                f.write_str("No signer found: no paired signer is running (nothing listens at its address, and none is on the local network)")?;
                if let Some(last) = last {
                    write!(f, " (last attempt: {last})")?;
                }
                f.write_str(
                    ".\n  - Start `vmux signer` (or `vmux up`) and retry.\
                     \n  - So that a signer away can be woken, give it a push endpoint: `vmux signer --wake-url URL`.\
                     \n  - Never paired this device? Run `vmux pair` first.",
                )
            }
            Error::NoIdentities { signer } => write!(
                f,
                "No signer found: signer \"{signer}\" offers no identity; enable one on it (`vmux key list`, `vmux key enable`) and retry"
            ),
            Error::Refused { code, message } => {
                let what = match code {
                    ErrorCode::UserDenied => "the request was denied on the signer",
                    ErrorCode::RequestExpired => "the request expired before it was approved",
                    ErrorCode::VerificationFailed => "verification on the signer failed",
                    _ => "the signer refused to sign",
                };
                write!(
                    f,
                    "Authentication failed: {what} ({}{}{message})",
                    code.as_str(),
                    if message.is_empty() { "" } else { ": " }
                )
            }
            Error::SignerLost => f.write_str(
                "Authentication failed: the signer went away before answering; retry when it is back",
            ),
            Error::PermissionDenied { tried } => write!(
                f,
                "Permission denied (publickey): the server accepted none of the signer's {tried} identit{}; \
                 add the public key (`vmux key show` on the signer) to the server's authorized_keys",
                if *tried == 1 { "y" } else { "ies" }
            ),
            Error::HostKeyVerification => f.write_str("Host key verification failed."),
            Error::Ssh(e) => write!(f, "ssh: {e}"),
            Error::Connect { address, source } => write!(f, "ssh: connect to {address}: {source}"),
            Error::Terminal(e) => write!(f, "cannot set up the terminal: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Connect { source, .. } => Some(source),
            Error::Link(e) => Some(e),
            Error::Ssh(e) => Some(e),
            Error::Terminal(e) => Some(e),
            _ => None,
        }
    }
}

impl From<vmux_link::Error> for Error {
    fn from(e: vmux_link::Error) -> Self {
        Error::Link(e)
    }
}

impl From<russh::Error> for Error {
    fn from(e: russh::Error) -> Self {
        Error::Ssh(e)
    }
}
