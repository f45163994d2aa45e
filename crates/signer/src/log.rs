//! The signer's request log: one JSON line per request, appended, rotated
//! at a size ([`vmux_link::logfile`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vmux_link::clock::format_utc;
use vmux_link::logfile::{self, Rotation};
use vmux_proto::text::escape;

/// File name in the state directory.
pub const LOG_FILE: &str = "signer-log.jsonl";

/// One request and what became of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The name its `hello` gave, when that differs: only its own word,
    /// kept because a device claiming another's name is worth seeing later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_device: Option<String>,
    /// The key asked for (or the certificate's key), `SHA256:` form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Where it was going (the host alone), with how sure the signer is:
    /// `prod-db (verified by this signer)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The account the login logs in as, read from the signed data (the
    /// user name up to its first `:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The authentication style after that `:`, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// The host name the requester gave an unproved destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_host: Option<String>,
    /// `SSH login`, `git signature`, `file signature (namespace "…")`,
    /// `unknown data`, with its quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `laptop → bastion (forwarded) → db`, with its quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The destination's host key and what the signer knows of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Why it was refused (what disagreed, which policy), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `approved`, or the error code.
    pub outcome: String,
    /// From arrival to decision, in ms.
    pub decision_ms: u64,
}

/// Appends entries to `signer-log.jsonl`.
#[derive(Clone, Debug)]
pub struct Log {
    path: PathBuf,
    rotation: Rotation,
}

impl Log {
    /// The log at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self::rotating(path, Rotation::DEFAULT)
    }

    /// The log at `path`, rotated as `rotation` says.
    pub fn rotating(path: PathBuf, rotation: Rotation) -> Self {
        Self { path, rotation }
    }

    /// Appends one entry. Failing to log never blocks signing; it is reported.
    pub fn append(&self, entry: &Entry) {
        let result = serde_json::to_vec(entry)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                logfile::append(&self.path, &line, self.rotation)
            });
        if let Err(e) = result {
            tracing::warn!(
                "could not write the signer log {}: {e}",
                self.path.display()
            );
        }
    }

    /// The log's text, its rotated files first (`vmux signer log --json`).
    pub fn read_text(path: &Path) -> std::io::Result<String> {
        logfile::read_to_string(path, Rotation::DEFAULT)
    }

    /// Every entry, oldest first; lines that don't parse are skipped with
    /// a warning.
    pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
        let text = Self::read_text(path)?;
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
    /// One line for people. Every field is stored text, some of it a
    /// peer's words, and a log may be older than today's checks: escaped.
    pub fn human(&self) -> String {
        let field = |v: &Option<String>| escape(v.as_deref().unwrap_or("-")).into_owned();
        let mut line = format!(
            "{}  {:<11} {:<18} {:<20} {:<40} {} ({} ms)",
            format_utc(self.time),
            escape(&self.kind),
            escape(&self.device),
            field(&self.destination),
            field(&self.key_fingerprint),
            escape(&self.outcome),
            self.decision_ms
        );
        for (label, value) in [
            ("claims name", &self.claimed_device),
            ("user", &self.user),
            ("auth style requested", &self.style),
            ("host name", &self.claimed_host),
            ("purpose", &self.purpose),
            ("path", &self.path),
            ("host key", &self.host_key),
            ("reason", &self.reason),
        ] {
            if value.is_some() {
                line.push_str(&format!("\n    {label}: {}", field(value)));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(n: u64, device: &str) -> Entry {
        Entry {
            time: 1_700_000_000_000 + n,
            request_id: format!("r{n:06}"),
            kind: "sign".into(),
            device: device.into(),
            key_fingerprint: None,
            destination: Some("git@example.com".into()),
            outcome: "approved".into(),
            decision_ms: 5,
            ..Entry::default()
        }
    }

    #[test]
    fn rotates_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let line = serde_json::to_vec(&entry(0, "laptop")).unwrap().len() as u64 + 1;
        let rotation = Rotation {
            at: 5 * line,
            keep: 2,
        };
        let log = Log::rotating(path.clone(), rotation);
        for n in 0..17 {
            log.append(&entry(n, "laptop"));
        }
        // Files of five, two older ones kept: 0..5 went; `Log::read`
        // takes 5..10, 10..15, then 15..17.
        let ids: Vec<String> = Log::read(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        let expected: Vec<String> = (5..17).map(|n| format!("r{n:06}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn human_escapes_stored_text() {
        let line = entry(1, "evil\u{1b}[2J\u{202e}").human();
        assert!(!line.contains(['\u{1b}', '\u{202e}']), "{line}");
        assert!(line.contains("evil\\e[2J\\u{202e}"), "{line}");
    }
}
