//! The CBOR envelopes carried inside the Noise link.
//!
//! Every envelope is a CBOR map `{"v": 1, "type": "<name>", "body": {...}}`
//! (docs/protocol.md, "Envelopes"): `v` is the protocol major version, `type`
//! names the body's struct, and the body holds that struct's fields under
//! their camelCase names. One envelope is the plaintext of one Noise transport
//! message, so it is at most [`MAX_ENVELOPE_LEN`] bytes.
//!
//! Decoding is forward compatible: unknown fields, in the body or next to
//! `v`/`type`/`body`, are ignored; an unknown string in an enumerated field
//! decodes to that enum's `Unknown` variant; optional fields may be absent or
//! `null`. It is strict about the rest: missing required fields, wrong CBOR
//! types (byte fields must be byte strings), field sizes out of
//! [`limits`], trailing bytes and a different major version are errors.
//!
//! Every decode error's text is short (a few hundred bytes at most, as
//! details quoted from the input are clipped), so it fits the `message` of an
//! `error` envelope sent back.
//!
//! An unknown `type` is [`Error::UnknownEnvelope`] rather than an `Envelope`
//! variant, so that every `Envelope` value is one this build can send and
//! [`Envelope::encode`] never meets a body it does not know. The session
//! answers that error with `malformedRequest` (with [`peek_request_id`]'s
//! `requestID` when there is one) and keeps going.
//!
//! ```
//! use vmux_proto::envelope::{Envelope, Ping};
//!
//! let bytes = Envelope::Ping(Ping { seq: 7 }).encode()?;
//! assert_eq!(Envelope::decode(&bytes)?, Envelope::Ping(Ping { seq: 7 }));
//! # Ok::<(), vmux_proto::Error>(())
//! ```

mod cancel;
mod certificate;
mod check;
mod device_token;
mod error_code;
mod error_report;
mod hello;
mod keepalive;
mod keys;
pub mod limits;
mod pairing;
mod sign;
mod wire;

pub use cancel::Cancel;
pub use certificate::{CertificateRequest, CertificateResponse};
pub use device_token::DeviceTokenUpdate;
pub use error_code::ErrorCode;
pub use error_report::ErrorReport;
pub use hello::{Hello, Role};
pub use keepalive::{Ping, Pong};
pub use keys::{KeyList, KeyListRequest, ProviderKind, PublicKeyRecord};
pub use limits::{MAX_ENVELOPE_LEN, PROTOCOL_MAJOR, PROTOCOL_MINOR};
pub use pairing::{PairCommit, PairNonce, PairResult, PairReveal};
pub use sign::{
    ContextQuality, Origin, Purpose, SSH_AGENT_RSA_SHA2_256, SSH_AGENT_RSA_SHA2_512,
    SessionBinding, SignContext, SignRequest, SignResponse,
};

use crate::{Error, Result};
use check::Check;

/// Declares [`Envelope`] from one table of (variant, body, wire type name), so
/// the names used to encode, decode and report can never drift apart.
macro_rules! envelopes {
    ($($(#[$doc:meta])* $variant:ident($body:ty) = $name:literal,)*) => {
        /// One link message.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Envelope {
            $($(#[$doc])* $variant($body),)*
        }

        impl Envelope {
            /// The wire `type` of this envelope, e.g. `"signRequest"`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Envelope::$variant(_) => $name,)*
                }
            }

            fn check(&self) -> Result<()> {
                match self {
                    $(Envelope::$variant(body) => body.check(),)*
                }
            }

            fn seal(&self) -> Result<Vec<u8>> {
                match self {
                    $(Envelope::$variant(body) => wire::seal($name, body),)*
                }
            }

            fn from_opened(opened: wire::Opened) -> Result<Self> {
                match opened.type_name.as_str() {
                    $($name => Ok(Envelope::$variant(wire::body($name, &opened.body)?)),)*
                    _ => Err(Error::UnknownEnvelope(wire::clip(opened.type_name))),
                }
            }
        }

        $(
            impl From<$body> for Envelope {
                fn from(body: $body) -> Self {
                    Envelope::$variant(body)
                }
            }
        )*
    };
}

envelopes! {
    /// First envelope each way: protocol version, device ID and name, role.
    Hello(Hello) = "hello",
    /// Pairing, signer → initiator: commitment to the signer's nonce.
    PairCommit(PairCommit) = "pairCommit",
    /// Pairing, initiator → signer: the initiator's nonce.
    PairNonce(PairNonce) = "pairNonce",
    /// Pairing, signer → initiator: the signer's nonce.
    PairReveal(PairReveal) = "pairReveal",
    /// Pairing, signer → initiator: accepted.
    PairResult(PairResult) = "pairResult",
    /// Initiator → signer: send your key list.
    KeyListRequest(KeyListRequest) = "keyListRequest",
    /// Signer → initiator: the keys and the CA public key.
    KeyList(KeyList) = "keyList",
    /// Initiator → signer: sign these bytes.
    SignRequest(SignRequest) = "signRequest",
    /// Signer → initiator: the signature or why not.
    SignResponse(SignResponse) = "signResponse",
    /// Agent → signer: certify this ephemeral key.
    CertificateRequest(CertificateRequest) = "certificateRequest",
    /// Signer → agent: the certificate or why not.
    CertificateResponse(CertificateResponse) = "certificateResponse",
    /// Signer → agent: the endpoint to POST to for a wake-up.
    DeviceTokenUpdate(DeviceTokenUpdate) = "deviceTokenUpdate",
    /// Initiator → signer: withdraw a request; nobody waits for its answer.
    Cancel(Cancel) = "cancel",
    /// Keepalive probe.
    Ping(Ping) = "ping",
    /// Keepalive answer.
    Pong(Pong) = "pong",
    /// A failure, with a code and a message for the person.
    Error(ErrorReport) = "error",
}

impl Envelope {
    /// Encodes this envelope as the plaintext of one Noise transport message.
    ///
    /// Errs if a field is outside its [`limits`] or the result would be
    /// larger than [`MAX_ENVELOPE_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.check()?;
        self.seal()
    }

    /// Decodes the plaintext of one Noise transport message.
    ///
    /// Errors, in the order they are checked: [`Error::TooLong`] for input
    /// over [`MAX_ENVELOPE_LEN`]; [`Error::Truncated`], [`Error::TrailingBytes`]
    /// or [`Error::Cbor`] for input that is not exactly one CBOR item;
    /// [`Error::Malformed`] when the outer map lacks `v`, `type` or `body`;
    /// [`Error::UnsupportedVersion`] when `v` is not [`PROTOCOL_MAJOR`];
    /// [`Error::UnknownEnvelope`] for a `type` this build does not know;
    /// [`Error::Cbor`] for a body with missing fields or wrong types;
    /// [`Error::FieldSize`] for a field outside its [`limits`].
    pub fn decode(input: &[u8]) -> Result<Self> {
        let envelope = Self::from_opened(wire::open(input)?)?;
        envelope.check()?;
        Ok(envelope)
    }
}

/// The `body.requestID` of an envelope, read leniently: for answering an
/// envelope that failed to decode (unknown type, bad field) with an `error`
/// that names the request. `None` when the input has no text `requestID`
/// where one would be.
pub fn peek_request_id(input: &[u8]) -> Option<String> {
    wire::peek_request_id(input)
}
