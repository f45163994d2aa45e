//! The vmux agent: a drop-in `ssh-agent` that holds no long-term private
//! key. It offers the signer's public keys and forwards each signature over
//! the link, where a person approves it.
//!
//! - [`socket`]: where the socket lives and how it is created and removed.
//! - [`connection`]: one client connection, request by request; what a
//!   forwarded one may not do.
//! - [`slots`]: the cap on connections, and on forwarded ones.
//! - [`link`]: the session with the signer, reconnects, response routing.
//! - [`keys`], [`cache`]: the identities offered, and their cache on disk.
//! - [`lock`], [`session_bind`], [`context`], [`known_names`]: OpenSSH's
//!   lock and session binding, and what we tell the signer about each
//!   request; [`offers`]: the identity that last logged in to a host first.
//! - [`control`]: `status@vmux` / `refresh@vmux` for `vmux status` and
//!   `vmux refresh`.
//! - [`cert`]: the session certificate, an ephemeral key signed by the
//!   signer's CA: a second source of identities, signed for locally.
//! - [`request_log`]: the JSON-lines log of every sign request.
//! - [`unsaved`]: state the directory would not take, said once, served
//!   from memory meanwhile.

pub mod cache;
pub mod cert;
pub mod connection;
pub mod context;
pub mod control;
mod error;
pub mod keys;
pub mod known_names;
pub mod link;
pub mod lock;
pub mod offers;
pub mod request_log;
pub mod session_bind;
pub mod slots;
pub mod socket;
pub mod unsaved;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::home::Home;

pub use error::{Error, Result};

use cert::Certs;
use keys::{Key, Keys, Source};
use link::{KeyListSink, Link};
use request_log::RequestLog;
use slots::Slots;
use socket::BoundSocket;
use unsaved::Unsaved;

/// How long a forwarded signature may take by default: the signer's 60 s
/// window plus time for the answer to travel.
pub const DEFAULT_SIGN_TIMEOUT: Duration = Duration::from_secs(70);

/// How to run the agent.
#[derive(Debug)]
pub struct Config {
    /// State directory (device identity, trust store, cache, log).
    pub home: Home,
    /// Socket path.
    pub socket: PathBuf,
    /// Signer address overriding the trust store's last known one.
    pub signer: Option<String>,
    /// Longest wait for a forwarded signature, connecting included.
    pub sign_timeout: Duration,
}

/// How the agent asks for session certificates.
#[derive(Debug, Clone)]
pub struct CertConfig {
    /// Validity to ask for, seconds; 0 asks for none.
    pub validity_secs: u64,
    /// Wall-clock time (certificate validity, request windows).
    pub clock: Arc<dyn Clock>,
}

impl Default for CertConfig {
    fn default() -> Self {
        Self {
            validity_secs: cert::DEFAULT_VALIDITY_SECS,
            clock: Arc::new(vmux_link::clock::SystemClock),
        }
    }
}

/// State shared by every connection.
#[derive(Debug)]
pub struct Agent {
    uid: u32,
    keys: Mutex<Keys>,
    lock: Mutex<lock::Lock>,
    link: Arc<Link>,
    certs: Certs,
    /// Whether to ask for session certificates at all.
    certificates: bool,
    log: Arc<RequestLog>,
    clock: Arc<dyn Clock>,
    cache_path: PathBuf,
    /// Whether the last key list reached the cache.
    cache_unsaved: Unsaved,
    sign_timeout: Duration,
    /// Which identity to list first for a bound host.
    offers: offers::Offers,
}

impl Agent {
    fn keys(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, lock::Lock> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_locked(&self) -> bool {
        self.lock().is_locked()
    }

    /// What `vmux status` shows.
    pub fn status(&self) -> control::Status {
        let keys = self.keys();
        control::Status {
            connected_to: self.link.signer_name(),
            certificate: self.certs.status_line(),
            certificate_refused: self.certs.last_refusal().map(|c| c.as_str().to_owned()),
            locked: self.is_locked(),
            from_cache: keys.source() == Source::Cache,
            not_saved: self
                .cache_unsaved
                .status_line()
                .into_iter()
                .chain(self.log.unsaved())
                .collect(),
            keys: keys
                .list()
                .iter()
                .map(|k| control::StatusKey {
                    comment: k.comment.clone(),
                    fingerprint: k.fingerprint.to_string(),
                    algorithm: k.algorithm.clone(),
                })
                .collect(),
        }
    }
}

impl KeyListSink for Agent {
    fn key_list(&self, signer: &str, keys: Vec<Key>) {
        // In memory first: the list is served whether or not it reaches disk.
        self.keys().set(keys.clone(), Source::Live);
        match cache::save(&self.cache_path, Some(signer), &keys) {
            Ok(()) => self.cache_unsaved.saved(&self.cache_path, ""),
            Err(e) => self.cache_unsaved.failed(&self.cache_path, &e),
        }
    }
}

/// An agent whose socket is bound, ready to serve.
#[derive(Debug)]
pub struct Running {
    agent: Arc<Agent>,
    socket: BoundSocket,
    slots: Arc<Slots>,
    home: Home,
    device: Device,
    signer: Option<String>,
}

/// Binds the socket and loads the cache; nothing is served yet, so the
/// caller can print the socket path first. `certs.validity_secs == 0` asks
/// for no session certificate.
pub fn start(config: Config, certs: CertConfig) -> Result<Running> {
    let device = Device::load_or_create(&config.home, None)?;
    let slots = Slots::new(slots::fit_open_files(), slots::MAX_FORWARDED);
    let socket = BoundSocket::bind(&config.socket)?;
    let cache_path = config.home.file(cache::CACHE_FILE);
    let (cached, warning) = cache::load(&cache_path);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let mut keys = Keys::default();
    keys.set(cached, Source::Cache);
    let log = Arc::new(RequestLog::new(config.home.file(request_log::LOG_FILE)));
    let agent = Arc::new(Agent {
        uid: rustix::process::getuid().as_raw(),
        keys: Mutex::new(keys),
        lock: Mutex::new(lock::Lock::default()),
        link: Arc::new(Link::new(&device)),
        certs: Certs::new(certs.clock.clone(), certs.validity_secs, Some(log.clone())),
        certificates: certs.validity_secs > 0,
        log,
        clock: certs.clock,
        cache_path,
        cache_unsaved: Unsaved::new(
            "the key cache",
            "the agent serves the signer's key list from memory; it is saved with the next key list \
             (on reconnecting, or `vmux refresh`), and an agent restarted before that starts from the older cache",
        ),
        sign_timeout: config.sign_timeout,
        offers: offers::Offers::default(),
    });
    Ok(Running {
        agent,
        socket,
        slots,
        home: config.home,
        device,
        signer: config.signer,
    })
}

impl Running {
    /// The socket path.
    pub fn socket_path(&self) -> &std::path::Path {
        self.socket.path()
    }

    /// Serves until SIGTERM or SIGINT, then removes the socket.
    pub async fn serve(self) -> Result<()> {
        let Running {
            agent,
            socket,
            slots,
            home,
            device,
            signer,
        } = self;
        let sig_err = |source| Error::Io {
            path: PathBuf::from("signal handler"),
            source,
        };
        let mut term = signal(SignalKind::terminate()).map_err(sig_err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(sig_err)?;
        let supervisor = tokio::spawn(link::supervise(
            agent.link.clone(),
            agent.clone(),
            home,
            device,
            signer,
        ));
        let certs = agent.certificates.then(|| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let sessions = agent.link.sessions();
                // A locked agent asks the signer for nothing.
                let paused = || agent.is_locked();
                agent
                    .certs
                    .run(agent.link.as_ref(), sessions, cert::renew::TICK, paused)
                    .await;
            })
        });
        loop {
            tokio::select! {
                accepted = socket.listener().accept() => match accepted {
                    // Past the cap the stream is dropped, closing it: its
                    // client fails at once rather than waiting.
                    Ok((stream, _)) => {
                        if let Some(slot) = slots.take() {
                            tokio::spawn(connection::serve(agent.clone(), stream, slot));
                        }
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off briefly
                        // rather than spin.
                        tracing::warn!("accepting an agent connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        supervisor.abort();
        if let Some(task) = certs {
            task.abort();
        }
        drop(socket);
        Ok(())
    }
}
