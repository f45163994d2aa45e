//! The state directory, from `vmux-state`, with this crate's errors for
//! the crates that reach it through the link.

use std::fs;
use std::path::Path;

pub use vmux_state::{Home, StateFile, read_capped};

use crate::Result;

/// See [`vmux_state::home::create_private_dir`].
pub fn create_private_dir(dir: &Path) -> Result<()> {
    Ok(vmux_state::home::create_private_dir(dir)?)
}

/// See [`vmux_state::home::write_private`].
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(vmux_state::home::write_private(path, bytes)?)
}

/// See [`vmux_state::home::lock`].
pub fn lock(path: &Path) -> Result<fs::File> {
    Ok(vmux_state::home::lock(path)?)
}
