//! OpenSSH's `known_hosts` format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
//! `[marker] hosts keytype base64 [comment]`, hashed names included.
//!
//! Only parsing and matching live here; reading files, and what a match
//! means, is each caller's business (`vmux ssh` checks a server, the agent
//! names a host key, `vmux hostkeys import` copies names).

mod pattern;

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

pub use pattern::{glob, hashed, lookup_name, matches};

/// A known_hosts file larger than this is refused rather than read whole.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// OpenSSH's default known_hosts files, in the order it reads them: with
/// a home directory, the user's `~/.ssh/known_hosts` (where new hosts are
/// recorded) and `known_hosts2`; then the system's. Paths only: a missing
/// file is the caller's business.
pub fn default_files(home: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = home {
        let ssh = home.join(".ssh");
        files.extend([ssh.join("known_hosts"), ssh.join("known_hosts2")]);
    }
    files.extend([
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts2"),
    ]);
    files
}

/// What a line says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A plain line: these hosts have this key.
    None,
    /// `@revoked`: never accept this key for these hosts.
    Revoked,
    /// `@cert-authority`: signs host certificates, which we do not ask for.
    CertAuthority,
}

/// One usable line.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The line's marker.
    pub marker: Marker,
    /// The host field: patterns separated by commas, or one hashed name.
    pub hosts: String,
    /// The key.
    pub key: PublicKey,
    /// 1-based, as OpenSSH reports it.
    pub line: usize,
}

impl Entry {
    /// The names a plain line gives its key, as written: hashed fields,
    /// wildcard and negated patterns name no host and are left out, and so
    /// are `@revoked` and `@cert-authority` lines.
    pub fn plain_names(&self) -> Vec<&str> {
        if self.marker != Marker::None || self.hosts.starts_with('|') {
            return Vec::new();
        }
        self.hosts
            .split(',')
            .filter(|p| !p.is_empty() && !p.starts_with('!') && !p.contains(['*', '?']))
            .collect()
    }
}

/// Parses a known_hosts file's text. Lines that are not entries (comments,
/// blanks, unknown key types, garbage) are skipped, as OpenSSH does.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| parse_line(line, i.saturating_add(1)))
        .collect()
}

/// Parses one line; `number` is what [`Entry::line`] will say.
pub fn parse_line(line: &str, number: usize) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let (kind, blob) = (fields.next()?, fields.next()?);
    let key = PublicKey::from_openssh(&format!("{kind} {blob}")).ok()?;
    Some(Entry {
        marker,
        hosts: first.to_owned(),
        key,
        line: number,
    })
}

/// The first name a plain line of `entries` gives the host key `blob`, in
/// file order: what its user calls that host.
pub fn name_of<'a>(entries: &'a [Entry], blob: &[u8]) -> Option<&'a str> {
    let key = PublicKey::from_bytes(blob).ok()?;
    entries
        .iter()
        .filter(|e| e.key.key_data() == key.key_data())
        .find_map(|e| e.plain_names().into_iter().next())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Host keys made with `ssh-keygen -t ed25519` (OpenSSH 9.2p1).
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";

    fn blob(s: &str) -> Vec<u8> {
        PublicKey::from_openssh(s).unwrap().to_bytes().unwrap()
    }

    #[test]
    fn plain_names_leave_out_what_names_no_host() {
        let text = format!(
            "|1|Vx3/K7+mitYG8qjnX1CHJKvEqiA=|KRG82dB/Mj54OV2BXheqEWFiu2A= {ED_A}\n\
             *.corp,!bad.corp,db.corp,[10.0.0.5]:2222 {ED_A} comment\n\
             @revoked prod {ED_B}\n@cert-authority prod {ED_B}\nprod,,x {ED_B}\n"
        );
        let entries = parse(&text);
        assert_eq!(entries.len(), 5);
        assert!(entries[0].plain_names().is_empty(), "hashed");
        assert_eq!(entries[1].plain_names(), ["db.corp", "[10.0.0.5]:2222"]);
        assert!(entries[2].plain_names().is_empty(), "revoked");
        assert!(entries[3].plain_names().is_empty(), "cert-authority");
        assert_eq!(entries[4].plain_names(), ["prod", "x"]);
        assert_eq!(name_of(&entries, &blob(ED_A)), Some("db.corp"));
        assert_eq!(name_of(&entries, &blob(ED_B)), Some("prod"));
        assert_eq!(name_of(&entries, b"not a key"), None);
    }

    #[test]
    fn default_files_are_the_users_first_then_the_systems() {
        let files = default_files(Some(Path::new("/home/a")));
        assert_eq!(
            files,
            [
                "/home/a/.ssh/known_hosts",
                "/home/a/.ssh/known_hosts2",
                "/etc/ssh/ssh_known_hosts",
                "/etc/ssh/ssh_known_hosts2",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(default_files(None), files[2..]);
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        let entries = parse("@revoked\n@x a b c\nhost ssh-ed25519 !!!\nhost\n\u{0}\u{ff}\n");
        assert!(entries.is_empty());
    }
}
