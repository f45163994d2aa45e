//! Hosts the signer knows by name: `hostkeys.json` in the signer's state.
//!
//! A verified destination is only a host key; this list gives it a name
//! the person chose (`vmux hostkeys add`, `import`) or approved (learned on
//! first use, under the name the requester claimed). A key it does not
//! hold is a new host. A changed host key is any other key under a name
//! the person listed (imported or added), whatever its type, or another
//! key of the same type under a learned name (OpenSSH's sense). A learned
//! name never shadows a listed one: the list wins, and a key learned under
//! a name the person later lists for another key reads as changed.
//!
//! Names are shown on sheets and matched by policies, so they are checked
//! like anything a person reads: no control or format characters, no
//! whitespace, no patterns.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ssh_key::PublicKey;
use vmux_hostkey::known_hosts::{self, Marker};
use vmux_link::home::{Home, StateFile};
use vmux_proto::text;

use crate::error::{Error, Result};

/// `hostkeys.json` in the signer's state directory, at most
/// [`MAX_FILE_LEN`].
pub const FILE: StateFile = StateFile::new("hostkeys.json", MAX_FILE_LEN);
/// `hostkeys.json` larger than this is refused.
pub const MAX_FILE_LEN: u64 = 4 << 20;
/// A file to import larger than this is refused (as `vmux ssh` refuses
/// such a known_hosts file).
pub const MAX_IMPORT_LEN: u64 = known_hosts::MAX_FILE_LEN;
/// Most host keys kept.
pub const MAX_HOSTS: usize = 20_000;
/// Longest host name (DNS allows 253, plus `[` `]:65535`).
pub const MAX_NAME_LEN: usize = 261;

/// How a name came to be on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// From a known_hosts file, `vmux hostkeys import`.
    Imported,
    /// `vmux hostkeys add`.
    Added,
    /// Approved on a sheet under the name the requester claimed.
    Learned,
}

impl Source {
    /// The word `vmux hostkeys list` shows.
    pub fn word(self) -> &'static str {
        match self {
            Source::Imported => "imported",
            Source::Added => "added",
            Source::Learned => "learned on first use",
        }
    }
}

/// One named host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// The host's name.
    pub name: String,
    /// Its key (no comment).
    pub key: PublicKey,
    /// How it got here.
    pub source: Source,
    /// When, ms since the epoch.
    pub since_ms: u64,
}

impl HostKey {
    /// The key's `SHA256:` fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }
}

/// `SHA256:` fingerprint of `key`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.to_bytes()
        .map(|b| vmux_link::Fingerprint::of(&b).to_string())
        .unwrap_or_default()
}

/// Reads an OpenSSH public key file's text (`TYPE BASE64 [comment]`).
pub fn read_public_key(text: &str) -> Result<PublicKey> {
    PublicKey::from_openssh(text.trim()).map_err(|e| {
        Error::Invalid(format!(
            "not an OpenSSH public key ({e}); give a file like /etc/ssh/ssh_host_ed25519_key.pub"
        ))
    })
}

/// What the list says of a host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming<'a> {
    /// On the list (a listed entry before a learned one).
    Known(&'a HostKey),
    /// Not on the list; the name the requester claimed is not listed, and
    /// was not learned for a key of its type.
    New,
    /// A changed host key: the name it goes by (claimed, or learned for
    /// it) is listed for another key of any type, or was learned for
    /// another key of the same type. Holds the entry it contradicts.
    Changed(&'a HostKey),
}

/// What `add` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// A new name/key pair.
    New,
    /// This name already had this key.
    AlreadyKnown,
    /// This name's key of the same type was replaced.
    Replaced,
}

/// What `import` did, for the person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Names added.
    pub added: usize,
    /// Names already there with this key.
    pub already: usize,
    /// Names whose key of the same type was replaced.
    pub replaced: usize,
    /// Lines whose names are hashed (cannot be read back).
    pub hashed: usize,
    /// Wildcard or negated patterns skipped (they name no one host).
    pub patterns: usize,
    /// `@revoked` and `@cert-authority` lines skipped.
    pub marked: usize,
    /// Names refused: line number, the name escaped, why.
    pub refused: Vec<(usize, String, String)>,
    /// Non-blank, non-comment lines that are not known_hosts lines.
    pub unreadable: usize,
}

/// The list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostKeys {
    hosts: Vec<HostKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    version: u32,
    hosts: Vec<Line>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    name: String,
    /// `ssh-ed25519 AAAA…`, as in known_hosts.
    key: String,
    source: Source,
    since_milliseconds: u64,
}

impl HostKeys {
    /// Reads the list from `home`; empty when there is none yet.
    pub fn load(home: &Home) -> Result<Self> {
        let path = FILE.path(home);
        match FILE.read(home)? {
            None => Ok(Self::default()),
            Some(bytes) => Self::from_json(&bytes).map_err(|why| Error::Corrupt { path, why }),
        }
    }

    /// Loads, changes and saves the list under its lock.
    pub fn update<R>(home: &Home, change: impl FnOnce(&mut HostKeys) -> Result<R>) -> Result<R> {
        let path = FILE.path(home);
        FILE.locked(&path, || {
            let mut list = Self::load(home)?;
            let result = change(&mut list)?;
            let json = list.to_json();
            // Never write what `load` would refuse: every sign would fail.
            if json.len() as u64 > MAX_FILE_LEN {
                return Err(Error::Invalid(format!(
                    "the host key list would pass {} MiB, more than the signer reads; remove some with `vmux hostkeys remove NAME`",
                    MAX_FILE_LEN >> 20
                )));
            }
            FILE.write_at(&path, &json)?;
            Ok(result)
        })
    }

    /// Parses the file's bytes; every name and key is checked again.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file: File = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if file.version != 1 {
            return Err(format!(
                "version {} (this build reads version 1)",
                file.version
            ));
        }
        if file.hosts.len() > MAX_HOSTS {
            return Err(format!("more than {MAX_HOSTS} host keys"));
        }
        let hosts = file
            .hosts
            .into_iter()
            .map(|l| {
                check_name(&l.name)
                    .map_err(|why| format!("host name \"{}\": {why}", text::escape(&l.name)))?;
                let key = PublicKey::from_openssh(&l.key)
                    .map_err(|e| format!("the key of \"{}\": {e}", l.name))?;
                Ok(HostKey {
                    name: l.name,
                    key: bare(&key),
                    source: l.source,
                    since_ms: l.since_milliseconds,
                })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(Self { hosts })
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let file = File {
            version: 1,
            hosts: self
                .hosts
                .iter()
                .map(|h| Line {
                    name: h.name.clone(),
                    key: h.key.to_openssh().unwrap_or_default(),
                    source: h.source,
                    since_milliseconds: h.since_ms,
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Every named key, in the order they were added.
    pub fn list(&self) -> &[HostKey] {
        &self.hosts
    }

    /// Every entry holding the host key `blob`.
    pub fn names_of(&self, blob: &[u8]) -> Vec<&HostKey> {
        let Ok(key) = PublicKey::from_bytes(blob) else {
            return Vec::new();
        };
        self.hosts
            .iter()
            .filter(|h| h.key.key_data() == key.key_data())
            .collect()
    }

    /// What the list says of the host key `blob`, which the requester
    /// calls `claimed`.
    pub fn naming(&self, blob: &[u8], claimed: Option<&str>) -> Naming<'_> {
        let known = self.names_of(blob);
        if let Some(listed) = known.iter().find(|h| h.source != Source::Learned) {
            return Naming::Known(listed);
        }
        // Only learned names: one the person has listed since for another
        // key is theirs, not this key's.
        if let Some(listed) = known.iter().find_map(|h| self.listed(&h.name)) {
            return Naming::Changed(listed);
        }
        if let Some(learned) = known.first() {
            return Naming::Known(learned);
        }
        let (Ok(key), Some(claimed)) = (PublicKey::from_bytes(blob), claimed) else {
            return Naming::New;
        };
        if let Some(listed) = self.listed(claimed) {
            return Naming::Changed(listed);
        }
        self.hosts
            .iter()
            .find(|h| same_name(&h.name, claimed) && h.key.algorithm() == key.algorithm())
            .map_or(Naming::New, Naming::Changed)
    }

    /// The first entry the person listed (imported or added) as `name`.
    fn listed(&self, name: &str) -> Option<&HostKey> {
        self.hosts
            .iter()
            .find(|h| h.source != Source::Learned && same_name(&h.name, name))
    }

    /// Names `key` `name`. A key of the same type under that name is
    /// replaced: the person said so. Listing a name (imported, added)
    /// drops any key learned under it, of any type.
    pub fn add(
        &mut self,
        name: &str,
        key: &PublicKey,
        source: Source,
        now_ms: u64,
    ) -> Result<Added> {
        check_name(name).map_err(|why| {
            Error::Invalid(format!("host name \"{}\": {why}", text::escape(name)))
        })?;
        let key = bare(key);
        let same_type =
            |h: &HostKey| same_name(&h.name, name) && h.key.algorithm() == key.algorithm();
        let shadowed = |h: &HostKey| {
            source != Source::Learned && h.source == Source::Learned && same_name(&h.name, name)
        };
        if self
            .hosts
            .iter()
            .any(|h| same_type(h) && h.key.key_data() == key.key_data())
        {
            return Ok(Added::AlreadyKnown);
        }
        let before = self.hosts.len();
        self.hosts.retain(|h| !same_type(h) && !shadowed(h));
        let added = if self.hosts.len() < before {
            Added::Replaced
        } else {
            Added::New
        };
        if self.hosts.len() >= MAX_HOSTS {
            return Err(Error::Invalid(format!(
                "the signer already names {MAX_HOSTS} host keys; remove some with `vmux hostkeys remove NAME`"
            )));
        }
        self.hosts.push(HostKey {
            name: name.to_owned(),
            key,
            source,
            since_ms: now_ms,
        });
        Ok(added)
    }

    /// Remembers the host key `blob` under `claimed`, learned on first use,
    /// after the person approved a login to it. Nothing is learned over a
    /// known key or a changed one, nor under a name that cannot be a host's.
    pub fn learn(&mut self, claimed: &str, blob: &[u8], now_ms: u64) -> Result<bool> {
        if self.naming(blob, Some(claimed)) != Naming::New || check_name(claimed).is_err() {
            return Ok(false);
        }
        let key = PublicKey::from_bytes(blob)
            .map_err(|e| Error::Invalid(format!("the host key does not parse: {e}")))?;
        Ok(self.add(claimed, &key, Source::Learned, now_ms)? == Added::New)
    }

    /// Forgets every key named `name`; how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.hosts.len();
        self.hosts.retain(|h| !same_name(&h.name, name));
        before - self.hosts.len()
    }

    /// Adds the plain names of a known_hosts file (or `ssh-keyscan`
    /// output). Nothing a person could not read back is taken.
    pub fn import(&mut self, file_text: &str, now_ms: u64) -> Result<Imported> {
        let mut report = Imported::default();
        for (i, line) in file_text.lines().enumerate() {
            let number = i.saturating_add(1);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some(entry) = known_hosts::parse_line(line, number) else {
                report.unreadable += 1;
                continue;
            };
            if entry.marker != Marker::None {
                report.marked += 1;
                continue;
            }
            if entry.hosts.starts_with('|') {
                report.hashed += 1;
                continue;
            }
            for name in entry.hosts.split(',').filter(|n| !n.is_empty()) {
                if name.starts_with('!') || name.contains(['*', '?']) {
                    report.patterns += 1;
                    continue;
                }
                if let Err(why) = check_name(name) {
                    report
                        .refused
                        .push((number, text::escape(name).into_owned(), why.to_owned()));
                    continue;
                }
                match self.add(name, &entry.key, Source::Imported, now_ms)? {
                    Added::New => report.added += 1,
                    Added::AlreadyKnown => report.already += 1,
                    Added::Replaced => report.replaced += 1,
                }
            }
        }
        Ok(report)
    }
}

/// Where `vmux hostkeys` keeps the list in `home`.
pub fn path(home: &Home) -> PathBuf {
    FILE.path(home)
}

/// Whether `name` can be a host's name on this list; why not.
pub fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 261 bytes");
    }
    if name.chars().any(text::is_forbidden) {
        return Err("holds control or format characters");
    }
    if name.chars().any(char::is_whitespace) || name.contains(',') {
        return Err("holds whitespace or a comma");
    }
    if name.starts_with(['|', '!', '@', '#']) || name.contains(['*', '?']) {
        return Err("is a pattern, a hashed name or a marker, not a host name");
    }
    Ok(())
}

/// Host names compare as OpenSSH compares them: ignoring ASCII case.
fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn bare(key: &PublicKey) -> PublicKey {
    PublicKey::new(key.key_data().clone(), "")
}

#[cfg(test)]
mod tests;
