//! The ssh-agent framing: a 4-byte big-endian length, then the message body.
//!
//! Lengths are checked against [`MAX_MESSAGE_LEN`] as soon as the four header
//! bytes are known, so a hostile 4 GiB prefix is refused before any buffer is
//! sized from it.

use super::wire::too_long;
use crate::{Error, Result};
use core::fmt;
use zeroize::Zeroizing;

/// Largest message body accepted or produced: OpenSSH's `AGENT_MAX_LEN`.
/// A peer sending more is misbehaving and its connection should be closed.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// The first buffer for a body: most messages fit, and one small
/// allocation is cheaper than several doublings.
const MIN_BODY_CAPACITY: usize = 256;

/// Reads a frame header and returns the body length it announces.
///
/// Refuses a zero length (every message has at least its type byte) and any
/// length over [`MAX_MESSAGE_LEN`], before the caller allocates anything.
pub fn frame_len(header: [u8; 4]) -> Result<usize> {
    let len = u32::from_be_bytes(header);
    if len == 0 {
        return Err(Error::Malformed("zero-length agent message"));
    }
    match usize::try_from(len) {
        Ok(n) if n <= MAX_MESSAGE_LEN => Ok(n),
        _ => Err(Error::TooLong {
            len: u64::from(len),
            max: MAX_MESSAGE_LEN as u64,
        }),
    }
}

/// Prefixes a message body with its length, ready to write to the socket.
///
/// Fails for an empty body or one over [`MAX_MESSAGE_LEN`], which no
/// conforming peer would accept.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>> {
    if body.is_empty() {
        return Err(Error::Malformed("zero-length agent message"));
    }
    if body.len() > MAX_MESSAGE_LEN {
        return Err(too_long(body.len(), MAX_MESSAGE_LEN));
    }
    let len = u32::try_from(body.len()).map_err(|_| too_long(body.len(), MAX_MESSAGE_LEN))?;
    let mut out = Vec::with_capacity(body.len().saturating_add(4));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Incremental, I/O-free frame reader for a byte stream.
///
/// Feed whatever the socket produced; complete bodies come out one at a
/// time. It buffers at most one partial frame, and only what has arrived of
/// it: the announced length (checked against [`MAX_MESSAGE_LEN`]) bounds the
/// buffer but does not size it, so a peer that announces 256 KiB and sends
/// one byte costs one byte's worth, not 256 KiB. After an error the stream
/// is out of sync, so the decoder keeps failing and the connection should be
/// closed.
#[derive(Default)]
pub struct FrameDecoder {
    header: [u8; 4],
    header_len: usize,
    /// Announced body length, once the header is complete.
    body_len: Option<usize>,
    /// Wiped on drop: a frame may carry a private key or passphrase.
    body: Zeroizing<Vec<u8>>,
    /// Header of a refused frame; sticky so the error repeats.
    failed: Option<[u8; 4]>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from the front of `input` until one frame completes.
    ///
    /// Returns `Ok(Some(body))`, a buffer wiped on drop, with `input`
    /// advanced past that frame (call again for the next one), or `Ok(None)`
    /// once `input` is used up with no complete frame. Errors on a zero or over-cap length as soon as its
    /// four header bytes have arrived.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if let Some(header) = self.failed {
            return frame_len(header).map(|_| None);
        }
        loop {
            let Some(body_len) = self.body_len else {
                let want = 4usize.saturating_sub(self.header_len);
                let n = want.min(input.len());
                let (head, tail) = input.split_at_checked(n).ok_or(Error::Truncated)?;
                let dst = self
                    .header
                    .get_mut(self.header_len..self.header_len.saturating_add(n))
                    .ok_or(Error::Truncated)?;
                dst.copy_from_slice(head);
                *input = tail;
                self.header_len = self.header_len.saturating_add(n);
                if self.header_len < 4 {
                    return Ok(None);
                }
                match frame_len(self.header) {
                    Ok(len) => {
                        self.body_len = Some(len);
                        continue;
                    }
                    Err(e) => {
                        self.failed = Some(self.header);
                        return Err(e);
                    }
                }
            };
            let want = body_len.saturating_sub(self.body.len());
            let n = want.min(input.len());
            if n == 0 && want > 0 {
                return Ok(None);
            }
            let (head, tail) = input.split_at_checked(n).ok_or(Error::Truncated)?;
            self.make_room(n, body_len);
            self.body.extend_from_slice(head);
            *input = tail;
            if self.body.len() < body_len {
                return Ok(None);
            }
            self.header_len = 0;
            self.body_len = None;
            return Ok(Some(core::mem::take(&mut self.body)));
        }
    }

    /// Room for `n` more body bytes: at least double the capacity, never
    /// past `body_len`. Grown by hand, not by `Vec`, so the old buffer is
    /// wiped when it is replaced (a `Vec` would free it as it was).
    fn make_room(&mut self, n: usize, body_len: usize) {
        let needed = self.body.len().saturating_add(n);
        if needed <= self.body.capacity() {
            return;
        }
        let capacity = needed
            .max(self.body.capacity().saturating_mul(2))
            .max(MIN_BODY_CAPACITY)
            .min(body_len);
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.body);
        self.body = grown;
    }

    /// Bytes of an incomplete frame held so far (header included); non-zero
    /// at end of stream means the peer hung up mid-message.
    pub fn pending(&self) -> usize {
        self.header_len.saturating_add(self.body.len())
    }
}

impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print buffered bytes: they may be secret.
        f.debug_struct("FrameDecoder")
            .field("pending", &self.pending())
            .field("body_len", &self.body_len)
            .field("failed", &self.failed.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn holds_only_what_arrived_of_a_large_frame() {
        let mut d = FrameDecoder::new();
        let max = u32::try_from(MAX_MESSAGE_LEN).unwrap().to_be_bytes();
        let mut input: &[u8] = &[max[0], max[1], max[2], max[3], 13];
        assert!(d.decode(&mut input).unwrap().is_none());
        assert_eq!(d.pending(), 5);
        assert!(d.body.capacity() <= MIN_BODY_CAPACITY);

        // Grows with the bytes, by doubling, up to the announced length.
        let chunk = vec![7u8; 10_000];
        let mut fed = 1;
        while fed + chunk.len() < MAX_MESSAGE_LEN {
            let mut input = chunk.as_slice();
            assert!(d.decode(&mut input).unwrap().is_none());
            fed += chunk.len();
            assert!(d.body.capacity() <= 2 * fed.max(MIN_BODY_CAPACITY));
        }
        let rest = vec![7u8; MAX_MESSAGE_LEN - fed];
        let mut input = rest.as_slice();
        let body = d.decode(&mut input).unwrap().unwrap();
        assert_eq!(body.len(), MAX_MESSAGE_LEN);
        assert!(body.capacity() <= MAX_MESSAGE_LEN);
        assert_eq!(body[0], 13);
        assert_eq!(d.pending(), 0);
    }
}
