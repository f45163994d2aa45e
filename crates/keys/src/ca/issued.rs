//! The issue log: one JSON line per certificate the CA signed, so that
//! `vmux ca revoke DEVICE` can find every serial it gave that device.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use vmux_state::{Home, StateFile};

use crate::{Error, Result};

/// The issue log's file in the state dir: one line of a few hundred bytes
/// per certificate, so years of daily certificates for a household of
/// devices.
pub const ISSUED_FILE: StateFile = StateFile::new("ca-issued.jsonl", 64 << 20);

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRecord {
    /// When it was issued, Unix seconds.
    pub time: u64,
    /// Its serial.
    pub serial: u64,
    /// Its key ID.
    pub key_id: String,
    /// The device it was issued to (its pinned name).
    pub device: String,
    /// Its principals.
    pub principals: Vec<String>,
    /// Valid from, Unix seconds.
    pub valid_after: u64,
    /// Valid until, Unix seconds.
    pub valid_before: u64,
}

/// Appends `record` to the issue log (0600), synced before returning:
/// a certificate goes out only once it is on record.
pub fn append(home: &Home, record: &IssueRecord) -> Result<()> {
    let path = ISSUED_FILE.path(home);
    let fail = |e: std::io::Error| {
        Error::other(format!(
            "cannot record the certificate in {} ({e}); nothing was handed out",
            path.display()
        ))
    };
    let mut line = serde_json::to_vec(record)
        .map_err(|e| Error::other(format!("cannot encode the issue log entry: {e}")))?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    file.write_all(&line).map_err(fail)?;
    file.sync_data().map_err(fail)
}

/// Every record in the issue log, oldest first, and how many lines could
/// not be read (a line cut short by a crash, or edited by hand).
pub fn read(home: &Home) -> Result<(Vec<IssueRecord>, usize)> {
    let Some(bytes) = ISSUED_FILE.read(home)? else {
        return Ok((Vec::new(), 0));
    };
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice(line) {
            Ok(record) => records.push(record),
            Err(_) => unreadable += 1,
        }
    }
    Ok((records, unreadable))
}
