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

/// A text field of at most `max` UTF-8 bytes that a person may read: no
/// control or format characters ([`crate::text`]).
pub(crate) fn text_max(field: &'static str, value: &str, max: usize) -> Result<()> {
    size(field, value.len(), 0, max, "bytes")?;
    crate::text::check(value).map_err(|found| Error::ForbiddenCharacter { field, found })
}

/// A text field under the general text limit.
pub(crate) fn text(field: &'static str, value: &str) -> Result<()> {
    text_max(field, value, MAX_TEXT_LEN)
}

/// An optional text field under the general text limit.
pub(crate) fn opt_text(field: &'static str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| text(field, v))
}

/// A free-form message (an error's explanation): only its size is
/// checked, so that a refusal is never lost to its wording. Whoever prints
/// one escapes it with [`crate::text::escape`].
pub(crate) fn message(field: &'static str, value: &str) -> Result<()> {
    size(field, value.len(), 0, MAX_TEXT_LEN, "bytes")
}

/// An optional [`message`].
pub(crate) fn opt_message(field: &'static str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| message(field, v))
}

/// A list of at most `max` entries.
pub(crate) fn count(field: &'static str, len: usize, max: usize) -> Result<()> {
    size(field, len, 0, max, "entries")
}
