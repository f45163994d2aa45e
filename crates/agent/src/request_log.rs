//! The append-only request log: one JSON line per sign request and what
//! became of it. No signed data and no signatures, only what a person
//! needs to audit who asked for what. Rotated at a size
//! ([`vmux_link::logfile`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use vmux_link::logfile::{self, Rotation};
use vmux_proto::envelope::{ErrorCode, SignContext};

use crate::sign_route::Refusal;
use crate::unsaved::Unsaved;

/// File name in the state directory.
pub const LOG_FILE: &str = "agent-log.jsonl";
/// Entries kept in memory while the log cannot be written; past this the
/// oldest go, so a long outage cannot grow the agent without bound.
pub const MAX_HELD: usize = 1024;

/// One line of the log. Field names as in the signer's log
/// (`signer-log.jsonl`) where they mean the same: `time`, `requestID`,
/// `kind`, `keyFingerprint`, `outcome`, `reason`. The signer's `path` is
/// the hosts; here that is `route`, and `path` says how it was served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request arrived, ms since the epoch.
    #[serde(alias = "timeMilliseconds")]
    pub time: u64,
    /// The link `requestID`, when the request reached the link.
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A signature, or a certificate for the agent's own key.
    #[serde(default)]
    pub kind: Kind,
    /// `SHA256:` fingerprint of the key asked for.
    pub key_fingerprint: String,
    /// The key's comment.
    pub key_comment: String,
    /// How it was served.
    pub path: Via,
    /// What was known about the request.
    pub context: SignContext,
    /// What became of it.
    pub outcome: Outcome,
    /// Time from arrival to answer.
    pub latency_ms: u64,
    /// The signer's reason, when it refused.
    #[serde(alias = "message", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The hosts the connection was bound to, `a (forwarded) → b`: host
    /// signatures this agent verified, named by known_hosts when it could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// What was asked for, as the signer's log says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A signature.
    #[default]
    Sign,
    /// A session certificate for the agent's ephemeral key.
    Certificate,
}

/// How a request was served. The names are the log's since its first
/// version, so older lines read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Via {
    /// Sent to the signer over the link.
    #[serde(rename = "forwarded")]
    Signer,
    /// Signed here with the session certificate's key.
    #[serde(rename = "session-cert")]
    SessionCert,
    /// A certificate request to the signer.
    #[serde(rename = "certificate")]
    Certificate,
    /// Passed to the upstream agent.
    #[serde(rename = "upstream")]
    Upstream,
}

/// What the agent, or the agent upstream, made of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    /// Signed (or the certificate issued).
    Approved,
    /// No session with the signer in time, or it ended first.
    Unreachable,
    /// Sent, but no answer in time.
    TimedOut,
    /// The upstream agent answered with a failure.
    Refused,
    /// The signer's certificate had already expired on arrival.
    CertificateExpired,
    /// The signer's certificate was for another key.
    CertificateMismatch,
}

/// A log line's outcome: ours, the agent's own refusal, or the signer's
/// error code. Written as one camelCase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// What happened.
    Event(Event),
    /// Refused by this agent.
    Refused(Refusal),
    /// Refused by the signer (an unknown word reads as `unknown`).
    Signer(ErrorCode),
}

impl Outcome {
    /// The word written to the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Event(e) => match e {
                Event::Approved => "approved",
                Event::Unreachable => "unreachable",
                Event::TimedOut => "timedOut",
                Event::Refused => "refused",
                Event::CertificateExpired => "certificateExpired",
                Event::CertificateMismatch => "certificateMismatch",
            },
            Outcome::Refused(r) => r.as_str(),
            Outcome::Signer(code) => code.as_str(),
        }
    }
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
            time: n,
            request_id: None,
            kind: Kind::Sign,
            key_fingerprint: "SHA256:x".into(),
            key_comment: "work".into(),
            path: Via::Signer,
            context: SignContext::default(),
            outcome: Outcome::Event(Event::Approved),
            latency_ms: 0,
            reason: None,
            route: None,
        }
    }

    #[test]
    fn older_lines_read_and_every_outcome_is_one_word() {
        let old = r#"{"timeMilliseconds":7,"keyFingerprint":"SHA256:x","keyComment":"c","path":"session-cert","context":{"contextQuality":"none"},"outcome":"userDenied","latencyMs":1,"message":"no"}"#;
        let e: Entry = serde_json::from_str(old).unwrap();
        assert_eq!((e.time, e.kind, e.path), (7, Kind::Sign, Via::SessionCert));
        assert_eq!(e.outcome, Outcome::Signer(ErrorCode::UserDenied));
        assert_eq!(e.reason.as_deref(), Some("no"));
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.starts_with(r#"{"time":7,"kind":"sign","#), "{line}");
        for outcome in [
            Outcome::Event(Event::TimedOut),
            Outcome::Event(Event::CertificateMismatch),
            Outcome::Refused(Refusal::Locked),
            Outcome::Refused(Refusal::BindFailed),
            Outcome::Signer(ErrorCode::Internal),
            Outcome::Signer(ErrorCode::SignerBusy),
        ] {
            let text = serde_json::to_string(&outcome).unwrap();
            assert_eq!(text, format!("\"{}\"", outcome.as_str()));
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), outcome);
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
        let times: Vec<u64> = entries.iter().map(|e| e.time).collect();
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
        let times: Vec<u64> = entries.iter().map(|e| e.time).collect();
        // The two oldest went past the bound; the rest kept their order.
        let mut expected: Vec<u64> = (3..MAX_HELD as u64 + 2).collect();
        expected.push(9999);
        assert_eq!(times, expected);
    }
}
