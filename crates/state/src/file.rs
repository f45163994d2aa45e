//! One kind of state file: its name in the state directory and the most it
//! may hold, and the only ways vmux reads and writes it: read whole but
//! never past the cap, replaced atomically (0600), changed under its lock.
//!
//! Each crate names its files next to the types they hold, as
//! `vmux_proto::envelope::limits` does for the wire, so a hostile or broken
//! file costs at most its cap to refuse.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::home::{self, Home};
use crate::{Error, Result};

/// A state file's name and size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFile {
    name: &'static str,
    max_len: u64,
}

impl StateFile {
    /// The file `name` in the state directory, never over `max_len` bytes.
    pub const fn new(name: &'static str, max_len: u64) -> Self {
        Self { name, max_len }
    }

    /// Its name in the state directory.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The most it may hold, in bytes.
    pub const fn max_len(&self) -> u64 {
        self.max_len
    }

    /// Where it is in `home`.
    pub fn path(&self, home: &Home) -> PathBuf {
        home.file(self.name)
    }

    /// Reads it from `home`: `None` when it does not exist, refused
    /// ([`Error::TooLarge`]) unread when over the cap.
    pub fn read(&self, home: &Home) -> Result<Option<Vec<u8>>> {
        self.read_at(&self.path(home))
    }

    /// [`StateFile::read`] of a file of this kind at `path` (one kept in a
    /// folder of the state directory, or a store opened by its path).
    pub fn read_at(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        read_capped(path, self.max_len)
    }

    /// Replaces it in `home` with `bytes`, atomically and owner-only;
    /// refuses to write what it would refuse to read back.
    pub fn write(&self, home: &Home, bytes: &[u8]) -> Result<()> {
        self.write_at(&self.path(home), bytes)
    }

    /// [`StateFile::write`] of a file of this kind at `path`.
    pub fn write_at(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.check_len(path, bytes)?;
        home::write_private(path, bytes)
    }

    /// Writes it in `home` unless it exists: `Ok(false)` then, and nothing
    /// is written (see [`home::create_private`]).
    pub fn create(&self, home: &Home, bytes: &[u8]) -> Result<bool> {
        self.create_at(&self.path(home), bytes)
    }

    /// [`StateFile::create`] of a file of this kind at `path`.
    pub fn create_at(&self, path: &Path, bytes: &[u8]) -> Result<bool> {
        self.check_len(path, bytes)?;
        home::create_private(path, bytes)
    }

    /// Runs `change` (a read, a change, a write) with the exclusive lock
    /// of the file at `path` held, so that two processes changing it never
    /// lose each other's change.
    pub fn locked<R, E: From<Error>>(
        &self,
        path: &Path,
        change: impl FnOnce() -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        // Released when dropped, after the change is written.
        let _lock = home::lock(path)?;
        change()
    }

    fn check_len(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > self.max_len {
            return Err(Error::TooLarge {
                path: path.to_owned(),
                max: self.max_len,
            });
        }
        Ok(())
    }
}

/// Reads `path` whole, refusing one over `max` bytes before reading it
/// (and reading no more than one byte past `max` of one that grows or
/// claims no size); `None` when it does not exist.
pub fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        max,
    };
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    if file.metadata().map_err(|e| io(path, e))?.len() > max {
        return Err(too_large());
    }
    let bytes = read_up_to(file, path, max.saturating_add(1))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

/// The first `max` bytes of `path` (all of a shorter file); `None` when it
/// does not exist. For files vmux reads but does not own (a known_hosts
/// file), where a longer one is cut rather than refused.
pub fn read_prefix(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(file) = open(path)? else {
        return Ok(None);
    };
    read_up_to(file, path, max).map(Some)
}

fn open(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

fn read_up_to(file: File, path: &Path, n: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(n)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    Ok(bytes)
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SMALL: StateFile = StateFile::new("small.json", 10);

    #[test]
    fn a_missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        assert!(SMALL.read(&home).unwrap().is_none());
    }

    #[test]
    fn a_file_at_the_cap_is_read_and_one_past_it_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        std::fs::write(SMALL.path(&home), [b'x'; 10]).unwrap();
        assert_eq!(SMALL.read(&home).unwrap().unwrap().len(), 10);
        std::fs::write(SMALL.path(&home), [b'x'; 11]).unwrap();
        let err = SMALL.read(&home).unwrap_err();
        assert!(matches!(err, Error::TooLarge { max: 10, .. }), "{err}");
        assert!(err.to_string().contains("small.json"), "{err}");
    }

    #[test]
    fn a_huge_sparse_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let file = File::create(SMALL.path(&home)).unwrap();
        file.set_len(1 << 30).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            SMALL.read(&home),
            Err(Error::TooLarge { max: 10, .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_device_that_claims_no_size_is_read_only_one_past_the_cap() {
        // /dev/zero says it is empty and never ends.
        assert!(matches!(
            read_capped(Path::new("/dev/zero"), 10),
            Err(Error::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn a_prefix_read_cuts_a_longer_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        assert!(read_prefix(&path, 4).unwrap().is_none());
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_prefix(&path, 4).unwrap().unwrap(), b"0123");
    }

    #[test]
    fn writes_are_private_and_never_over_the_cap() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        SMALL.write(&home, b"0123456789").unwrap();
        let mode = std::fs::metadata(SMALL.path(&home))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            SMALL.write(&home, b"0123456789a"),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(std::fs::read(SMALL.path(&home)).unwrap(), b"0123456789");
        assert!(!SMALL.create(&home, b"new").unwrap());
    }

    #[test]
    fn changes_under_the_lock_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let counter = StateFile::new("counter", 16);
        let path = counter.path(&home);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        counter
                            .locked(&path, || {
                                let n: u32 = counter
                                    .read_at(&path)?
                                    .map_or(0, |b| String::from_utf8(b).unwrap().parse().unwrap());
                                counter.write_at(&path, (n + 1).to_string().as_bytes())
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "160");
    }
}
