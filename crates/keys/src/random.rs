//! The operating system's random source, in the shapes ssh-key asks for.

use ssh_key::getrandom::SysRng;
use ssh_key::rand_core::UnwrapErr;

use crate::{Error, Result};

/// An infallible-looking RNG for APIs that want one; the OS source does not
/// fail on the platforms we run on.
pub(crate) fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// A random u64 (certificate serials).
pub(crate) fn u64() -> Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| Error::other(format!("the operating system's random source failed: {e}")))?;
    Ok(u64::from_le_bytes(b))
}
