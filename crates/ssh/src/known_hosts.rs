//! OpenSSH's `known_hosts` files: the same files, the same format (hashed
//! names included), the same verdicts as `ssh` with
//! `StrictHostKeyChecking=ask`. The format itself is parsed by
//! `vmux_hostkey::known_hosts`, which the agent and the signer share.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, PublicKey};
use vmux_hostkey::known_hosts::{self as format, Entry, MAX_FILE_LEN, Marker};

use crate::{Error, Result};

pub use format::{lookup_name, parse};

/// The verdict on a host's key.
#[derive(Debug)]
pub enum Verdict {
    /// A line for this host holds this key.
    Known,
    /// Lines for this host hold a different key of the same type.
    Changed {
        /// Where the first offending line is: file and line number.
        offending: (PathBuf, usize),
    },
    /// No line for this host holds a key of this type.
    Unknown {
        /// Key types that are known for this host.
        other_types: Vec<Algorithm>,
    },
    /// The key is marked `@revoked` for this host.
    Revoked { path: PathBuf, line: usize },
}

/// The known_hosts files in force: the user's (written to), then the
/// system's (read only).
#[derive(Debug)]
pub struct KnownHosts {
    files: Vec<(PathBuf, Vec<Entry>)>,
    write_to: PathBuf,
}

impl KnownHosts {
    /// OpenSSH's defaults: `~/.ssh/known_hosts{,2}` then
    /// `/etc/ssh/ssh_known_hosts{,2}`.
    pub fn load_default() -> Result<Self> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(Error::NoHome)?;
        Self::load(format::default_files(Some(&home)))
    }

    /// Reads `paths` in order; the first is the user's, where new hosts
    /// are recorded. Missing files are empty.
    pub fn load(paths: Vec<PathBuf>) -> Result<Self> {
        let write_to = paths.first().cloned().ok_or(Error::NoHome)?;
        let mut files = Vec::new();
        for path in paths {
            let entries = read(&path)?.map(|t| parse(&t)).unwrap_or_default();
            files.push((path, entries));
        }
        Ok(Self { files, write_to })
    }

    /// The file new hosts are recorded in.
    pub fn user_file(&self) -> &Path {
        &self.write_to
    }

    fn for_host<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a Path, &'a Entry)> {
        self.files.iter().flat_map(move |(path, entries)| {
            entries
                .iter()
                .filter(move |e| format::matches(&e.hosts, name))
                .map(move |e| (path.as_path(), e))
        })
    }

    /// Key types known for `name`, in file order, so that key exchange can
    /// ask the server for one of them first (as OpenSSH does).
    pub fn algorithms_for(&self, name: &str) -> Vec<Algorithm> {
        let mut out: Vec<Algorithm> = Vec::new();
        for (_, e) in self.for_host(name) {
            let alg = e.key.algorithm();
            if e.marker == Marker::None && !out.contains(&alg) {
                out.push(alg);
            }
        }
        out
    }

    /// What the files say of `key` presented by `name` (a lookup name).
    pub fn check(&self, name: &str, key: &PublicKey) -> Verdict {
        let same = |e: &Entry| e.key.key_data() == key.key_data();
        if let Some((path, e)) = self
            .for_host(name)
            .find(|(_, e)| e.marker == Marker::Revoked && same(e))
        {
            return Verdict::Revoked {
                path: path.to_owned(),
                line: e.line,
            };
        }
        let plain: Vec<(&Path, &Entry)> = self
            .for_host(name)
            .filter(|(_, e)| e.marker == Marker::None)
            .collect();
        if plain.iter().any(|(_, e)| same(e)) {
            return Verdict::Known;
        }
        if let Some((path, e)) = plain
            .iter()
            .find(|(_, e)| e.key.algorithm() == key.algorithm())
        {
            return Verdict::Changed {
                offending: (path.to_path_buf(), e.line),
            };
        }
        let mut other_types: Vec<Algorithm> = Vec::new();
        for (_, e) in plain {
            if !other_types.contains(&e.key.algorithm()) {
                other_types.push(e.key.algorithm());
            }
        }
        Verdict::Unknown { other_types }
    }

    /// Appends `name`'s key to the user file, the name hashed (a stolen
    /// known_hosts should not list where its owner logs in).
    pub fn add(&mut self, name: &str, key: &PublicKey) -> Result<()> {
        let path = self.write_to.clone();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            vmux_link::home::create_private_dir(dir)?;
        }
        let hosts = format::hashed(name).map_err(|_| Error::Random)?;
        let bare = PublicKey::new(key.key_data().clone(), "");
        let text = bare
            .to_openssh()
            .map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = open_append(&path).map_err(io)?;
        let needs_newline = file.metadata().map_err(io)?.len() > 0 && !ends_with_newline(&path);
        let line = format!("{}{hosts} {text}\n", if needs_newline { "\n" } else { "" });
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        let entry = format::parse_line(&format!("{hosts} {text}"), usize::MAX);
        if let (Some(entry), Some((_, entries))) =
            (entry, self.files.iter_mut().find(|(p, _)| *p == path))
        {
            entries.push(entry);
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn ends_with_newline(path: &Path) -> bool {
    read(path).ok().flatten().is_some_and(|t| t.ends_with('\n'))
}

fn read(path: &Path) -> Result<Option<String>> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = match vmux_state::read_prefix(path, MAX_FILE_LEN) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(vmux_state::Error::Io { source, .. }) => return Err(io(source)),
        Err(e) => return Err(io(std::io::Error::other(e.reason()))),
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(Some(text))
}

/// OpenSSH's name for a key type in its messages: `ED25519`, `ECDSA`, `RSA`.
pub fn type_name(alg: &Algorithm) -> &'static str {
    match alg {
        Algorithm::Ed25519 => "ED25519",
        Algorithm::Ecdsa { .. } => "ECDSA",
        Algorithm::Rsa { .. } => "RSA",
        Algorithm::Dsa => "DSA",
        Algorithm::SkEd25519 => "ED25519-SK",
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    // Host keys made with `ssh-keygen -t ed25519` / `-t ecdsa` (OpenSSH 9.2p1);
    // ED_A is the key behind the hashed fixture in `pattern.rs`.
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";
    const EC_A: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOGLEnBnIf+7pGbsSn6NT1+fr6JdY21/HBe8jbVlhz1R63JHpxDfBoy89xDf7DLMx//ObcHWkj4XPvDlACoH4kI=";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn hosts(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        let kh = KnownHosts::load(vec![path, dir.path().join("absent")]).unwrap();
        (dir, kh)
    }

    #[test]
    fn known_changed_unknown_revoked() {
        let text = format!(
            "# comment\n\nexample.com {ED_A} laptop\n[other]:2222,!bad {EC_A}\n@revoked * {ED_B}\nnot a line\n@cert-authority *.corp {EC_A}\n"
        );
        let (_d, kh) = hosts(&text);
        assert!(matches!(
            kh.check("example.com", &key(ED_A)),
            Verdict::Known
        ));
        match kh.check("example.com", &key(EC_A)) {
            Verdict::Unknown { other_types } => assert_eq!(other_types, vec![Algorithm::Ed25519]),
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            kh.check("[other]:2222", &key(EC_A)),
            Verdict::Known
        ));
        match kh.check("example.com", &key(ED_B)) {
            Verdict::Revoked { line, .. } => assert_eq!(line, 5),
            v => panic!("{v:?}"),
        }
        // A cert-authority line is not a host key.
        assert!(matches!(
            kh.check("www.corp", &key(EC_A)),
            Verdict::Unknown { .. }
        ));
        assert_eq!(kh.algorithms_for("example.com"), vec![Algorithm::Ed25519]);
    }

    #[test]
    fn a_different_key_of_the_same_type_is_a_change() {
        let (_d, kh) = hosts(&format!("a {EC_A}\nexample.com {ED_A}\n"));
        match kh.check("example.com", &key(ED_B)) {
            Verdict::Changed { offending } => assert_eq!(offending.1, 2),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn added_hosts_are_hashed_found_again_and_read_by_ssh_keygen() {
        let (dir, mut kh) = hosts(&format!("example.com {ED_A}")); // no final newline
        kh.add("[127.0.0.1]:2222", &key(EC_A)).unwrap();
        assert!(matches!(
            kh.check("[127.0.0.1]:2222", &key(EC_A)),
            Verdict::Known
        ));
        let path = dir.path().join("known_hosts");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
        let reread = KnownHosts::load(vec![path.clone()]).unwrap();
        assert!(matches!(
            reread.check("[127.0.0.1]:2222", &key(EC_A)),
            Verdict::Known
        ));
        assert!(matches!(
            reread.check("example.com", &key(ED_A)),
            Verdict::Known
        ));
        // OpenSSH finds the hashed entry too.
        let out = std::process::Command::new("ssh-keygen")
            .args(["-F", "[127.0.0.1]:2222", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
