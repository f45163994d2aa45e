//! `ping` and `pong`: keepalive.

use serde::{Deserialize, Serialize};

use super::check::Check;
use crate::Result;

/// Sent after 5 s without receiving a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed in the `pong`.
    pub seq: u64,
}

/// The answer to a `ping`, with the same `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The `seq` of the `ping` answered.
    pub seq: u64,
}

impl Check for Ping {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Check for Pong {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}
