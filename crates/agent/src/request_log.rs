//! The append-only request log: one JSON line per sign request and what
//! became of it. No signed data and no signatures, only what a person
//! needs to audit who asked for what.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use vmux_proto::envelope::SignContext;

/// File name in the state directory.
pub const LOG_FILE: &str = "agent-log.jsonl";

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
}

/// Appends entries to the log file.
#[derive(Debug)]
pub struct RequestLog {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Mutex<()>,
}

impl RequestLog {
    /// A log at `path` (created on first write, 0600).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Appends `entry`; a failure to log is reported, not fatal.
    pub fn append(&self, entry: &Entry) {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = self.write(entry) {
            tracing::warn!("cannot write the request log {}: {e}", self.path.display());
        }
    }

    fn write(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(&line)
    }
}

/// Reads the log at `path`: entries, and lines that did not parse are
/// skipped and counted.
pub fn read(path: &Path) -> std::io::Result<(Vec<Entry>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
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
