//! What the integration tests share: vmux processes, OpenSSH's clients
//! and server, a paired signer and device, and the real peers and
//! services (relay, push receiver, tmux, SoftHSM2, swtpm, faketime,
//! namespaces).

pub mod clients;
pub mod faketime;
pub mod netns;
pub mod paired;
pub mod process;
pub mod push;
pub mod raw;
pub mod relay;
pub mod sheet;
pub mod softhsm;
pub mod sshd;
pub mod swtpm;
pub mod tmux;
