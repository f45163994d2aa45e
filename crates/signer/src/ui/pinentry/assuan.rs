//! The client side of the Assuan protocol, as far as pinentry needs it: one
//! command line out, data and status lines back until `OK` or `ERR`.
//!
//! Our own rather than the `pinentry` crate (str4d's, used by rage): that
//! crate runs a dialog to completion on the calling thread with no handle
//! to close it, so a request that expires or is withdrawn could not take
//! its dialog with it; nor does it pass the terminal (`OPTION ttyname`)
//! that console pinentries draw on. What is needed here is small: spawn,
//! write a line, read lines, percent-escape both ways.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use zeroize::Zeroizing;

/// Assuan caps a line at 1000 bytes; allow for pinentries that don't.
const MAX_LINE: usize = 4096;
/// The most data (a passphrase) one command may return.
const MAX_DATA: usize = 4096;

/// gpg-error codes (the low 16 bits of an `ERR` code) that mean the person
/// said no: Cancel, Escape or closing the window; "Not confirmed"; a timeout.
const CANCELED: u32 = 99;
const NOT_CONFIRMED: u32 = 114;
const TIMEOUT: u32 = 62;

/// How a command ended.
#[derive(Debug)]
pub enum Reply {
    /// `OK`, with the data lines' bytes (a passphrase, for GETPIN).
    Ok(Zeroizing<String>),
    /// The person declined: Cancel, Escape, the window closed, a timeout.
    Declined,
}

/// A pinentry process. Dropping it kills the process, which closes its
/// dialog.
#[derive(Debug)]
pub struct Pinentry {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Pinentry {
    /// Starts `program` and reads its greeting.
    pub async fn start(program: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its complaints would land on our terminal, or a dialog's.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start the pinentry {}: {e}", program.display()),
                )
            })?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the pinentry has no pipes"));
        };
        let mut pinentry = Self {
            child,
            input,
            output: BufReader::new(output),
        };
        match pinentry.reply().await? {
            Reply::Ok(_) => Ok(pinentry),
            Reply::Declined => Err(std::io::Error::other("the pinentry refused to start")),
        }
    }

    /// Sends `command` with `argument` percent-escaped.
    pub async fn send(&mut self, command: &str, argument: &str) -> std::io::Result<Reply> {
        let mut line = command.to_owned();
        if !argument.is_empty() {
            line.push(' ');
            line.push_str(&escape(argument));
        }
        line.push('\n');
        self.input.write_all(line.as_bytes()).await?;
        self.input.flush().await?;
        self.reply().await
    }

    /// Reads lines up to `OK` or `ERR`, keeping the data.
    async fn reply(&mut self) -> std::io::Result<Reply> {
        let mut data = Zeroizing::new(Vec::new());
        loop {
            let line = self.line().await?;
            let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match verb {
                "OK" => {
                    let text = String::from_utf8(std::mem::take(&mut *data))
                        .map_err(|_| std::io::Error::other("the pinentry returned non-UTF-8"))?;
                    return Ok(Reply::Ok(Zeroizing::new(text)));
                }
                "ERR" => {
                    let code = rest
                        .split(' ')
                        .next()
                        .and_then(|c| c.parse::<u32>().ok())
                        .unwrap_or(0);
                    return match code & 0xffff {
                        CANCELED | NOT_CONFIRMED | TIMEOUT => Ok(Reply::Declined),
                        _ => Err(std::io::Error::other(format!(
                            "the pinentry failed: {}",
                            vmux_proto::text::escape(rest)
                        ))),
                    };
                }
                "D" => {
                    unescape_into(rest.as_bytes(), &mut data)?;
                    if data.len() > MAX_DATA {
                        return Err(std::io::Error::other("the pinentry returned too much"));
                    }
                }
                // Status, comments; an INQUIRE is answered with END.
                "INQUIRE" => {
                    self.input.write_all(b"END\n").await?;
                    self.input.flush().await?;
                }
                _ => {}
            }
        }
    }

    /// One line, without its newline; capped at [`MAX_LINE`].
    async fn line(&mut self) -> std::io::Result<Zeroizing<String>> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(256));
        loop {
            let buffer = self.output.fill_buf().await?;
            if buffer.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the pinentry exited",
                ));
            }
            let (take, done) = match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buffer.len(), false),
            };
            let chunk = buffer.get(..take).unwrap_or_default();
            bytes.extend_from_slice(chunk.strip_suffix(b"\n").unwrap_or(chunk));
            self.output.consume(take);
            if bytes.len() > MAX_LINE {
                return Err(std::io::Error::other("the pinentry sent an overlong line"));
            }
            if done {
                let text = String::from_utf8(std::mem::take(&mut *bytes))
                    .map_err(|_| std::io::Error::other("the pinentry sent non-UTF-8"))?;
                return Ok(Zeroizing::new(text));
            }
        }
    }

    /// Ends the process now (the dialog closes with it).
    pub async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Assuan's escaping of a command argument: `%`, CR and LF (and any other
/// control character, though callers pass text that has none) as `%XX`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' | '\r' | '\n' => out.push_str(&format!("%{:02X}", u32::from(c))),
            c if c.is_ascii_control() => out.push_str(&format!("%{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Appends a data line's bytes with `%XX` decoded.
fn unescape_into(line: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let bad = || std::io::Error::other("the pinentry sent a malformed escape");
    let mut bytes = line.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = bytes
                .next()
                .and_then(|h| (*h as char).to_digit(16))
                .ok_or_else(bad)?;
            let lo = bytes
                .next()
                .and_then(|l| (*l as char).to_digit(16))
                .ok_or_else(bad)?;
            out.push(u8::try_from(hi * 16 + lo).map_err(|_| bad())?);
        } else {
            out.push(b);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_percent_and_line_breaks() {
        assert_eq!(escape("a%b\nc\rd"), "a%25b%0Ac%0Dd");
        assert_eq!(escape("Key: \\u{202e}"), "Key: \\u{202e}");
        assert_eq!(escape("\u{7}"), "%07");
        assert_eq!(escape("ünï"), "ünï");
    }

    #[test]
    fn unescape_decodes_and_refuses_truncation() {
        let mut out = Vec::new();
        unescape_into(b"p%25ss%0A%e2%82%ac", &mut out).unwrap();
        assert_eq!(out, "p%ss\n€".as_bytes());
        assert!(unescape_into(b"%2", &mut Vec::new()).is_err());
        assert!(unescape_into(b"%zz", &mut Vec::new()).is_err());
    }
}
