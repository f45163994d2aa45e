//! Where vmux keeps its state, and how files in it are written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// The state directory of every vmux role on this machine.
///
/// `VMUX_HOME` when set (tests and demos isolate themselves with it);
/// otherwise the platform's per-user state directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the directory from the environment and creates it (0700).
    pub fn from_env() -> Result<Self> {
        let root = match std::env::var_os("VMUX_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => default_root()?,
        };
        Self::at(root)
    }

    /// Uses `root`, creating it (0700) if needed.
    pub fn at(root: PathBuf) -> Result<Self> {
        create_private_dir(&root)?;
        Ok(Self { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn default_root() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::Io {
            path: PathBuf::from("$HOME"),
            source: std::io::Error::other(
                "HOME is not set; set VMUX_HOME to choose a state directory",
            ),
        })?;
    Ok(platform_root(
        cfg!(target_os = "macos"),
        Path::new(&home),
        std::env::var_os("XDG_STATE_HOME").as_deref().map(Path::new),
    ))
}

/// The per-user state directory under `home`: macOS keeps an app's state in
/// Application Support; elsewhere it is the XDG state directory (which is
/// also where XDG puts logs, so the log files live beside the state).
fn platform_root(macos: bool, home: &Path, xdg_state: Option<&Path>) -> PathBuf {
    if macos {
        return home.join("Library/Application Support/vmux");
    }
    match xdg_state {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("vmux"),
        _ => home.join(".local/state/vmux"),
    }
}

/// Creates `dir` and its parents; the leaf is made 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let err = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Only when needed: chmod fails on a read-only filesystem even as a
        // no-op, and an agent should still start there and serve from memory.
        let mode = fs::metadata(dir).map_err(err)?.permissions().mode();
        if mode & 0o777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically, readable by the owner only.
///
/// Written to a temporary file in the same directory, synced, then renamed,
/// so a crash leaves either the old file or the new one, never half of one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_through_temp(path, bytes, |tmp| fs::rename(tmp, path)).map(|_| ())
}

/// Writes `bytes` to `path`, readable by the owner only, unless something is
/// already there: `Ok(false)` then, and nothing is written.
///
/// For files that must never be replaced (the CA key): two writers racing
/// to make one see one winner, and the loser learns it, because the link
/// into place fails rather than overwrites.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<bool> {
    write_through_temp(path, bytes, |tmp| match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    })
}

/// Writes and syncs a temporary file beside `path`, then `place`s it; the
/// temporary file never outlives the call.
fn write_through_temp<T>(
    path: &Path,
    bytes: &[u8],
    place: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<T> {
    // Unique per call, not only per process: two threads writing the same
    // file must not share (and truncate) one temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(
        ".{file_name}.tmp{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = fs::OpenOptions::new();
    // Not create_new: a crashed process may have left this very name.
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let placed = place(&tmp)?;
        if let Ok(d) = fs::File::open(dir) {
            // Makes the rename or link itself durable; best effort on
            // filesystems that refuse to sync a directory.
            let _ = d.sync_all();
        }
        Ok(placed)
    })();
    // After a rename this finds nothing; after a link or a failure it
    // removes the temporary name.
    let _ = fs::remove_file(&tmp);
    result.map_err(err)
}

/// Takes the exclusive lock of the state file `path`: a `<path>.lock` file
/// beside it (0600), since `path` itself is replaced by rename and cannot
/// carry a lock. Released when the returned file is dropped. `flock` locks
/// belong to the open file, so this serialises threads as well as
/// processes.
pub fn lock(path: &Path) -> Result<fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let err = |source| Error::Io {
        path: lock_path.clone(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&lock_path).map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lives_where_each_platform_keeps_it() {
        let home = Path::new("/home/me");
        assert_eq!(
            platform_root(true, home, Some(Path::new("/x"))),
            Path::new("/home/me/Library/Application Support/vmux")
        );
        assert_eq!(
            platform_root(false, home, None),
            Path::new("/home/me/.local/state/vmux")
        );
        assert_eq!(
            platform_root(false, home, Some(Path::new(""))),
            Path::new("/home/me/.local/state/vmux")
        );
        assert_eq!(
            platform_root(false, home, Some(Path::new("/st"))),
            Path::new("/st/vmux")
        );
    }
}
