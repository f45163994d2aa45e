//! The agent's Unix socket: where it lives, how it is created safely, and
//! how it is removed again.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::{Error, Result};

/// File name of the socket inside `VMUX_HOME`.
pub const HOME_SOCKET: &str = "agent.sock";

/// `$VMUX_HOME/agent.sock` when `VMUX_HOME` is set (tests and demos keep
/// everything there), else `~/.ssh/vmux-agent.sock` as the original had.
pub fn default_path() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("VMUX_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home).join(HOME_SOCKET));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(Error::NoSocketPath)?;
    Ok(PathBuf::from(home).join(".ssh").join("vmux-agent.sock"))
}

/// The socket the control commands talk to: `--socket`, else
/// `$SSH_AUTH_SOCK`, else the default path.
pub fn client_path(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        Some(s) => Ok(PathBuf::from(s)),
        None => default_path(),
    }
}

/// A listening socket; the file is removed when this drops, unless someone
/// else has since replaced it.
#[derive(Debug)]
pub struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the file we created.
    identity: (u64, u64),
}

impl BoundSocket {
    /// Creates the socket at `path`: its directory private to us (created
    /// 0700 if missing), a live agent never replaced, a stale socket
    /// removed, the new one 0600.
    pub fn bind(path: &Path) -> Result<Self> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        prepare_dir(&dir)?;
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                // Something answering means a running agent: never clobber
                // it. Refused means a leftover from a crash.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(Error::AlreadyRunning {
                        path: path.to_owned(),
                    });
                }
                fs::remove_file(path).map_err(io_err)?;
            }
            Ok(_) => {
                return Err(Error::NotASocket {
                    path: path.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        // The directory is private already; 0600 also keeps the socket
        // closed if the directory is later opened up.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        let meta = fs::symlink_metadata(path).map_err(io_err)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The listener.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        // Only our own file: a successor may have replaced a socket it
        // found stale, and removing that would cut it off.
        if let Ok(meta) = fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes sure `dir` exists and only we (or root) can write to it.
fn prepare_dir(dir: &Path) -> Result<()> {
    let io_err = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    match fs::metadata(dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(Error::UnsafeDirectory {
                    path: dir.to_owned(),
                    why: "it is not a directory".into(),
                });
            }
            let me = rustix::process::getuid().as_raw();
            if meta.uid() != me && meta.uid() != 0 {
                return Err(Error::UnsafeDirectory {
                    path: dir.to_owned(),
                    why: format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
                });
            }
            // Whoever can write the directory can swap the socket for
            // their own and collect our clients' sign requests.
            let mode = meta.mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(Error::UnsafeDirectory {
                    path: dir.to_owned(),
                    why: format!("other users can write to it (mode {mode:04o})"),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_err)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn live_socket_is_kept_and_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/agent.sock");
        let first = BoundSocket::bind(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        assert!(matches!(
            BoundSocket::bind(&path),
            Err(Error::AlreadyRunning { .. })
        ));
        // Leave a stale file behind, as a crash would.
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("x")).unwrap();
        drop(listener);
        drop(first);
        assert!(!path.exists());
        std::os::unix::net::UnixListener::bind(&path).unwrap();
        let again = BoundSocket::bind(&path).unwrap();
        drop(again);
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_group_writable_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(
            BoundSocket::bind(&dir.path().join("a.sock")),
            Err(Error::UnsafeDirectory { .. })
        ));
    }
}
