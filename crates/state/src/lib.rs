//! vmux's state directory (`VMUX_HOME`) and the files in it: where it is,
//! and the one way every file there is read (with a size cap), written
//! (atomically, owner-only) and changed (under a lock). The lowest crate
//! of the tree after `vmux-proto`: it depends on nothing of vmux's.

mod error;
pub mod file;
pub mod home;
pub mod owner;

pub use error::{Error, Result};
pub use file::{StateFile, read_capped, read_prefix};
pub use home::Home;
pub use owner::{Holder, Owner};
