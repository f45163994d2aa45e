//! The vmux signer: accepts paired agents and clients over the link and
//! asks its person before anything happens.
//!
//! - [`approval`]: the FIFO of sheets waiting for the person, and their
//!   decisions. Nothing is ever approved without a person's answer.
//! - [`ui`]: the front ends that show sheets (`plain`: one line per answer).
//! - [`server`]: the accept loop and per-session request handling.

pub mod approval;
pub mod checks;
pub mod identities;
pub mod log;
mod notify;
pub mod server;
pub mod ui;

pub use server::{Config, Signer};
