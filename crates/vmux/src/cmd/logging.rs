//! Where log lines go. On stderr, except while a full-screen sheet owns the
//! terminal (`vmux up`, `vmux signer` with the TUI): then into a file in
//! the state directory, which the screen names, so that no log line is
//! ever drawn over the sheet; and for `vmux agent` started in the
//! background, into its own file, so none is drawn over the shell.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use vmux_link::home::{Home, create_private_dir};
use vmux_link::logfile::{self, Rotation};

/// The log file in the state directory. Each run starts a new one; the
/// last few are kept as `vmux.log.1` … (see [`ROTATION`]).
pub const FILE: &str = "vmux.log";

/// A file is also rotated when it reaches 1 MiB during a run: what lands
/// here includes lines about strangers' connections, and a stranger must
/// not be able to fill the disk by connecting again and again.
const ROTATION: Rotation = Rotation::DEFAULT;

/// The log file of a background `vmux agent`: its own, as a signer on the
/// same state directory starts `vmux.log` anew at each run.
pub const AGENT_FILE: &str = "vmux-agent.log";

/// The log file of the state directory in `VMUX_HOME`.
pub fn path() -> super::Result<PathBuf> {
    Ok(Home::from_env()?.file(FILE))
}

/// The log file of a background agent, in `VMUX_HOME`.
pub fn agent_path() -> super::Result<PathBuf> {
    Ok(Home::from_env()?.file(AGENT_FILE))
}

/// Starts logging to `file`, or to stderr when `None`. A file that cannot
/// be opened is said on stderr now (before any screen) and logging goes
/// nowhere: never onto the screen.
pub fn init(file: Option<&Path>) {
    let filter = EnvFilter::try_from_env("VMUX_LOG").unwrap_or_else(|_| "warn,vmux=info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        None => builder.with_writer(std::io::stderr).init(),
        Some(path) => match start(path) {
            Ok(()) => builder
                .with_ansi(false)
                .with_writer(Mutex::new(Capped {
                    path: path.to_owned(),
                }))
                .init(),
            Err(e) => {
                errln!(
                    "vmux: cannot write the log file {}: {e}; logging is off",
                    path.display()
                );
                builder.with_writer(std::io::sink).init();
            }
        },
    }
}

/// Starts a new file at `path` (0600) for this run, the old ones moved up.
fn start(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(std::io::Error::other)?;
    }
    logfile::rotate(path, ROTATION.keep)?;
    logfile::append(path, b"", ROTATION)
}

/// The log file as a writer: each event's line is appended, rotating at
/// [`ROTATION`]'s size.
struct Capped {
    path: PathBuf,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logfile::append(&self.path, buf, ROTATION)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// However much is logged (a stranger's connections, again and again),
    /// the files stay bounded: `keep` older ones and the current one, none
    /// past the size; and each run starts a file of its own.
    #[test]
    fn the_log_file_is_bounded_and_each_run_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        start(&path).unwrap();
        let mut log = Capped { path: path.clone() };
        let line = [b'x'; 127]
            .iter()
            .copied()
            .chain(*b"\n")
            .collect::<Vec<_>>();
        for _ in 0..(6 << 20) / line.len() {
            log.write_all(&line).unwrap();
        }
        let files = logfile::files(&path, ROTATION);
        assert_eq!(files.len(), ROTATION.keep + 1, "{files:?}");
        for file in &files {
            assert!(std::fs::metadata(file).unwrap().len() <= ROTATION.at);
        }
        start(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(
            !dir.path()
                .join(format!("{FILE}.{}", ROTATION.keep + 1))
                .exists()
        );
    }
}
