//! The vmux signer: accepts paired agents and clients over the link and
//! asks its person before anything happens.
//!
//! - [`approval`]: the FIFO of sheets waiting for the person, and their
//!   decisions. Nothing is ever approved without a person's answer.
//! - [`ui`]: the front ends that show sheets (`plain`: one line per answer).
//! - [`server`]: the accept loop and per-session request handling.
//! - [`reading`]: what a sign request is for, read from the signed bytes and
//!   the session bindings; [`hostkeys`]: hosts the signer knows by name;
//!   [`policy`]: per-key limits; [`destination`]: how the sheet shows it.
//! - [`settings`]: the port and wake endpoint kept between runs.

pub mod approval;
pub mod checks;
pub mod destination;
mod error;
pub mod hostkeys;
pub mod identities;
pub mod log;
mod notify;
pub mod policy;
pub mod reading;
pub mod server;
pub mod settings;
pub mod ui;

pub use error::{Error, Result};
pub use server::{Config, Signer};
