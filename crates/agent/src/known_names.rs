//! What this user's OpenSSH calls a host key: the first plain name a line
//! of `~/.ssh/known_hosts{,2}` or `/etc/ssh/ssh_known_hosts{,2}` gives it;
//! else the name the client connected to ([`crate::client_host`]): a
//! hashed line cannot be read back, and a new host's line may not be
//! written yet. It travels to the signer with the binding, as a
//! claim.
//!
//! Read at each forwarded request rather than once: ssh writes a new
//! host's line just before it asks us to sign its first login.

use std::path::PathBuf;

use vmux_hostkey::known_hosts::{self, Entry, MAX_FILE_LEN};

/// The known_hosts files as read for one request: each readable file's
/// entries, the user's first.
#[derive(Debug, Default)]
pub struct KnownNames {
    files: Vec<Vec<Entry>>,
}

impl KnownNames {
    /// Reads and parses the files once, on a blocking thread: they may be
    /// large, and the runtime serves other connections meanwhile. Nothing
    /// readable names nothing.
    pub async fn read() -> Self {
        tokio::task::spawn_blocking(Self::read_now)
            .await
            .unwrap_or_default()
    }

    fn read_now() -> Self {
        Self {
            files: files()
                .iter()
                .filter_map(|path| read(path))
                .map(|text| known_hosts::parse(&text))
                .collect(),
        }
    }

    /// The name for the host key `blob`: a plain name a file gives it
    /// that may travel (a text a person can read), else `typed`, the
    /// lookup name the client connected to, if any.
    pub fn name_of(&self, blob: &[u8], typed: Option<&str>) -> Option<String> {
        let plain = self.files.iter().find_map(|entries| {
            known_hosts::name_of(entries, blob)
                .filter(|n| n.len() <= 255 && vmux_proto::text::check(n).is_ok())
                .map(str::to_owned)
        });
        plain.or_else(|| typed.map(str::to_owned))
    }
}

/// OpenSSH's default files, the user's first.
fn files() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    known_hosts::default_files(home.as_deref().map(std::path::Path::new))
}

/// The file's text, at most [`MAX_FILE_LEN`] of it; `None` when it cannot
/// be read (a missing file is normal).
fn read(path: &std::path::Path) -> Option<String> {
    let bytes = vmux_state::read_prefix(path, MAX_FILE_LEN).ok()??;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Made with `ssh-keygen -t ed25519`.
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";

    fn blob(line: &str) -> Vec<u8> {
        ssh_key::PublicKey::from_openssh(line)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn the_first_file_with_a_readable_name_names_the_host() {
        let names = KnownNames {
            files: vec![
                known_hosts::parse(&format!("db\u{1b}[2J {ED_A}\nprod {ED_B}\n")),
                known_hosts::parse(&format!("db.corp {ED_A}\nother {ED_B}\n")),
            ],
        };
        // A name that may not travel is passed over for the next file's.
        assert_eq!(names.name_of(&blob(ED_A), None).as_deref(), Some("db.corp"));
        assert_eq!(
            names.name_of(&blob(ED_B), Some("typed")).as_deref(),
            Some("prod")
        );
        assert_eq!(names.name_of(b"not a key", None), None);
        assert_eq!(KnownNames::default().name_of(&blob(ED_A), None), None);
    }

    #[test]
    fn a_hashed_line_leaves_the_name_the_client_typed() {
        let hashed = known_hosts::hashed("[db]:2222").unwrap();
        let names = KnownNames {
            files: vec![known_hosts::parse(&format!("{hashed} {ED_A}\n"))],
        };
        // Hashed: no plain name, so the typed one is the claim.
        assert_eq!(
            names.name_of(&blob(ED_A), Some("[db]:2222")).as_deref(),
            Some("[db]:2222")
        );
    }
}
