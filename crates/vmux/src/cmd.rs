//! One module per subcommand.

pub mod agent;
pub mod ca;
pub mod cert;
pub mod completions;
pub mod hostkeys;
pub mod hosts;
pub mod key;
pub mod log;
pub mod logging;
pub mod man;
pub mod pair;
pub mod peers;
pub mod refresh;
pub mod signer;
pub mod ssh;
pub mod status;
pub mod tray;
pub mod up;

/// Errors a subcommand reports to the person; already worded for them.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
