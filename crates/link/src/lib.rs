//! The vmux link between agents/clients and the signer.
//!
//! - [`noise`]: the Noise XX handshake and transport ciphers, no I/O.
//! - [`pairing`]: the first-contact pairing code and its commitment.
//! - [`trust`]: the store of pinned peers.
//! - [`session`]: the tokio transport: framing, hello, pairing, keepalive.
//! - [`discovery`]: DNS-SD advertisement and browsing.
//! - [`logfile`]: the request logs, rotated at a size.
//! - [`find`]: finding a pinned signer again (last address, then DNS-SD).
//! - [`wake`]: waking a signer that cannot be reached (HTTP push).
//! - [`watch`]: noticing that state files changed.
//! - [`requester`]: sign and certificate requests and their answers, as
//!   both the agent and `vmux ssh` make and read them.

pub mod backoff;
pub mod clock;
pub mod device;
pub mod discovery;
mod error;
pub mod find;
mod fingerprint;
pub mod frame;
pub mod home;
pub mod keepalive;
pub mod logfile;
pub mod noise;
pub mod pairing;
pub mod requester;
pub mod session;
pub mod trust;
pub mod wake;
pub mod watch;

pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
