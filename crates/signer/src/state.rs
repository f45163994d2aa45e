//! The signer's small JSON state files (`hostkeys.json`,
//! `key-policies.json`): read with a size cap, replaced atomically (0600),
//! and changed under a lock, so that the running signer learning a host and
//! `vmux hostkeys add` in another terminal never lose each other's change.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads `path` whole, refusing one over `max` bytes; `None` when it does
/// not exist.
pub fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(Some(bytes))
}

/// Runs `change` with `path`'s exclusive lock held (a `.lock` file beside
/// it: the data file itself is replaced by rename, so it cannot carry the
/// lock).
pub fn locked<R>(path: &Path, change: impl FnOnce() -> Result<R>) -> Result<R> {
    // Released when dropped, after the change is written.
    let _lock = vmux_link::home::lock(path)?;
    change()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_over_the_cap_is_refused_before_it_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        assert!(read_capped(&path, 10).unwrap().is_none());
        std::fs::write(&path, [b'x'; 11]).unwrap();
        assert!(matches!(
            read_capped(&path, 10),
            Err(Error::TooLarge { max: 10, .. })
        ));
        std::fs::write(&path, [b'x'; 10]).unwrap();
        assert_eq!(read_capped(&path, 10).unwrap().unwrap().len(), 10);
    }

    #[test]
    fn changes_under_the_lock_do_not_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counter");
        std::fs::write(&path, "0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        locked(&path, || {
                            let n: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
                            vmux_link::home::write_private(&path, (n + 1).to_string().as_bytes())?;
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "160");
    }
}
