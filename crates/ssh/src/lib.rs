//! `vmux ssh`: an SSH client whose public-key authentication asks the
//! paired signer, for a device with no agent and no key files.
//!
//! - [`hosts`]: destinations and the saved hosts of `vmux hosts`.
//! - [`known_hosts`], [`host_key`]: OpenSSH's host key files and verdicts.
//! - [`signer`]: the session with the signer.
//! - [`client`]: the SSH connection (russh) and authentication.
//! - [`session`], [`terminal`]: the shell or command, raw mode, resizes.

/// `eprintln!` that never panics: with stderr gone (`2>&1 | head -0`) a
/// message nobody can read is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod client;
mod error;
pub mod host_key;
pub mod hosts;
pub mod known_hosts;
pub mod session;
pub mod signer;
pub mod terminal;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vmux_link::home::Home;

pub use error::{Error, Result};
pub use hosts::{SavedHosts, Target};
pub use session::{NO_STATUS, Run};

/// How long to wait for a paired signer before giving up.
pub const SIGNER_WAIT: Duration = Duration::from_secs(10);

/// What to connect to and how.
#[derive(Debug)]
pub struct Options {
    /// The vmux state directory (device identity, trust store).
    pub home: Home,
    /// Saved hosts, where the identity that worked is remembered.
    pub saved: SavedHosts,
    /// Where to log in; `user` defaults to `local_user`.
    pub target: Target,
    /// The local login name.
    pub local_user: String,
    /// The signer's address, instead of the pinned one.
    pub signer: Option<String>,
    /// The shell, or a command.
    pub run: Run,
}

/// Connects, logs in with the signer's identities, runs the session, and
/// returns the remote exit status.
pub async fn run(options: Options) -> Result<u8> {
    let Options {
        home,
        mut saved,
        target,
        local_user,
        signer,
        run,
    } = options;
    let user = target.user_or(&local_user);
    // Reach the signer while the SSH handshake runs: by the time the server
    // asks for a signature the session is usually up.
    let last = Arc::new(Mutex::new(None));
    let clock = Arc::new(vmux_link::clock::SystemClock);
    let mut finding = tokio::spawn(signer::find(home.clone(), signer, last.clone(), clock));

    let name = known_hosts::lookup_name(&target.host, target.port);
    let known = known_hosts::KnownHosts::load_default()?;
    let (mut conn, host_key) = client::connect(known, &target.host, target.port, &name).await?;

    let mut remote = if finding.is_finished() {
        finding.await
    } else {
        say!("Waiting for signer…");
        match tokio::time::timeout(SIGNER_WAIT, &mut finding).await {
            Ok(found) => found,
            Err(_) => {
                finding.abort();
                let last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                return Err(Error::NoSigner {
                    waited_secs: SIGNER_WAIT.as_secs(),
                    last,
                });
            }
        }
    }
    .map_err(|_| Error::SignerLost)??;
    if remote.keys.is_empty() {
        return Err(Error::NoIdentities {
            signer: remote.name.clone(),
        });
    }

    let address = target.address();
    let destination = format!("{user}@{address}");
    let first = saved.last_identity(&destination).map(str::to_owned);
    let used = client::authenticate(
        &mut conn,
        &mut remote,
        &user,
        &address,
        &host_key,
        first.as_deref(),
    )
    .await?;
    // Only a hint for next time: failing to save it must not end the login.
    if let Err(e) = saved.remember_identity(&destination, &used) {
        tracing::warn!("{e}");
    }
    // The signer session is not needed any more; don't keep it open for
    // the length of the shell.
    drop(remote);
    let status = session::run(&conn, run).await?;
    let _ = conn
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(status)
}
