//! Size limits of the link protocol (docs/protocol.md, "Limits").
//!
//! The codec enforces every limit that belongs to a single envelope, on decode
//! and on encode alike, so anything [`Envelope::encode`](super::Envelope::encode)
//! accepts the peer's decoder accepts too.

/// Protocol major version carried as `v` in every envelope and `protocolMajor`
/// in `hello`. A different major is refused with [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion).
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version carried in `hello`. Minor differences are compatible.
pub const PROTOCOL_MINOR: u16 = 0;

/// Largest link frame body: the u16 length prefix caps it.
pub const MAX_FRAME_LEN: usize = 65_535;
/// Largest envelope plaintext: one Noise transport message less its 16-byte tag.
pub const MAX_ENVELOPE_LEN: usize = MAX_FRAME_LEN - 16;

/// Largest text field, in UTF-8 bytes, unless a tighter limit applies.
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest device name (`deviceName`, `sourceDeviceName`), in UTF-8 bytes.
pub const MAX_DEVICE_NAME_LEN: usize = 64;
/// Largest key, certificate or signature blob.
pub const MAX_BLOB_LEN: usize = 16 * 1024;
/// Largest `dataToSign`.
pub const MAX_DATA_TO_SIGN_LEN: usize = 16 * 1024;
/// Most `bindings` in one `signRequest` (OpenSSH's agent keeps at most 16
/// session bindings per connection).
pub const MAX_BINDINGS: usize = 16;
/// Longest session identifier in a binding (OpenSSH's `AGENT_MAX_SID_LEN`).
pub const MAX_SESSION_ID_LEN: usize = crate::agent::MAX_SESSION_ID_LEN;
/// Most records in one `keyList`.
pub const MAX_KEYS: usize = 256;
/// Shortest anti-replay `nonce` of a sign or certificate request.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest anti-replay `nonce` of a sign or certificate request.
pub const MAX_NONCE_LEN: usize = 64;
/// Exact size of the pairing commitment and the pairing nonces.
pub const PAIRING_VALUE_LEN: usize = 32;
/// Most sign and certificate requests waiting on the signer per session; one
/// more is answered `signerBusy`. Enforced by the session, not the codec.
pub const MAX_PENDING_REQUESTS: usize = 32;

/// How long a sign or certificate request stays valid: a requester sets
/// `expiresAtMilliseconds` this far after `issuedAtMilliseconds`, and the
/// signer refuses a longer window (docs/protocol.md §9.2).
pub const REQUEST_WINDOW_MS: u64 = 60_000;
/// How long a requester waits for the answer to one request: the window
/// plus time for the answer to travel.
pub const REQUEST_WAIT: core::time::Duration = core::time::Duration::from_secs(70);
