//! One module per subcommand.

pub mod ca;
pub mod key;
pub mod pair;
pub mod peers;
pub mod signer;

/// Errors a subcommand reports to the person; already worded for them.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
