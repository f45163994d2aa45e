use core::fmt;
use std::io;
use std::path::PathBuf;

use vmux_proto::envelope::ErrorCode;
use vmux_proto::text::escape;

use crate::Fingerprint;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What can go wrong on the link.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The OS random source failed.
    Random,
    /// A handshake message was malformed or failed authentication.
    Handshake(&'static str),
    /// A transport message failed authentication: altered, replayed,
    /// reordered or dropped. The session is over.
    Decrypt,
    /// A message would not fit in one Noise message.
    MessageTooLong(usize),
    /// The 64-bit message counter ran out.
    NonceExhausted,
    /// A frame of length zero.
    EmptyFrame,
    /// An envelope failed to encode or decode.
    Proto(vmux_proto::Error),
    /// The peer said something out of order.
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    /// The peer answered with an error envelope.
    Peer { code: ErrorCode, message: String },
    /// The signer presented a static key other than the one pinned for it.
    SignerKeyChanged {
        name: String,
        expected: Fingerprint,
        presented: Fingerprint,
    },
    /// We have no pinned signer and were not asked to pair.
    NotPaired { presented: Fingerprint },
    /// An unpaired requester connected without asking to pair; it was
    /// refused with `pairingInvalid`.
    UnknownPeer {
        name: String,
        presented: Fingerprint,
    },
    /// An unpaired requester asked to pair while no pairing window was
    /// open; it was refused with `pairingInvalid`.
    PairingClosed {
        name: String,
        presented: Fingerprint,
    },
    /// The pairing commitment did not match the revealed nonce.
    CommitmentMismatch,
    /// The peer stayed silent past the deadline.
    Timeout(&'static str),
    /// Nothing answered at the signer's address.
    Unreachable { address: String, source: io::Error },
    /// The connection closed.
    Closed,
    /// A socket error.
    Io(io::Error),
    /// A state file could not be read or written.
    State { path: PathBuf, source: io::Error },
    /// A state file exists but does not parse.
    Corrupt { path: PathBuf, reason: String },
    /// Service discovery failed.
    Discovery(String),
    /// A device name that peers would refuse (see [`crate::device::check_name`]).
    Name { name: String, why: String },
}

impl Error {
    /// Whether retrying the same connection cannot help: the keys don't
    /// match, we aren't paired, or our own state is broken.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::SignerKeyChanged { .. }
                | Error::NotPaired { .. }
                | Error::State { .. }
                | Error::Corrupt { .. }
                | Error::Peer {
                    code: ErrorCode::PairingInvalid,
                    ..
                }
        )
    }
}

impl Error {
    /// Whether nothing listens at the address (connection refused): the
    /// signer is not running there, as opposed to slow or unroutable.
    pub fn is_refused(&self) -> bool {
        matches!(self, Error::Unreachable { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused)
    }
}

impl From<vmux_state::Error> for Error {
    fn from(e: vmux_state::Error) -> Self {
        match e {
            vmux_state::Error::Io { path, source } => Error::State { path, source },
            // Permanent like a file that does not parse: handled the same.
            e => Error::Corrupt {
                path: e.path().to_owned(),
                reason: e.reason(),
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Random => f.write_str("the operating system's random source failed"),
            Error::Handshake(why) => write!(f, "link handshake failed: {why}"),
            Error::Decrypt => f.write_str(
                "a link message failed authentication (altered, replayed or out of order); the session was closed",
            ),
            Error::MessageTooLong(n) => write!(f, "a {n}-byte message does not fit in one link frame"),
            Error::NonceExhausted => f.write_str("the link session ran out of message counters; reconnect"),
            Error::EmptyFrame => f.write_str("the peer sent an empty frame"),
            Error::Proto(e) => write!(f, "{e}"),
            Error::Unexpected { expected, got } => write!(f, "expected {expected} from the peer, got {got}"),
            // The peer's words, made inert: they reach a terminal.
            Error::Peer { code, message } => write!(f, "{} ({})", escape(message), code.as_str()),
            Error::SignerKeyChanged { name, expected, presented } => write!(
                f,
                "the signer at this address presented key {presented}, but \"{name}\" is pinned with key {expected}. \
                 Refusing to connect: this may be an impostor. If the signer really was reinstalled, \
                 remove it with `vmux peers remove \"{name}\"` and run `vmux pair` again",
                name = escape(name)
            ),
            Error::NotPaired { presented } => write!(
                f,
                "this device is not paired with the signer (it presented key {presented}); run `vmux pair --signer HOST:PORT` first"
            ),
            Error::UnknownPeer { name, presented } => write!(
                f,
                "refused unpaired device \"{name}\" (key {presented}): it must run `vmux pair` first",
                name = escape(name)
            ),
            Error::PairingClosed { name, presented } => write!(
                f,
                "refused a pairing request from \"{name}\" (key {presented}): no pairing window is open; \
                 press p on the signer (or start it with --pair) to accept new devices",
                name = escape(name)
            ),
            Error::CommitmentMismatch => f.write_str(
                "the signer's pairing nonce does not match its commitment; someone may be interfering. Nothing was pinned",
            ),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Unreachable { address, source } => write!(
                f,
                "cannot reach the signer at {address} ({source}); is `vmux signer` running there, and is the address right?"
            ),
            Error::Closed => f.write_str("the link closed"),
            Error::Io(e) => write!(f, "link I/O: {e}"),
            Error::State { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Corrupt { path, reason } => write!(
                f,
                "{} is corrupt ({reason}); move it aside to start over",
                path.display()
            ),
            Error::Discovery(e) => write!(f, "signer discovery: {e}"),
            Error::Name { name, why } => write!(f, "the device name \"{}\" {why}", escape(name)),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Proto(e) => Some(e),
            Error::Io(e) | Error::Unreachable { source: e, .. } => Some(e),
            Error::State { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<vmux_proto::Error> for Error {
    fn from(e: vmux_proto::Error) -> Self {
        Error::Proto(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::Closed,
            _ => Error::Io(e),
        }
    }
}
