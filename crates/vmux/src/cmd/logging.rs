//! Where log lines go. On stderr, except while a full-screen sheet owns the
//! terminal (`vmux up`, `vmux signer` with the TUI): then into a file in
//! the state directory, which the screen names, so that no log line is
//! ever drawn over the sheet.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use vmux_link::home::{Home, create_private_dir};

/// The log file in the state directory; the previous run's is kept as
/// `vmux.log.1`.
pub const FILE: &str = "vmux.log";

/// The log file of the state directory in `VMUX_HOME`.
pub fn path() -> super::Result<PathBuf> {
    Ok(Home::from_env()?.file(FILE))
}

/// Starts logging to `file`, or to stderr when `None`. A file that cannot
/// be opened is said on stderr now (before any screen) and logging goes
/// nowhere: never onto the screen.
pub fn init(file: Option<&Path>) {
    let filter = EnvFilter::try_from_env("VMUX_LOG").unwrap_or_else(|_| "warn,vmux=info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        None => builder.with_writer(std::io::stderr).init(),
        Some(path) => match open(path) {
            Ok(file) => builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init(),
            Err(e) => {
                eprintln!(
                    "vmux: cannot write the log file {}: {e}; logging is off",
                    path.display()
                );
                builder.with_writer(std::io::sink).init();
            }
        },
    }
}

/// Opens `path` afresh (0600), the old one moved to `path.1`.
fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(std::io::Error::other)?;
    }
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    match std::fs::rename(path, &old) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
