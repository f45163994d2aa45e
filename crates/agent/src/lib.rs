//! The vmux agent: a drop-in `ssh-agent` that holds no long-term private
//! key. It offers the signer's public keys and forwards each signature over
//! the link, where a person approves it.
//!
//! - [`socket`]: where the socket lives and how it is created and removed.
//! - [`connection`]: one client connection, request by request; what a
//!   forwarded one may not do.
//! - [`slots`]: the cap on connections, and on forwarded ones.
//! - [`quota`]: the share of the signer's pending requests that
//!   connections, and forwarded ones together, may use.
//! - [`link`]: the sessions with the signers, finding and waking them,
//!   reconnects, request and response routing.
//! - [`upstream`]: another ssh-agent's keys beside the signers'.
//! - [`hangup`]: noticing a client that leaves while its request waits.
//! - [`keys`], [`cache`]: the identities offered, and their cache on disk.
//! - [`lock`], [`session_bind`], [`context`], [`known_names`]: OpenSSH's
//!   lock and session binding, and what we tell the signer about each
//!   request, [`client_host`] the host the client typed; [`offers`]: the identity that last logged in to a host first.
//! - [`control`]: `status@vmux` / `refresh@vmux` for `vmux status` and
//!   `vmux refresh`.
//! - [`cert`]: the session certificate, an ephemeral key signed by the
//!   signer's CA: a second source of identities, signed for locally.
//! - [`sign_route`]: where a sign request goes (certificate, signer,
//!   upstream, or refused and why), decided without I/O.
//! - [`request_log`]: the JSON-lines log of every sign request.
//! - [`refusals`]: why the signer last refused, for `vmux status`, said once.
//! - [`unsaved`]: state the directory would not take, said once, served
//!   from memory meanwhile.

pub mod cache;
pub mod cert;
pub mod client_host;
pub mod connection;
pub mod context;
pub mod control;
mod error;
pub mod hangup;
pub mod keys;
pub mod known_names;
pub mod link;
pub mod lock;
pub mod offers;
pub mod quota;
pub mod refusals;
pub mod request_log;
pub mod session_bind;
pub mod sign_route;
pub mod slots;
pub mod socket;
mod status;
pub mod unsaved;
pub mod upstream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use vmux_link::Fingerprint;
use vmux_link::clock::Clock;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::wake::Wakes;
use vmux_proto::agent::Identity;

pub use error::{Error, Result};

use cert::Certs;
use keys::{Holder, Key, Keys, Source};
use link::{KeyListSink, Link};
use request_log::RequestLog;
use slots::Slots;
use socket::BoundSocket;
use unsaved::Unsaved;
use upstream::Upstream;

/// How long a forwarded signature may take by default: the signer's 60 s
/// window plus time for the answer to travel.
pub const DEFAULT_SIGN_TIMEOUT: Duration = vmux_proto::envelope::limits::REQUEST_WAIT;

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
    /// Longest wait for a signer that cannot be woken (no wake endpoint).
    pub signer_wait: Duration,
    /// Another agent whose keys are offered beside the signers'.
    pub upstream: Option<Upstream>,
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

/// A signer's name and the CA key blob of its last key list.
type SignerSeen = (String, Option<Vec<u8>>);

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
    upstream: Option<Upstream>,
    /// The upstream's keys at its last listing, and whether it answered.
    upstream_keys: Mutex<(bool, Vec<Identity>)>,
    /// Each signer's name and the CA key its last key list named.
    signers: Mutex<HashMap<Fingerprint, SignerSeen>>,
    /// Sign requests waiting on the signer, forwarded ones apart.
    quota: Arc<quota::Quota>,
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

    /// The session certificate: for in-process drivers (the agent-wide
    /// fuzzer) that give it one from a CA of their own.
    pub fn certs(&self) -> &Certs {
        &self.certs
    }

    /// Remembers what the upstream listed, for `vmux status`.
    fn set_upstream_keys(&self, listed: Option<&[Identity]>) {
        *self
            .upstream_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            (listed.is_some(), listed.unwrap_or_default().to_vec());
    }

    /// Asks the upstream for its keys now, for `vmux status`.
    pub async fn refresh_upstream(&self) {
        if let Some(up) = &self.upstream {
            self.set_upstream_keys(up.list().await.as_deref());
        }
    }
}

impl Agent {
    /// Writes `keys` to the cache, or says why it could not.
    fn save_cache(&self, keys: &[Key]) {
        match cache::save(&self.cache_path, self.link.signer_name().as_deref(), keys) {
            Ok(()) => self.cache_unsaved.saved(&self.cache_path, ""),
            Err(e) => self.cache_unsaved.failed(&self.cache_path, &e),
        }
    }
}

impl KeyListSink for Agent {
    fn key_list(&self, signer: &Holder, keys: Vec<Key>, ca_public_key: Option<Vec<u8>>) {
        // In memory first: the list is served whether or not it reaches disk.
        let all = {
            // Held while checking: a removal then waits for this list, and
            // forgets it after.
            let mut held = self.keys();
            if self
                .link
                .pinned()
                .is_some_and(|pinned| !pinned.contains(&signer.fingerprint))
            {
                // Sent by a session that was ending as its signer went.
                return;
            }
            self.signers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    signer.fingerprint.clone(),
                    (signer.name.clone(), ca_public_key),
                );
            held.set_signer(signer, keys);
            held.list().to_vec()
        };
        self.save_cache(&all);
    }

    fn certificates_revoked(&self, signer: &Holder, refusal: vmux_link::requester::Refusal) {
        tracing::info!(
            "the signer {} revoked this device's certificates",
            vmux_proto::text::escape(&signer.name)
        );
        self.certs.revoked(refusal);
    }

    fn pinned_changed(&self, pinned: &[Fingerprint]) {
        let kept = {
            let mut held = self.keys();
            self.signers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|f, _| pinned.contains(f));
            held.retain_pinned(pinned).then(|| held.list().to_vec())
        };
        // So that a restarted agent does not offer them either.
        if let Some(kept) = kept {
            self.save_cache(&kept);
        }
    }
}

/// The signer in use while it is up and its key list named a CA key; the
/// session certificate is asked for unasked only then.
fn ca_sessions(agent: Arc<Agent>) -> tokio::sync::watch::Receiver<Option<Fingerprint>> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let mut in_use = agent.link.in_use();
        let mut lists = agent.link.key_lists();
        loop {
            let up = in_use
                .borrow_and_update()
                .as_ref()
                .map(|c| c.fingerprint.clone());
            lists.borrow_and_update();
            let now = up.filter(|fp| agent.lists_ca(fp));
            tx.send_if_modified(|was| {
                let changed = *was != now;
                *was = now;
                changed
            });
            tokio::select! {
                changed = in_use.changed() => if changed.is_err() { return },
                changed = lists.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    rx
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
    let link = Arc::new(Link::new(
        &device,
        certs.clock.clone(),
        Wakes::new(&config.home),
        config.signer_wait,
    ));
    let agent = Arc::new(Agent {
        uid: rustix::process::getuid().as_raw(),
        keys: Mutex::new(keys),
        lock: Mutex::new(lock::Lock::default()),
        link: link.clone(),
        certs: Certs::new(certs.clock.clone(), certs.validity_secs, Some(log.clone()))
            .with_refusals(link.refusals().clone()),
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
        upstream: config.upstream,
        upstream_keys: Mutex::new((false, Vec::new())),
        signers: Mutex::new(HashMap::new()),
        quota: Arc::default(),
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
    /// The agent, for serving connections in-process (tests, the fuzzer).
    pub fn agent(&self) -> Arc<Agent> {
        self.agent.clone()
    }

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
        // Forgets the session certificate, as ssh-agent drops its keys on
        // SIGUSR1; without a handler the signal would end the agent.
        let mut usr1 = signal(SignalKind::user_defined1()).map_err(sig_err)?;
        if let Some(up) = &agent.upstream {
            up.check_loop(socket.path()).await?;
        }
        let supervisor = tokio::spawn(link::supervisor::supervise(
            agent.link.clone(),
            agent.clone(),
            home,
            device,
            signer,
        ));
        let certs = agent.certificates.then(|| {
            let agent = agent.clone();
            tokio::spawn(async move {
                // Unasked only from a signer whose CA exists: no sheet at
                // start otherwise (`vmux cert request` asks regardless).
                let sessions = ca_sessions(agent.clone());
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
                _ = usr1.recv() => agent.certs.forget(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use vmux_proto::envelope::{ProviderKind, PublicKeyRecord};

    const BLOB: &[u8] = b"\0\0\0\x0bssh-ed25519\0\0\0\x01x";

    fn agent(dir: &std::path::Path) -> Arc<Agent> {
        running(dir).agent
    }

    fn running(dir: &std::path::Path) -> Running {
        let home = Home::at(dir.join("home")).unwrap();
        let config = Config {
            socket: home.file("agent.sock"),
            home,
            signer: None,
            sign_timeout: DEFAULT_SIGN_TIMEOUT,
            signer_wait: link::DEFAULT_SIGNER_WAIT,
            upstream: None,
        };
        start(config, CertConfig::default()).unwrap()
    }

    fn holder(name: &str) -> Holder {
        Holder {
            fingerprint: Fingerprint::from_string(format!("SHA256:{name}")),
            name: name.into(),
        }
    }

    fn key(comment: &str) -> Key {
        Key::from_record(&PublicKeyRecord {
            algorithm: "ssh-ed25519".into(),
            public_key_blob: BLOB.to_vec(),
            comment: comment.into(),
            provider_kind: ProviderKind::Software,
            display_name: None,
        })
    }

    #[test]
    fn an_unpinned_signers_keys_and_ca_are_forgotten_and_stay_so() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _in = rt.enter();
        let agent = agent(dir.path());
        let (phone, tablet) = (holder("phone"), holder("tablet"));
        agent.key_list(&phone, vec![key("work")], Some(BLOB.to_vec()));
        agent.key_list(&tablet, vec![key("home")], None);
        assert_eq!(agent.status().authorities.len(), 1);

        assert!(
            agent
                .link
                .set_pinned(std::slice::from_ref(&tablet.fingerprint))
        );
        agent.pinned_changed(std::slice::from_ref(&tablet.fingerprint));
        let status = agent.status();
        let comments: Vec<&str> = status.keys.iter().map(|k| k.comment.as_str()).collect();
        assert_eq!(comments, ["home"]);
        assert!(status.authorities.is_empty());
        let (cached, _) = cache::load(&agent.cache_path);
        assert_eq!(cached.len(), 1);
        assert_eq!(cached[0].signer, Some(tablet));

        // A list still in flight from the removed signer changes nothing.
        agent.key_list(&phone, vec![key("work")], Some(BLOB.to_vec()));
        let status = agent.status();
        assert_eq!(status.keys.len(), 1);
        assert!(status.authorities.is_empty());
    }

    #[test]
    fn an_upstream_comment_is_kept_as_it_came_and_escaped_once_when_shown() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _in = rt.enter();
        let agent = agent(dir.path());
        agent.set_upstream_keys(Some(&[Identity {
            key_blob: BLOB.to_vec(),
            comment: "deploy\\key\u{1b}".into(),
        }]));
        let status = agent.status();
        assert_eq!(status.keys[0].comment, "deploy\\key\u{1b}");
        let lines = status.lines().join("\n");
        assert!(lines.contains("  deploy\\\\key\\e  SHA256:"), "{lines}");
    }

    #[test]
    fn a_request_sent_before_a_half_close_is_answered() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(async { running(dir.path()) });
        let request = vmux_proto::agent::Request::RequestIdentities
            .to_frame()
            .unwrap();
        // Both the answer and the hang-up are ready at once: without an
        // order between them, about half of these would go unanswered.
        for _ in 0..32 {
            let answer = rt.block_on(async {
                let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
                let slot = running.slots.take().unwrap();
                let served = tokio::spawn(connection::serve(running.agent.clone(), server, slot));
                client.write_all(&request).await.unwrap();
                client.shutdown().await.unwrap();
                let mut answer = Vec::new();
                client.read_to_end(&mut answer).await.unwrap();
                served.await.unwrap();
                answer
            });
            // SSH_AGENT_IDENTITIES_ANSWER with no keys.
            assert_eq!(answer, [0, 0, 0, 5, 12, 0, 0, 0, 0]);
        }
    }
}
