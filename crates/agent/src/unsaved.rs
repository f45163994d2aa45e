//! State the agent could not write to its directory (read-only, full,
//! permissions). The agent goes on serving from memory; a person is told
//! once per kind of state and cause, not on every request, and once more
//! when saving works again.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One kind of state the agent saves, and whether saving it is failing.
#[derive(Debug)]
pub struct Unsaved {
    /// What it is, e.g. "the key cache".
    what: &'static str,
    /// What the agent does meanwhile, and what is not saved.
    meanwhile: &'static str,
    /// Where and why, as last reported, while failing.
    failing: Mutex<Option<(PathBuf, String)>>,
}

impl Unsaved {
    /// A kind of state, not failing.
    pub const fn new(what: &'static str, meanwhile: &'static str) -> Self {
        Self {
            what,
            meanwhile,
            failing: Mutex::new(None),
        }
    }

    /// Saving to `path` failed: says so, unless this cause was already said.
    pub fn failed(&self, path: &Path, error: &(dyn std::error::Error + 'static)) {
        let io = io_error(error);
        let cause = io.map_or_else(|| error.to_string(), ToString::to_string);
        let mut failing = self.failing();
        if failing
            .as_ref()
            .is_some_and(|(p, c)| p == path && *c == cause)
        {
            return;
        }
        tracing::warn!(
            "cannot save {} to {}: {cause}; {}. {}",
            self.what,
            path.display(),
            self.meanwhile,
            advice(path, io.map(io::Error::kind)),
        );
        *failing = Some((path.to_owned(), cause));
    }

    /// Saving to `path` worked: if it had been failing, says so, with `caught_up`
    /// (what was written late) when not empty.
    pub fn saved(&self, path: &Path, caught_up: &str) {
        if self.failing().take().is_some() {
            // At warn level, like the failure: whoever saw that should see this.
            tracing::warn!("saved {} to {} again{caught_up}", self.what, path.display());
        }
    }

    /// While failing, what `vmux status` shows: what, where and why.
    pub fn status_line(&self) -> Option<String> {
        self.failing()
            .as_ref()
            .map(|(path, cause)| format!("{} ({}: {cause})", self.what, path.display()))
    }

    fn failing(&self) -> MutexGuard<'_, Option<(PathBuf, String)>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The I/O error at the root of `error`, if there is one.
fn io_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

/// What a person can do about it.
fn advice(path: &Path, kind: Option<io::ErrorKind>) -> String {
    let dir = path.parent().unwrap_or(path).display();
    match kind {
        Some(io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => {
            format!("Free some space on the filesystem holding {dir}")
        }
        Some(io::ErrorKind::ReadOnlyFilesystem) => format!(
            "{dir} is on a read-only filesystem: remount it read-write, or restart the agent with VMUX_HOME set to a writable directory"
        ),
        Some(io::ErrorKind::PermissionDenied) => {
            format!("Check the owner and permissions of {dir}")
        }
        _ => format!("Check that {dir} is writable and has free space"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remembers_the_cause_until_saved() {
        let unsaved = Unsaved::new("the thing", "kept in memory");
        let path = Path::new("/state/thing");
        assert_eq!(unsaved.status_line(), None);
        let full = io::Error::from(io::ErrorKind::StorageFull);
        unsaved.failed(path, &full);
        let line = unsaved.status_line().unwrap();
        assert!(line.starts_with("the thing (/state/thing: "), "{line}");
        unsaved.saved(path, "");
        assert_eq!(unsaved.status_line(), None);
        // The cause is found under a wrapping error.
        let wrapped = vmux_link::Error::State {
            path: path.to_owned(),
            source: io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
        };
        assert_eq!(
            io_error(&wrapped).map(io::Error::kind),
            Some(io::ErrorKind::ReadOnlyFilesystem)
        );
        assert!(advice(path, Some(io::ErrorKind::ReadOnlyFilesystem)).contains("remount"));
        assert!(advice(path, Some(io::ErrorKind::StorageFull)).contains("Free some space"));
    }
}
