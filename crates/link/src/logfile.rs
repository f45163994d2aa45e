//! An append-only log of lines in the state directory (`agent-log.jsonl`,
//! `signer-log.jsonl`), rotated at a size so it never fills the disk:
//! `NAME` is written to; when the next lines would take it past
//! [`Rotation::at`], it becomes `NAME.1`, `NAME.1` becomes `NAME.2`, and so
//! on, and the oldest past [`Rotation::keep`] is deleted. Readers take the
//! files oldest first, so they see one log in order.
//!
//! One process writes a log; a second one (two agents on the same home)
//! may see a rotation half done and write a few lines into the file that
//! is about to be renamed: they are kept, at worst out of order.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// When to rotate and how much to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a write would take the file past this many bytes.
    pub at: u64,
    /// Older files kept (`NAME.1` … `NAME.keep`).
    pub keep: usize,
}

impl Rotation {
    /// 1 MiB a file (a few thousand requests), four older ones kept: at
    /// most 5 MiB of log.
    pub const DEFAULT: Self = Self {
        at: 1 << 20,
        keep: 4,
    };
}

impl Default for Rotation {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Appends `lines` (whole lines, newline-terminated) to the log at `path`
/// (created 0600), rotating first if they would take it past the size.
/// A write cut short (a full disk) is cut back to where it began, so the
/// next write starts a line of its own.
pub fn append(path: &Path, lines: &[u8], rotation: Rotation) -> io::Result<()> {
    let mut file = open(path)?;
    let mut before = file.metadata()?.len();
    let after = before.saturating_add(u64::try_from(lines.len()).unwrap_or(u64::MAX));
    if before > 0 && after > rotation.at {
        drop(file);
        rotate(path, rotation.keep)?;
        file = open(path)?;
        before = file.metadata()?.len();
    }
    file.write_all(lines).inspect_err(|_| {
        // Best effort.
        let _ = file.set_len(before);
    })
}

/// The log's files that exist, oldest first.
pub fn files(path: &Path, rotation: Rotation) -> Vec<PathBuf> {
    (1..=rotation.keep)
        .rev()
        .map(|n| numbered(path, n))
        .chain([path.to_owned()])
        .filter(|p| p.exists())
        .collect()
}

/// The whole log as text, oldest file first; empty when there is none.
pub fn read_to_string(path: &Path, rotation: Rotation) -> io::Result<String> {
    let mut text = String::new();
    for file in files(path, rotation) {
        match std::fs::read_to_string(&file) {
            Ok(t) => text.push_str(&t),
            // Rotated away between listing and reading.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
        }
        // A last line cut short must not run into the next file's first.
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(text)
}

fn open(path: &Path) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// `NAME` → `NAME.1` → … → `NAME.keep`, the oldest deleted: the next
/// [`append`] starts a new file.
pub fn rotate(path: &Path, keep: usize) -> io::Result<()> {
    if keep == 0 {
        return remove(path);
    }
    remove(&numbered(path, keep))?;
    for n in (1..keep).rev() {
        rename(&numbered(path, n), &numbered(path, n + 1))?;
    }
    rename(path, &numbered(path, 1))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Missing files are no error: not every number exists yet.
fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rotates_at_the_size_keeps_the_last_files_and_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-log.jsonl");
        let rotation = Rotation { at: 40, keep: 2 };
        // 10-byte lines: four to a file.
        for n in 0..30 {
            append(&path, format!("line {n:04}\n").as_bytes(), rotation).unwrap();
        }
        let names: Vec<String> = files(&path, rotation)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x-log.jsonl.2", "x-log.jsonl.1", "x-log.jsonl"]);
        assert!(!dir.path().join("x-log.jsonl.3").exists());
        for file in files(&path, rotation) {
            assert!(std::fs::metadata(&file).unwrap().len() <= 40);
        }
        // The last ten lines, in order: 28..30 in the current file, four
        // in each older one.
        let text = read_to_string(&path, rotation).unwrap();
        let expected: String = (20..30).map(|n| format!("line {n:04}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_line_larger_than_the_size_still_goes_in_and_a_cut_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rotation = Rotation { at: 4, keep: 1 };
        append(&path, b"a long line\n", rotation).unwrap();
        append(&path, b"another\n", rotation).unwrap();
        assert_eq!(
            read_to_string(&path, rotation).unwrap(),
            "a long line\nanother\n"
        );
        std::fs::write(numbered(&path, 1), "cut sho").unwrap();
        assert_eq!(
            read_to_string(&path, rotation).unwrap(),
            "cut sho\nanother\n"
        );
        assert_eq!(
            read_to_string(&dir.path().join("none"), rotation).unwrap(),
            ""
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        append(&path, b"x\n", Rotation::DEFAULT).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
