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
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    // Host keys made with `ssh-keygen -t ed25519` / `-t ecdsa` (OpenSSH 9.2p1).
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";
    const EC_A: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOGLEnBnIf+7pGbsSn6NT1+fr6JdY21/HBe8jbVlhz1R63JHpxDfBoy89xDf7DLMx//ObcHWkj4XPvDlACoH4kI=";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn blob(s: &str) -> Vec<u8> {
        key(s).to_bytes().unwrap()
    }

    #[test]
    fn import_takes_plain_names_and_says_what_it_skipped() {
        let file = format!(
            "# 127.0.0.1:22 SSH-2.0-OpenSSH_9.2p1\n\
             prod-db,10.0.0.5 {ED_A} admin@laptop\n\
             [127.0.0.1]:2222 {EC_A}\n\
             |1|Vx3/K7+mitYG8qjnX1CHJKvEqiA=|KRG82dB/Mj54OV2BXheqEWFiu2A= {ED_B}\n\
             *.corp,!bad.corp {ED_B}\n\
             @revoked evil {ED_B}\n\
             evil\u{1b}[2J {ED_B}\n\
             not a line\n\n"
        );
        let mut list = HostKeys::default();
        let report = list.import(&file, 7).unwrap();
        assert_eq!(report.added, 3);
        assert_eq!(report.hashed, 1);
        assert_eq!(report.patterns, 2);
        assert_eq!(report.marked, 1);
        assert_eq!(report.unreadable, 1);
        assert_eq!(report.refused.len(), 1);
        let (line, name, _) = &report.refused[0];
        assert_eq!((*line, name.as_str()), (7, "evil\\e[2J"));
        let names: Vec<&str> = list
            .names_of(&blob(ED_A))
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names, ["prod-db", "10.0.0.5"]);
        // Importing again changes nothing.
        let again = list.import(&file, 8).unwrap();
        assert_eq!((again.added, again.already), (0, 3));
    }

    #[test]
    fn known_new_and_changed_in_openssh_terms() {
        let mut list = HostKeys::default();
        list.add("prod-db", &key(ED_A), Source::Added, 1).unwrap();
        assert!(matches!(list.naming(&blob(ED_A), None), Naming::Known(h) if h.name == "prod-db"));
        assert!(matches!(
            list.naming(&blob(ED_A), Some("other")),
            Naming::Known(_)
        ));
        assert_eq!(list.naming(&blob(ED_B), None), Naming::New);
        assert_eq!(list.naming(&blob(ED_B), Some("elsewhere")), Naming::New);
        assert!(
            matches!(list.naming(&blob(ED_B), Some("PROD-DB")), Naming::Changed(h) if h.name == "prod-db")
        );
        // A listed name with a key of another type is a changed key too.
        assert!(
            matches!(list.naming(&blob(EC_A), Some("prod-db")), Naming::Changed(h) if h.name == "prod-db")
        );
        assert_eq!(list.naming(b"junk", Some("prod-db")), Naming::New);
        // A learned name is OpenSSH's sense only: another type is new.
        list.learn("web", &blob(ED_B), 2).unwrap();
        assert_eq!(list.naming(&blob(EC_A), Some("web")), Naming::New);
    }

    #[test]
    fn a_learned_name_never_shadows_a_listed_one() {
        let mut list = HostKeys::default();
        list.add("prod-db", &key(ED_A), Source::Imported, 1)
            .unwrap();
        // Another type, claimed under the listed name: changed, not learned.
        assert!(!list.learn("prod-db", &blob(EC_A), 2).unwrap());
        assert!(matches!(
            list.naming(&blob(EC_A), Some("prod-db")),
            Naming::Changed(_)
        ));
        // A key learned first, the name listed for another key after it.
        let mut list = HostKeys::default();
        assert!(list.learn("db", &blob(EC_A), 1).unwrap());
        let mut kept = list.clone();
        kept.hosts.push(HostKey {
            name: "db".into(),
            key: key(ED_A),
            source: Source::Added,
            since_ms: 2,
        });
        assert!(
            matches!(kept.naming(&blob(EC_A), None), Naming::Changed(h) if h.source == Source::Added)
        );
        // Listing the name drops what was learned under it.
        assert_eq!(
            list.add("db", &key(ED_A), Source::Added, 2).unwrap(),
            Added::Replaced
        );
        assert_eq!(list.list().len(), 1);
        assert!(matches!(
            list.naming(&blob(EC_A), Some("db")),
            Naming::Changed(_)
        ));
    }

    #[test]
    fn learning_never_overrides_what_is_known() {
        let mut list = HostKeys::default();
        assert!(list.learn("db", &blob(ED_A), 5).unwrap());
        assert!(!list.learn("db", &blob(ED_A), 6).unwrap(), "already known");
        assert!(!list.learn("db", &blob(ED_B), 6).unwrap(), "changed");
        assert!(!list.learn("*", &blob(ED_B), 6).unwrap(), "not a name");
        assert_eq!(list.list().len(), 1);
        assert_eq!(list.list()[0].source, Source::Learned);
        assert_eq!(list.list()[0].since_ms, 5);
    }

    #[test]
    fn add_replaces_the_same_type_and_remove_forgets_a_name() {
        let mut list = HostKeys::default();
        assert_eq!(
            list.add("db", &key(ED_A), Source::Added, 1).unwrap(),
            Added::New
        );
        assert_eq!(
            list.add("db", &key(ED_A), Source::Added, 2).unwrap(),
            Added::AlreadyKnown
        );
        assert_eq!(
            list.add("db", &key(EC_A), Source::Added, 3).unwrap(),
            Added::New
        );
        assert_eq!(
            list.add("DB", &key(ED_B), Source::Added, 4).unwrap(),
            Added::Replaced
        );
        assert_eq!(list.list().len(), 2);
        assert!(list.names_of(&blob(ED_A)).is_empty());
        assert!(list.add("a b", &key(ED_A), Source::Added, 5).is_err());
        assert!(list.add("\u{202e}x", &key(ED_A), Source::Added, 5).is_err());
        assert_eq!(list.remove("db"), 2);
        assert_eq!(list.remove("db"), 0);
    }

    #[test]
    fn the_file_round_trips_and_a_tampered_one_is_refused() {
        let mut list = HostKeys::default();
        list.add("prod-db", &key(ED_A), Source::Learned, 1_700_000_000_000)
            .unwrap();
        let bytes = list.to_json();
        assert_eq!(HostKeys::from_json(&bytes).unwrap(), list);
        let text = String::from_utf8(bytes).unwrap();
        let evil = text.replace("prod-db", "prod\\u001b[31m");
        assert!(
            HostKeys::from_json(evil.as_bytes())
                .unwrap_err()
                .contains("control")
        );
        assert!(HostKeys::from_json(b"{\"version\":2,\"hosts\":[]}").is_err());
        assert!(HostKeys::from_json(b"[]").is_err());
    }

    #[test]
    fn update_saves_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        HostKeys::update(&home, |l| l.add("db", &key(ED_A), Source::Added, 1)).unwrap();
        let list = HostKeys::load(&home).unwrap();
        assert_eq!(list.list()[0].name, "db");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(&home)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
