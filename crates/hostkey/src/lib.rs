//! Host keys as OpenSSH shows them to an agent, shared by the agent, the
//! signer and `vmux ssh`. Pure: no I/O, no clock.
//!
//! - [`bind`]: the proof in `session-bind@openssh.com`, the host's
//!   signature over a session identifier, checked the same way by the agent
//!   (when ssh binds a connection) and by the signer (before it believes a
//!   destination).
//! - [`known_hosts`]: OpenSSH's `known_hosts` lines, read by `vmux ssh`
//!   (is this host's key known?), by the agent (what does its user call
//!   this host key?) and by `vmux hostkeys import`.

pub mod bind;
pub mod known_hosts;

pub use bind::{BadBinding, same_key, verify};
