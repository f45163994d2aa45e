//! vmux's integration tests, one test binary: the real `vmux` binary
//! against real OpenSSH (`ssh`, `sshd`, `ssh-add`, `ssh-keygen`), SoftHSM2,
//! a software TPM, tmux and pinentry. Each module is one area; what they
//! share is in `support` (and, with the benches, in `vmux-testkit`).
//!
//! Run one area with `cargo test -p vmux --test it faults::`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod agent;
mod bounds;
mod broken_pipe;
mod ca;
mod claims;
mod cli;
mod destination;
mod device_names;
mod e2e;
mod fair_share;
mod faults;
mod find;
mod floods;
mod install;
mod keys;
mod load;
mod pairing;
mod pinentry;
mod raw_signer;
mod refusals;
mod regress;
mod signer;
mod single_signer;
mod ssh;
mod state;
mod tokens;
mod topology;
mod tpm;
// A StatusNotifierItem on a D-Bus session bus: not what macOS shows.
#[cfg(not(target_os = "macos"))]
mod tray;
mod trust;
mod up;
mod upstream;
mod vectors;
mod wake;
