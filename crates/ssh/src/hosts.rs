//! Destinations: `[user@]host[:port]` as typed, and the saved hosts of
//! `vmux hosts` (with the identity that last worked for each destination,
//! so that it is offered first next time).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vmux_link::home::{Home, StateFile};

use crate::{Error, Result};

/// `hosts.json`: the saved hosts and [`MAX_REMEMBERED`] identity hints,
/// each name at most [`MAX_NAME_LEN`].
const HOSTS_FILE: StateFile = StateFile::new("hosts.json", 4 << 20);
/// Longest host name (DNS allows 253) and user name we take.
const MAX_NAME_LEN: usize = 255;
/// Remembered identities are a hint, not a record: keep the file small.
const MAX_REMEMBERED: usize = 512;

/// Where to log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Login name; the local user's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses `[user@]host[:port]`; an IPv6 address with a port goes in
    /// brackets (`[::1]:2222`), as in OpenSSH.
    pub fn parse(text: &str) -> Result<Target> {
        let bad =
            |why: &str| Error::Destination(format!("{text:?}: {why}; expected [user@]host[:port]"));
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("junk after ]")),
            }
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').ok_or_else(|| bad("bad port"))?;
            (h, Some(p))
        } else {
            // No colon, or a bare IPv6 address.
            (rest, None)
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            None => 22,
        };
        // Brackets and `@` are syntax here, never part of a host name.
        if !is_name(host) || host.contains(['[', ']', '@']) {
            return Err(bad("bad host name"));
        }
        if user.is_some_and(|u| !is_name(u)) {
            return Err(bad("bad user name"));
        }
        Ok(Target {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        })
    }

    /// The login name: ours, or the local user's.
    pub fn user_or(&self, local: &str) -> String {
        self.user.clone().unwrap_or_else(|| local.to_owned())
    }
}

/// Host and user names: printable, no spaces, not an option.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))
}

impl Target {
    /// `host`, `host:port`, or `[v6]:port` (the port only when not 22): how
    /// the sheet names the destination.
    pub fn address(&self) -> String {
        match (self.host.contains(':'), self.port) {
            (false, 22) => self.host.clone(),
            (true, 22) => format!("[{}]", self.host),
            (false, p) => format!("{}:{p}", self.host),
            (true, p) => format!("[{}]:{p}", self.host),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.address())
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostsFile {
    #[serde(default)]
    hosts: BTreeMap<String, Target>,
    /// `user@host:port` → fingerprint of the identity that last logged in.
    #[serde(default)]
    last_identity: BTreeMap<String, String>,
}

/// `hosts.json` in the vmux home.
pub struct SavedHosts {
    path: PathBuf,
    file: HostsFile,
}

impl fmt::Debug for SavedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedHosts")
            .field("path", &self.path)
            .finish()
    }
}

impl SavedHosts {
    /// Reads the file; none yet is an empty list.
    pub fn load(home: &Home) -> Result<Self> {
        let path = HOSTS_FILE.path(home);
        let file = match HOSTS_FILE.read_at(&path).map_err(vmux_link::Error::from)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::SavedHosts {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            None => HostsFile::default(),
        };
        Ok(Self { path, file })
    }

    fn save(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.file).map_err(|e| Error::SavedHosts {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        HOSTS_FILE
            .write_at(&self.path, &json)
            .map_err(vmux_link::Error::from)?;
        Ok(())
    }

    /// Saved hosts by name.
    pub fn list(&self) -> &BTreeMap<String, Target> {
        &self.file.hosts
    }

    /// The saved host `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Target> {
        self.file.hosts.get(name)
    }

    /// Saves `target` as `name`, replacing an earlier one.
    pub fn add(&mut self, name: &str, target: Target) -> Result<()> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::Destination(format!(
                "{name:?} cannot name a host: use letters, digits, '.', '_' and '-' (at most 64)"
            )));
        }
        self.file.hosts.insert(name.to_owned(), target);
        self.save()
    }

    /// Forgets `name`; false if there was none.
    pub fn remove(&mut self, name: &str) -> Result<bool> {
        let had = self.file.hosts.remove(name).is_some();
        if had {
            self.save()?;
        }
        Ok(had)
    }

    /// The fingerprint of the identity that last logged in to `dest`.
    pub fn last_identity(&self, dest: &str) -> Option<&str> {
        self.file.last_identity.get(dest).map(String::as_str)
    }

    /// Remembers that `fingerprint` logged in to `dest`.
    pub fn remember_identity(&mut self, dest: &str, fingerprint: &str) -> Result<()> {
        if self.last_identity(dest) == Some(fingerprint) {
            return Ok(());
        }
        if self.file.last_identity.len() >= MAX_REMEMBERED {
            self.file.last_identity.pop_first();
        }
        self.file
            .last_identity
            .insert(dest.to_owned(), fingerprint.to_owned());
        self.save()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(user: Option<&str>, host: &str, port: u16) -> Target {
        Target {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn destinations_parse_like_openssh() {
        assert_eq!(
            Target::parse("example.com").unwrap(),
            t(None, "example.com", 22)
        );
        assert_eq!(
            Target::parse("git@example.com:2222").unwrap(),
            t(Some("git"), "example.com", 2222)
        );
        assert_eq!(Target::parse("::1").unwrap(), t(None, "::1", 22));
        assert_eq!(
            Target::parse("me@[::1]:2200").unwrap(),
            t(Some("me"), "::1", 2200)
        );
        assert_eq!(
            Target::parse("a@b@host").unwrap(),
            t(Some("a@b"), "host", 22)
        );
        for bad in [
            "",
            "host:0",
            "host:99999",
            "host:x",
            "[::1",
            "[::1]x",
            "[a]]",
            "a]:b:c",
            "-oProxyCommand=x",
            "a b",
            "me@",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
        for s in ["git@example.com:2222", "example.com", "[::1]:2200"] {
            assert_eq!(Target::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn saved_hosts_persist_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h")).unwrap();
        let mut hosts = SavedHosts::load(&home).unwrap();
        hosts
            .add("box", Target::parse("me@box.lan:2222").unwrap())
            .unwrap();
        assert!(hosts.add("not/ok", t(None, "x", 22)).is_err());
        assert!(hosts.add("-o", t(None, "x", 22)).is_err());
        hosts
            .remember_identity("me@box.lan:2222", "SHA256:abc")
            .unwrap();
        let again = SavedHosts::load(&home).unwrap();
        assert_eq!(again.get("box"), Some(&t(Some("me"), "box.lan", 2222)));
        assert_eq!(again.last_identity("me@box.lan:2222"), Some("SHA256:abc"));
        let mut again = again;
        assert!(again.remove("box").unwrap());
        assert!(!again.remove("box").unwrap());
        assert!(SavedHosts::load(&home).unwrap().list().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        std::fs::write(HOSTS_FILE.path(&home), b"{not json").unwrap();
        let e = SavedHosts::load(&home).unwrap_err().to_string();
        assert!(e.contains("hosts.json"), "{e}");
    }
}
