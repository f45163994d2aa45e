//! Link framing: a 2-byte big-endian length, then that many bytes.
//!
//! The length field itself caps a frame at 65535 bytes, the largest Noise
//! message, so no declared length can make us allocate more than that.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::noise::MAX_MESSAGE_LEN;
use crate::{Error, Result};

/// Prefixes `body` with its length.
pub fn encode(body: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(body.len()).map_err(|_| Error::MessageTooLong(body.len()))?;
    if len == 0 {
        return Err(Error::EmptyFrame);
    }
    let mut frame = Vec::with_capacity(2 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Splits complete frames off the front of a byte stream, without I/O.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame body, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(&[hi, lo]) = self.buf.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(Error::EmptyFrame);
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let body = self
            .buf
            .get(2..2 + len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.buf.drain(..2 + len);
        Ok(Some(body))
    }
}

/// Reads one frame body.
pub async fn read<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>> {
    let mut header = [0u8; 2];
    reader.read_exact(&mut header).await?;
    let len = usize::from(u16::from_be_bytes(header));
    if len == 0 {
        return Err(Error::EmptyFrame);
    }
    debug_assert!(len <= MAX_MESSAGE_LEN);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Writes one frame.
pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> Result<()> {
    writer.write_all(&encode(body)?).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_splits_frames_across_pushes() {
        let mut d = FrameDecoder::default();
        let mut stream = encode(b"hello").unwrap();
        stream.extend(encode(b"w").unwrap());
        d.push(&stream[..3]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&stream[3..]);
        assert_eq!(d.next_frame().unwrap().unwrap(), b"hello");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"w");
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn empty_and_oversized_frames_are_refused() {
        assert!(encode(&[]).is_err());
        assert!(encode(&vec![0u8; 65536]).is_err());
        let mut d = FrameDecoder::default();
        d.push(&[0, 0]);
        assert!(d.next_frame().is_err());
    }
}
