//! Noticing that state files changed, in this process or another: their
//! identity (inode, size, modification time) is polled, never their
//! contents, so a watch costs one `stat` per file per interval.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a watch looks.
pub const INTERVAL: Duration = Duration::from_millis(400);

/// What changes whenever a file is replaced or rewritten; `None`: absent.
pub type Stamp = Option<(u64, u64, SystemTime)>;

/// The stamp of `path` now.
pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((inode, meta.len(), meta.modified().ok()?))
}

/// A set of files, and their stamps when last looked at.
#[derive(Debug)]
pub struct Watch {
    files: Vec<(PathBuf, Stamp)>,
}

impl Watch {
    /// Watches `paths`, as they are now.
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            files: paths
                .into_iter()
                .map(|p| {
                    let s = stamp(&p);
                    (p, s)
                })
                .collect(),
        }
    }

    /// Which files changed since the last look, as indexes into the paths
    /// given to [`Watch::new`]; records them as seen.
    pub fn poll(&mut self) -> Vec<usize> {
        let mut changed = Vec::new();
        for (i, (path, seen)) in self.files.iter_mut().enumerate() {
            let now = stamp(path);
            if now != *seen {
                *seen = now;
                changed.push(i);
            }
        }
        changed
    }

    /// Waits until at least one file changed; returns which, as [`Watch::poll`].
    pub async fn changed(&mut self) -> Vec<usize> {
        loop {
            let changed = self.poll();
            if !changed.is_empty() {
                return changed;
            }
            tokio::time::sleep(INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_rewrite_creation_or_removal_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "1").unwrap();
        let mut watch = Watch::new([a.clone(), b.clone()]);
        assert!(watch.poll().is_empty());
        std::fs::write(&b, "new").unwrap();
        assert_eq!(watch.poll(), [1]);
        assert!(watch.poll().is_empty());
        // Replaced by a rename, as atomic writes do: a new inode.
        std::fs::write(dir.path().join("a.tmp"), "2").unwrap();
        std::fs::rename(dir.path().join("a.tmp"), &a).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert_eq!(watch.poll(), [0, 1]);
    }
}
