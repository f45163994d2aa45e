//! Front ends that show sheets to the person.

pub mod plain;
