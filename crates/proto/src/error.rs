use core::fmt;

/// Result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong decoding or encoding a vmux wire message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Input ended before the message did.
    Truncated,
    /// A declared length is over the cap for that field or frame.
    TooLong { len: u64, max: u64 },
    /// Bytes were left over after a complete message.
    TrailingBytes,
    /// An ssh-agent message number this codec does not know.
    UnknownMessage(u8),
    /// A structurally invalid field (bad UTF-8, bad boolean, wrong size...).
    Malformed(&'static str),
    /// An ssh-encoding error while reading or writing.
    Encoding(ssh_encoding::Error),
    /// A CBOR envelope that did not decode.
    Cbor(String),
    /// An envelope of a major protocol version this build does not speak.
    UnsupportedVersion { got: u64, supported: u64 },
    /// A link envelope whose `type` this build does not know. Not fatal: the
    /// session answers `malformedRequest` and carries on.
    UnknownEnvelope(String),
    /// An envelope field whose size is outside what the protocol allows
    /// (`unit` is "bytes" or "entries").
    FieldSize {
        field: &'static str,
        len: usize,
        min: usize,
        max: usize,
        unit: &'static str,
    },
    /// A text field that a person may read holds a control or format
    /// character (see [`crate::text`]).
    ForbiddenCharacter { field: &'static str, found: char },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("message truncated"),
            Error::TooLong { len, max } => {
                write!(f, "declared length {len} exceeds the limit of {max}")
            }
            Error::TrailingBytes => f.write_str("unexpected bytes after the end of the message"),
            Error::UnknownMessage(n) => write!(f, "unknown ssh-agent message type {n}"),
            Error::Malformed(what) => write!(f, "malformed message: {what}"),
            Error::Encoding(e) => write!(f, "ssh encoding: {e}"),
            Error::Cbor(e) => write!(f, "malformed envelope: {e}"),
            Error::UnsupportedVersion { got, supported } => write!(
                f,
                "peer speaks vmux protocol version {got}, this build speaks {supported}; update vmux on the older side"
            ),
            Error::UnknownEnvelope(name) => write!(f, "unknown envelope type {name:?}"),
            Error::ForbiddenCharacter { field, found } => write!(
                f,
                "{field} contains the control or format character {}; text a person reads may not",
                crate::text::describe(*found)
            ),
            Error::FieldSize {
                field,
                len,
                min,
                max,
                unit,
            } => {
                if min == max {
                    write!(f, "{field} is {len} {unit}; it must be exactly {min}")
                } else if *min == 0 {
                    write!(f, "{field} is {len} {unit}; the limit is {max}")
                } else {
                    write!(f, "{field} is {len} {unit}; it must be {min} to {max}")
                }
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<ssh_encoding::Error> for Error {
    fn from(e: ssh_encoding::Error) -> Self {
        match e {
            ssh_encoding::Error::Length => Error::Truncated,
            other => Error::Encoding(other),
        }
    }
}
