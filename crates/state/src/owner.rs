//! The one process that owns a state directory in a role: it holds an
//! exclusive lock on a file there and writes its pid and address into it,
//! so a second one is refused at once and told who is running.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::home::Home;
use crate::{Error, Result, read_capped};

/// Most an owner file holds: a pid and an address.
const MAX_LEN: u64 = 4 << 10;

/// The lock held while this process owns the directory; released (by the
/// kernel, even on a crash) when dropped or when the process ends.
#[derive(Debug)]
pub struct Owner {
    file: File,
    path: PathBuf,
}

/// Who owns the directory already, as it wrote itself down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owner file.
    pub path: PathBuf,
    /// Its pid, unless it has not written it yet.
    pub pid: Option<u32>,
    /// Where it listens, unless it has not written it yet.
    pub address: Option<String>,
}

impl Owner {
    /// Takes the lock on `name` in `home`, without waiting: `Ok(Err(holder))`
    /// when another process has it.
    pub fn claim(home: &Home, name: &str) -> Result<std::result::Result<Owner, Holder>> {
        let path = home.file(name);
        let err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        // Not truncated before the lock is ours: it holds the owner's pid.
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(Err(Holder::read(&path))),
            Err(TryLockError::Error(e)) => return Err(err(e)),
        }
        let mut owner = Owner { file, path };
        owner.record(None)?;
        Ok(Ok(owner))
    }

    /// Writes this process's pid and, once known, the address it listens on.
    pub fn record(&mut self, address: Option<&str>) -> Result<()> {
        let text = format!("{}\n{}\n", std::process::id(), address.unwrap_or(""));
        let path = &self.path;
        let err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        self.file.set_len(0).map_err(err)?;
        self.file.rewind().map_err(err)?;
        self.file.write_all(text.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}

impl Holder {
    /// What the owner file at `path` says; unreadable parts are unknown.
    fn read(path: &Path) -> Holder {
        let text = read_capped(path, MAX_LEN)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut lines = text.lines().map(str::trim);
        let pid = lines.next().and_then(|l| l.parse().ok());
        // Shown on a terminal: only what an address is made of.
        let address = lines.next().filter(|a| {
            !a.is_empty()
                && a.len() <= 64
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "[]:.%-_".contains(c))
        });
        Holder {
            path: path.to_owned(),
            pid,
            address: address.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_claim_is_refused_with_the_first_ones_pid_and_address() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let mut first = Owner::claim(&home, "signer.pid").unwrap().unwrap();
        first.record(Some("127.0.0.1:7000")).unwrap();
        let holder = Owner::claim(&home, "signer.pid").unwrap().unwrap_err();
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.address.as_deref(), Some("127.0.0.1:7000"));
        drop(first);
        assert!(Owner::claim(&home, "signer.pid").unwrap().is_ok());
    }
}
