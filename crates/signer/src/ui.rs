//! Front ends that show sheets to the person. They execute
//! [`crate::approval::Command`]s and decide nothing themselves.

pub mod fit;
pub mod guide;
pub mod pinentry;
pub mod plain;
pub mod settle;
pub mod text;
pub mod tui;
