//! Field checks shared by every envelope body.

use crate::{Error, Result};

use super::limits::{MAX_BLOB_LEN, MAX_TEXT_LEN};

/// A body that knows its own field limits.
pub(crate) trait Check {
    /// Errs on the first field outside its limits.
    fn check(&self) -> Result<()>;
}

fn size(field: &'static str, len: usize, min: usize, max: usize, unit: &'static str) -> Result<()> {
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(Error::FieldSize {
            field,
            len,
            min,
            max,
            unit,
        })
    }
}

/// A byte string of `min..=max` bytes.
pub(crate) fn bytes(field: &'static str, value: &[u8], min: usize, max: usize) -> Result<()> {
    size(field, value.len(), min, max, "bytes")
}

/// A key, certificate or signature blob.
pub(crate) fn blob(field: &'static str, value: &[u8]) -> Result<()> {
    bytes(field, value, 0, MAX_BLOB_LEN)
}

/// An optional blob.
pub(crate) fn opt_blob(field: &'static str, value: Option<&[u8]>) -> Result<()> {
    value.map_or(Ok(()), |v| blob(field, v))
}

/// A text field of at most `max` UTF-8 bytes.
pub(crate) fn text_max(field: &'static str, value: &str, max: usize) -> Result<()> {
    size(field, value.len(), 0, max, "bytes")
}

/// A text field under the general text limit.
pub(crate) fn text(field: &'static str, value: &str) -> Result<()> {
    text_max(field, value, MAX_TEXT_LEN)
}

/// An optional text field under the general text limit.
pub(crate) fn opt_text(field: &'static str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| text(field, v))
}

/// A list of at most `max` entries.
pub(crate) fn count(field: &'static str, len: usize, max: usize) -> Result<()> {
    size(field, len, 0, max, "entries")
}
