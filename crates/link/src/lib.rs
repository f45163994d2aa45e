//! The vmux link between agents/clients and the signer.
//!
//! - [`noise`]: the Noise XX handshake and transport ciphers, no I/O.
//! - [`pairing`]: the first-contact pairing code and its commitment.
//! - [`trust`]: the store of pinned peers.
//! - [`session`]: the tokio transport: framing, hello, pairing, keepalive.
//! - [`discovery`]: DNS-SD advertisement and browsing.
//! - [`logfile`]: the request logs, rotated at a size.

pub mod backoff;
pub mod clock;
pub mod device;
pub mod discovery;
mod error;
mod fingerprint;
pub mod frame;
pub mod home;
pub mod keepalive;
pub mod logfile;
pub mod noise;
pub mod pairing;
pub mod session;
pub mod trust;

pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
