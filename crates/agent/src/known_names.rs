//! What this user's OpenSSH calls a host key: the first plain name a line
//! of `~/.ssh/known_hosts{,2}` or `/etc/ssh/ssh_known_hosts{,2}` gives it.
//! It travels to the signer with the binding, as a claim (a hashed line
//! cannot be read back, so such hosts go unnamed).
//!
//! Read at each request rather than once: ssh writes a new host's line
//! just before it asks us to sign its first login.

use std::io::Read;
use std::path::PathBuf;

use vmux_hostkey::known_hosts::{self, MAX_FILE_LEN};

/// The name for the host key `blob`, if a known_hosts file has one that
/// may travel (a text a person can read).
pub fn name_of(blob: &[u8]) -> Option<String> {
    files().into_iter().find_map(|path| {
        let text = read(&path)?;
        let entries = known_hosts::parse(&text);
        known_hosts::name_of(&entries, blob)
            .filter(|n| n.len() <= 255 && vmux_proto::text::check(n).is_ok())
            .map(str::to_owned)
    })
}

/// OpenSSH's default files, the user's first.
fn files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let ssh = PathBuf::from(home).join(".ssh");
        files.extend([ssh.join("known_hosts"), ssh.join("known_hosts2")]);
    }
    files.extend([
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts2"),
    ]);
    files
}

/// The file's text, at most [`MAX_FILE_LEN`] of it; `None` when it cannot
/// be read (a missing file is normal).
fn read(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
