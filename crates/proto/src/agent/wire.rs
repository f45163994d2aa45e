//! Bounded reading and writing of RFC 4251 data types.
//!
//! Every length read from the wire is checked against the bytes actually
//! left before anything is sliced or allocated, so a hostile length prefix
//! costs nothing.

use crate::{Error, Result};
use ssh_encoding::{Decode, Encode};

/// A read cursor over one message body that never panics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(u8::decode(&mut self.rest)?)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::decode(&mut self.rest)?)
    }

    /// A strict RFC 4251 boolean: anything but 0 or 1 is refused, so that
    /// re-encoding reproduces the input exactly.
    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Malformed("boolean is neither 0 nor 1")),
        }
    }

    /// Exactly `n` raw bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Error::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// A length-prefixed `string`, borrowed; the length is bounded by the
    /// remaining input.
    pub(crate) fn string(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.u32()?).map_err(|_| Error::Truncated)?;
        self.take(len)
    }

    /// A `string` no longer than `max` bytes.
    pub(crate) fn string_max(&mut self, max: usize) -> Result<&'a [u8]> {
        let s = self.string()?;
        if s.len() > max {
            return Err(too_long(s.len(), max));
        }
        Ok(s)
    }

    /// A `string` that must be UTF-8 text.
    pub(crate) fn utf8(&mut self) -> Result<&'a str> {
        core::str::from_utf8(self.string()?)
            .map_err(|_| Error::Malformed("string is not valid UTF-8"))
    }

    /// A UTF-8 `string` no longer than `max` bytes.
    pub(crate) fn utf8_max(&mut self, max: usize) -> Result<&'a str> {
        let s = self.utf8()?;
        if s.len() > max {
            return Err(too_long(s.len(), max));
        }
        Ok(s)
    }

    /// Everything left, consuming it.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Succeeds only if the whole input was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
        }
    }
}

/// `Error::TooLong` from two lengths.
pub(crate) fn too_long(len: usize, max: usize) -> Error {
    Error::TooLong {
        len: u64::try_from(len).unwrap_or(u64::MAX),
        max: u64::try_from(max).unwrap_or(u64::MAX),
    }
}

/// Appends a single byte.
pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends a big-endian `uint32`.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) -> Result<()> {
    Ok(v.encode(out)?)
}

/// Appends a `boolean` as 0 or 1.
pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) -> Result<()> {
    Ok(v.encode(out)?)
}

/// Appends a length-prefixed `string`; fails if it cannot fit a `uint32`.
pub(crate) fn put_string(out: &mut Vec<u8>, v: &[u8]) -> Result<()> {
    Ok(v.encode(out)?)
}
