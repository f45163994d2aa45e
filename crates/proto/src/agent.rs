//! The ssh-agent protocol (RFC 9987, formerly draft-miller-ssh-agent) as
//! spoken on `SSH_AUTH_SOCK`, plus OpenSSH's `session-bind@openssh.com` and
//! `query` extensions.
//!
//! Pure encode/decode: the caller owns the socket. Frames come from
//! [`FrameDecoder`] (or [`frame_len`] for a blocking reader); their bodies go
//! to [`Request::decode`] / [`Response::decode`]. Every length is bounded by
//! [`MAX_MESSAGE_LEN`] and by the bytes actually present before anything is
//! allocated, so arbitrary input is safe to feed in.
//!
//! ```
//! use vmux_proto::agent::{FrameDecoder, Request, Response};
//!
//! // What `ssh-add -l` writes: length 1, REQUEST_IDENTITIES.
//! let mut stream: &[u8] = &[0, 0, 0, 1, 11];
//! let mut frames = FrameDecoder::new();
//! while let Some(body) = frames.decode(&mut stream)? {
//!     assert_eq!(Request::decode(&body)?, Request::RequestIdentities);
//!     let reply = Response::IdentitiesAnswer(vec![]).to_frame()?;
//!     assert_eq!(reply, [0, 0, 0, 5, 12, 0, 0, 0, 0]);
//! }
//! # Ok::<(), vmux_proto::Error>(())
//! ```

mod extension;
mod frame;
pub mod number;
mod request;
mod response;
mod secret;
mod sign_flags;
pub mod userauth;
mod wire;

pub use extension::{
    Extension, ExtensionResponse, MAX_SESSION_ID_LEN, QUERY, SESSION_BIND, SessionBind,
};
pub use frame::{FrameDecoder, MAX_MESSAGE_LEN, encode_frame, frame_len};
pub use request::{Request, SignRequest, SmartcardKey};
pub use response::{Identity, Response};
pub use secret::SecretBytes;
pub use sign_flags::SignFlags;
pub use userauth::{SignedData, SshSig, Userauth, classify};
