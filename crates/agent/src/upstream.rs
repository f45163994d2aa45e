//! Another ssh-agent's keys beside the signer's (`--upstream SOCKET`): a
//! deploy key or a work token kept where it was, reachable through the one
//! `SSH_AUTH_SOCK`.
//!
//! The upstream is asked afresh on every listing (a fresh connection each
//! time, so an upstream that went away simply lists nothing). Its keys come
//! after the signer's. A signature for one of them goes to the upstream as
//! it was asked, and its answer comes back untouched: the signer is not
//! involved and no sheet appears. vmux still holds no private key: adding,
//! removing and locking keys reach the upstream only with
//! `--upstream-writable`, and are refused otherwise.
//!
//! Like the session certificate, an upstream key signs with no person in
//! the loop, so a forwarded agent connection neither lists nor uses them.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vmux_proto::agent::{Identity, Request, Response, SignRequest, frame_len};

use crate::request_log::{Entry, Event, Kind, Outcome, Via};
use crate::session_bind::Bindings;
use crate::{Agent, Error, Result, control};

/// How long a listing waits for the upstream.
const LIST_WAIT: Duration = Duration::from_secs(2);
/// How many agents deep a loop is looked for.
const MAX_CHAIN: usize = 8;

/// The upstream agent.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its socket.
    pub path: PathBuf,
    /// Whether add, remove and lock requests reach it.
    pub writable: bool,
}

impl Upstream {
    /// One request on a fresh connection, answered within `bound`; `None`
    /// if the upstream is gone, silent or makes no sense.
    async fn call(&self, frame: &[u8], bound: Duration) -> Option<Response> {
        let exchange = async {
            let mut stream = UnixStream::connect(&self.path).await.ok()?;
            stream.write_all(frame).await.ok()?;
            let mut header = [0u8; 4];
            stream.read_exact(&mut header).await.ok()?;
            // Capped before allocating, as every length from a peer.
            let len = frame_len(header).ok()?;
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await.ok()?;
            Response::decode(&body).ok()
        };
        tokio::time::timeout(bound, exchange).await.ok().flatten()
    }

    /// The upstream's identities now; `None` if it does not answer.
    pub async fn list(&self) -> Option<Vec<Identity>> {
        let frame = Request::RequestIdentities.to_frame().ok()?;
        match self.call(&frame, LIST_WAIT).await {
            Some(Response::IdentitiesAnswer(ids)) => Some(ids),
            _ => None,
        }
    }

    /// Refuses an upstream that leads back to `own` (our socket), directly
    /// or through other vmux agents' upstreams.
    pub async fn check_loop(&self, own: &Path) -> Result<()> {
        let mut next = self.path.clone();
        for _ in 0..MAX_CHAIN {
            if same_socket(&next, own) {
                return Err(Error::UpstreamLoop {
                    path: self.path.clone(),
                });
            }
            // Another vmux agent says where its own upstream is; anything
            // else (OpenSSH's agent, nothing at all) ends the chain.
            // Its status lists its own upstream first: give it that long,
            // and more (the next hop may be us, not serving yet).
            let status =
                tokio::time::timeout(LIST_WAIT * 3, control::call(&next, control::STATUS)).await;
            match status {
                Ok(Ok(control::Status {
                    upstream: Some(up), ..
                })) => next = PathBuf::from(up.path),
                _ => return Ok(()),
            }
        }
        Err(Error::UpstreamLoop {
            path: self.path.clone(),
        })
    }
}

/// Whether two paths name the same socket.
fn same_socket(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => a == b,
    }
}

/// Whether `bindings` may use upstream keys: not on a forwarded
/// connection, where nothing signs without a person.
fn usable(agent: &Agent, bindings: &Bindings) -> Option<Upstream> {
    if bindings.forwarded() || agent.is_locked() {
        return None;
    }
    agent.upstream.clone()
}

/// The upstream's identities to list after the signer's: those the signer
/// does not hold already.
pub async fn identities(agent: &Agent, bindings: &Bindings, listed: &[Identity]) -> Vec<Identity> {
    let Some(upstream) = usable(agent, bindings) else {
        return Vec::new();
    };
    let found = upstream.list().await;
    agent.set_upstream_keys(found.as_deref());
    found
        .unwrap_or_default()
        .into_iter()
        .filter(|id| !listed.iter().any(|l| l.key_blob == id.key_blob))
        .collect()
}

/// A signature with a key that is neither the signer's nor the
/// certificate's: the upstream's, if it holds it, else a refusal.
pub async fn sign(agent: &Agent, request: SignRequest, bindings: &Bindings) -> Response {
    let Some(upstream) = usable(agent, bindings) else {
        return Response::Failure;
    };
    let started = Instant::now();
    let listed = upstream.list().await;
    agent.set_upstream_keys(listed.as_deref());
    let ids = listed.unwrap_or_default();
    let Some(id) = ids.iter().find(|id| id.key_blob == request.key_blob) else {
        return Response::Failure;
    };
    let mut entry = Entry {
        time: agent.clock.now_ms(),
        request_id: None,
        kind: Kind::Sign,
        key_fingerprint: vmux_link::Fingerprint::of(&request.key_blob).to_string(),
        // As it came, like the signer's: the log's readers escape.
        key_comment: id.comment.clone(),
        path: Via::Upstream,
        context: crate::context::sign_context(&request.data, bindings),
        outcome: Outcome::Event(Event::Approved),
        latency_ms: 0,
        reason: None,
        route: None,
    };
    // The request as the client made it; the answer as the upstream gave it.
    let answer = match Request::SignRequest(request).to_frame() {
        Ok(frame) => upstream.call(&frame, agent.sign_timeout).await,
        Err(_) => None,
    };
    let response = match answer {
        Some(r @ Response::SignResponse { .. }) => r,
        Some(_) => {
            entry.outcome = Outcome::Event(Event::Refused);
            Response::Failure
        }
        None => {
            entry.outcome = Outcome::Event(Event::Unreachable);
            Response::Failure
        }
    };
    entry.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    agent.log.append(&entry);
    response
}

/// An add, remove or lock request (`body` as the client sent it): to the
/// upstream with `--upstream-writable`, else refused. vmux itself never
/// takes a private key.
pub async fn change(agent: &Agent, body: &[u8]) -> Response {
    let Some(upstream) = agent.upstream.as_ref().filter(|u| u.writable) else {
        return Response::Failure;
    };
    let Some(len) = u32::try_from(body.len()).ok() else {
        return Response::Failure;
    };
    // Framed again: the body may hold a private key, wiped on drop.
    let mut frame = zeroize::Zeroizing::new(Vec::with_capacity(body.len().saturating_add(4)));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    match upstream.call(&frame, LIST_WAIT).await {
        Some(Response::Success) => Response::Success,
        _ => Response::Failure,
    }
}
