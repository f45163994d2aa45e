//! The signer's request log: one JSON line per request, appended.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vmux_link::clock::format_utc;

/// One request and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request arrived, ms since the epoch.
    pub time: u64,
    /// The request's id.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// `sign` or `certificate`.
    pub kind: String,
    /// The requesting device's pinned name.
    pub device: String,
    /// The key asked for (or the certificate's key), `SHA256:` form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Where it was going, as the requester described it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// `approved`, or the error code.
    pub outcome: String,
    /// From arrival to decision, in ms.
    pub decision_ms: u64,
}

/// Appends entries to `signer-log.jsonl`.
#[derive(Clone, Debug)]
pub struct Log {
    path: PathBuf,
}

impl Log {
    /// The log at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Appends one entry. Failing to log never blocks signing; it is reported.
    pub fn append(&self, entry: &Entry) {
        let result = (|| -> std::io::Result<()> {
            let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            options.open(&self.path)?.write_all(&line)
        })();
        if let Err(e) = result {
            tracing::warn!(
                "could not write the signer log {}: {e}",
                self.path.display()
            );
        }
    }

    /// Every entry; lines that don't parse are skipped with a warning.
    pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(e) => Some(e),
                Err(err) => {
                    tracing::warn!("skipping an unreadable log line: {err}");
                    None
                }
            })
            .collect())
    }
}

impl Entry {
    /// One line for people.
    pub fn human(&self) -> String {
        format!(
            "{}  {:<11} {:<18} {:<20} {:<40} {} ({} ms)",
            format_utc(self.time),
            self.kind,
            self.device,
            self.destination.as_deref().unwrap_or("-"),
            self.key_fingerprint.as_deref().unwrap_or("-"),
            self.outcome,
            self.decision_ms
        )
    }
}
