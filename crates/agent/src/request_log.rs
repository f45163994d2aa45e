//! The append-only request log: one JSON line per sign request and what
//! became of it. No signed data and no signatures, only what a person
//! needs to audit who asked for what. Rotated at a size
//! ([`vmux_link::logfile`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use vmux_link::logfile::{self, Rotation};
use vmux_proto::envelope::SignContext;

use crate::unsaved::Unsaved;

/// File name in the state directory.
pub const LOG_FILE: &str = "agent-log.jsonl";
/// Entries kept in memory while the log cannot be written; past this the
/// oldest go, so a long outage cannot grow the agent without bound.
pub const MAX_HELD: usize = 1024;

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request arrived, ms since the epoch.
    pub time_milliseconds: u64,
    /// The link `requestID`, when the request reached the link.
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `SHA256:` fingerprint of the key asked for.
    pub key_fingerprint: String,
    /// The key's comment.
    pub key_comment: String,
    /// How it was served: `forwarded` to the signer.
    pub path: String,
    /// What was known about the request.
    pub context: SignContext,
    /// `approved`, a signer error code (`userDenied`, …), `unreachable`,
    /// `timedOut`, `locked`.
    pub outcome: String,
    /// Time from arrival to answer.
    pub latency_ms: u64,
    /// The signer's reason, when it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The hosts the connection was bound to, `a (forwarded) → b`: host
    /// signatures this agent verified, named by known_hosts when it could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// Appends entries to the log file.
#[derive(Debug)]
pub struct RequestLog {
    path: PathBuf,
    rotation: Rotation,
    /// One writer at a time, so lines never interleave; and the lines not
    /// written yet.
    held: Mutex<Held>,
    unsaved: Unsaved,
}

/// Lines waiting for the log to be writable again.
#[derive(Debug, Default)]
struct Held {
    lines: VecDeque<Vec<u8>>,
    /// Lines dropped past [`MAX_HELD`].
    dropped: u64,
}

impl RequestLog {
    /// A log at `path` (created on first write, 0600).
    pub fn new(path: PathBuf) -> Self {
        Self::rotating(path, Rotation::DEFAULT)
    }

    /// A log at `path`, rotated as `rotation` says.
    pub fn rotating(path: PathBuf, rotation: Rotation) -> Self {
        Self {
            path,
            rotation,
            held: Mutex::new(Held::default()),
            unsaved: Unsaved::new(
                "the request log",
                "signing goes on, and the entries not written (up to 1024) are kept in memory \
                 and written when the log can be written again; they are lost if the agent stops first",
            ),
        }
    }

    /// Appends `entry`, after any held earlier. A failure to write is
    /// reported once and the entry held, never fatal.
    pub fn append(&self, entry: &Entry) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot encode a request log entry: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.lines.len() >= MAX_HELD {
            held.lines.pop_front();
            held.dropped = held.dropped.saturating_add(1);
        }
        held.lines.push_back(line);
        let bytes: Vec<u8> = held.lines.iter().flatten().copied().collect();
        match self.write(&bytes) {
            Ok(()) => {
                let late = held.lines.len().saturating_sub(1);
                let dropped = std::mem::take(&mut held.dropped);
                held.lines.clear();
                let mut caught_up = String::new();
                if late > 0 {
                    caught_up = format!("; {late} entries kept in memory meanwhile were written");
                }
                if dropped > 0 {
                    caught_up.push_str(&format!(
                        "; {dropped} older entries were lost (more than {MAX_HELD} waited)"
                    ));
                }
                self.unsaved.saved(&self.path, &caught_up);
            }
            Err(e) => self.unsaved.failed(&self.path, &e),
        }
    }

    /// While the log cannot be written, what `vmux status` shows.
    pub fn unsaved(&self) -> Option<String> {
        self.unsaved.status_line()
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        logfile::append(&self.path, bytes, self.rotation)
    }
}

/// Reads the log at `path`, its rotated files first: entries, and lines
/// that did not parse are skipped and counted.
pub fn read(path: &Path) -> std::io::Result<(Vec<Entry>, usize)> {
    let text = logfile::read_to_string(path, Rotation::DEFAULT)?;
    let mut bad = 0;
    let entries = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(e) => Some(e),
            Err(_) => {
                bad += 1;
                None
            }
        })
        .collect();
    Ok((entries, bad))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            time_milliseconds: n,
            request_id: None,
            key_fingerprint: "SHA256:x".into(),
            key_comment: "work".into(),
            path: "forwarded".into(),
            context: SignContext::default(),
            outcome: "approved".into(),
            latency_ms: 0,
            message: None,
            route: None,
        }
    }

    #[test]
    fn rotates_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let line = serde_json::to_vec(&entry(1_000_000)).unwrap().len() as u64 + 1;
        // Ten entries a file, the default number kept.
        let rotation = Rotation {
            at: 10 * line + 5,
            ..Rotation::DEFAULT
        };
        let log = RequestLog::rotating(path.clone(), rotation);
        let total = 10 * (Rotation::DEFAULT.keep as u64 + 1) + 3;
        for n in 0..total {
            log.append(&entry(1_000_000 + n));
        }
        let (entries, bad) = read(&path).unwrap();
        assert_eq!(bad, 0);
        let times: Vec<u64> = entries.iter().map(|e| e.time_milliseconds).collect();
        // The first file of ten went; the rest are read oldest first.
        let expected: Vec<u64> = (1_000_000 + 10..1_000_000 + total).collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn entries_not_written_are_held_then_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory is missing, so writes fail until it appears.
        let path = dir.path().join("later").join(LOG_FILE);
        let log = RequestLog::new(path.clone());
        for n in 0..MAX_HELD as u64 + 2 {
            log.append(&entry(n));
        }
        assert!(log.unsaved().unwrap().contains("the request log"));
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        log.append(&entry(9999));
        assert_eq!(log.unsaved(), None);
        let (entries, bad) = read(&path).unwrap();
        assert_eq!(bad, 0);
        let times: Vec<u64> = entries.iter().map(|e| e.time_milliseconds).collect();
        // The two oldest went past the bound; the rest kept their order.
        let mut expected: Vec<u64> = (3..MAX_HELD as u64 + 2).collect();
        expected.push(9999);
        assert_eq!(times, expected);
    }
}
