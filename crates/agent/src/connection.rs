//! One client connection on the agent socket: requests answered in order,
//! each connection in its own task so a slow approval on one never holds
//! up another.
//!
//! A connection that a session binding says is forwarded (`ssh -A`: root on
//! the remote host may be the one talking) gets less than a local one: the
//! signer's keys and signatures, each on a sheet that says "through a
//! forwarded agent", and nothing else. Not the session certificate, which
//! signs without a sheet; not the `…@vmux` control extensions; not lock or
//! unlock, which belong to the person at this machine.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use vmux_proto::agent::{
    Extension, ExtensionResponse, FrameDecoder, Request, Response, SignRequest, SignedData,
    classify,
};
use vmux_proto::envelope::ErrorCode;
use vmux_proto::envelope::limits::MAX_DATA_TO_SIGN_LEN;
use vmux_proto::text::escape;
use zeroize::Zeroizing;

use crate::Agent;
use crate::cert::{self, Local};
use crate::context::{named, route, sign_context};
use crate::control::{CERT_REQUEST, REFRESH, STATUS};
use crate::known_names::KnownNames;
use crate::link::Outcome;
use crate::lock::Refused;
use crate::request_log::Entry;
use crate::session_bind::Bindings;
use crate::slots::Slot;

/// Bytes read from the socket at a time. A sign request fits; larger
/// frames arrive over several reads, which the decoder joins.
const READ_CHUNK: usize = 4 * 1024;

/// Serves `stream` until the client hangs up or misbehaves; `slot` is its
/// place under the connection cap, given back when it ends.
pub async fn serve(agent: Arc<Agent>, stream: UnixStream, slot: Slot) {
    // Only our own user (or root) may use our signer. Checked on the
    // connection itself, not on file modes a client could race.
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!("closing an agent connection: cannot read its credentials: {e}");
            return;
        }
    };
    if uid != agent.uid && uid != 0 {
        tracing::warn!(
            "refused an agent connection from uid {uid}: only uid {} may use this agent",
            agent.uid
        );
        return;
    }
    let (reader, mut writer) = stream.into_split();
    let mut connection = Connection {
        agent: &agent,
        bindings: Bindings::default(),
        slot,
        closing: false,
    };
    let mut frames = FrameDecoder::new();
    loop {
        // Waiting holds no buffer: an idle connection costs its decoder
        // and what has arrived of a frame, nothing more.
        if reader.readable().await.is_err() {
            return;
        }
        let (bodies, broken) = match read_frames(&reader, &mut frames) {
            Read::Frames { bodies, broken } => (bodies, broken),
            Read::Again => continue,
            Read::Closed => return,
        };
        for body in bodies {
            // Boxed: a request's state (a sign waiting on the link is a
            // few KiB) is allocated while it runs, not carried by every
            // idle connection.
            // A client that leaves before its answer drops the request,
            // which withdraws it on the signer (see `link`).
            let response = tokio::select! {
                // The request first: a client that sent it and then shut
                // down its writing half still gets an answer ready at once.
                biased;
                response = Box::pin(connection.handle(&body)) => response,
                () = crate::hangup::closed(&reader) => return,
            };
            let frame = response
                .to_frame()
                .or_else(|_| Response::Failure.to_frame())
                .unwrap_or_default();
            if writer.write_all(&frame).await.is_err() || connection.closing {
                return;
            }
        }
        if broken {
            return;
        }
    }
}

/// What one read from the socket gave.
enum Read {
    /// The frames it completed (maybe none), each wiped on drop; `broken`
    /// when a bad frame followed them, after which the stream cannot be
    /// trusted to be in sync: answer these, then close.
    Frames {
        bodies: Vec<Zeroizing<Vec<u8>>>,
        broken: bool,
    },
    /// Nothing to read after all.
    Again,
    /// End of stream, or an error.
    Closed,
}

/// Reads what is there into `frames`. Not async, so the read buffer lives
/// on the stack for this call only, never in an idle connection's task.
fn read_frames(reader: &OwnedReadHalf, frames: &mut FrameDecoder) -> Read {
    // May hold a lock passphrase in transit: wiped on drop.
    let mut buf = Zeroizing::new([0u8; READ_CHUNK]);
    let n = match reader.try_read(buf.as_mut_slice()) {
        Ok(0) => return Read::Closed,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Read::Again,
        Err(_) => return Read::Closed,
    };
    let mut input = buf.get(..n).unwrap_or_default();
    let mut bodies = Vec::new();
    loop {
        match frames.decode(&mut input) {
            Ok(Some(body)) => bodies.push(body),
            Ok(None) => {
                return Read::Frames {
                    bodies,
                    broken: false,
                };
            }
            Err(e) => {
                // Over 256 KiB or zero length.
                tracing::debug!("closing an agent connection: {e}");
                return Read::Frames {
                    bodies,
                    broken: true,
                };
            }
        }
    }
}

/// One connection's state.
struct Connection<'a> {
    agent: &'a Agent,
    bindings: Bindings,
    slot: Slot,
    /// Answer the request at hand, then close.
    closing: bool,
}

impl Connection<'_> {
    /// Whether a session binding said this connection is forwarded.
    fn forwarded(&self) -> bool {
        self.bindings.forwarded()
    }

    async fn handle(&mut self, body: &[u8]) -> Response {
        let agent = self.agent;
        let request = match Request::decode(body) {
            Ok(r) => r,
            // Unknown type or bad body: refuse this message, keep the connection.
            Err(e) => {
                tracing::debug!("refusing an agent request: {e}");
                return Response::Failure;
            }
        };
        match request {
            Request::RequestIdentities => {
                if agent.is_locked() {
                    return Response::IdentitiesAnswer(Vec::new());
                }
                // The certificate first: where a server takes either, it
                // is the one that needs no approval. Never to a forwarded
                // connection: it would sign for the remote host unasked.
                let mut identities = Vec::new();
                if !self.forwarded() {
                    identities.extend(agent.certs.identity());
                }
                // Then the signer's keys, the one that last logged in to
                // this host first (ssh binds before it lists, so the host
                // is known by now): fewer wrong offers, MaxAuthTries spared.
                let host = self.bindings.last().map(|b| b.host_key.as_slice());
                identities.extend(agent.offers.order(host, agent.keys().identities()));
                let upstream =
                    crate::upstream::identities(agent, &self.bindings, &identities).await;
                identities.extend(upstream);
                Response::IdentitiesAnswer(identities)
            }
            Request::SignRequest(s) => sign(agent, s, &self.bindings).await,
            Request::Lock { .. } | Request::Unlock { .. } if self.forwarded() => {
                tracing::debug!("refusing lock or unlock on a forwarded agent connection");
                Response::Failure
            }
            Request::Lock { passphrase } => {
                let locked = agent.lock().lock(&passphrase);
                match locked {
                    Ok(()) => {
                        // With --upstream-writable the upstream locks too.
                        crate::upstream::change(agent, body).await;
                        Response::Success
                    }
                    Err(_) => Response::Failure,
                }
            }
            Request::Unlock { passphrase } => {
                let response = unlock(agent, &passphrase).await;
                if matches!(response, Response::Success) {
                    crate::upstream::change(agent, body).await;
                }
                response
            }
            Request::Extension(ext) => self.extension(ext).await,
            // This agent holds no private keys, ever: every add, remove and
            // smartcard request is refused, or passed on to the upstream
            // agent with --upstream-writable (never from a forwarded
            // connection). Key material in them is wiped on drop by the
            // codec's SecretBytes.
            Request::AddIdentity { .. }
            | Request::AddIdConstrained { .. }
            | Request::RemoveIdentity { .. }
            | Request::RemoveAllIdentities
            | Request::AddSmartcardKey(_)
            | Request::RemoveSmartcardKey(_)
            | Request::AddSmartcardKeyConstrained { .. } => {
                if self.forwarded() {
                    Response::Failure
                } else {
                    crate::upstream::change(agent, body).await
                }
            }
        }
    }

    async fn extension(&mut self, ext: Extension) -> Response {
        let agent = self.agent;
        match ext {
            Extension::SessionBind(bind) => {
                let bound = self.bindings.bind(&bind);
                // Forwarded connections have a cap of their own, so a
                // remote host cannot crowd out local clients.
                if self.forwarded() && !self.slot.forwarded() {
                    self.closing = true;
                    return Response::Failure;
                }
                match bound {
                    Ok(()) => Response::Success,
                    Err(e) => {
                        tracing::debug!("refusing session-bind: {e:?}");
                        Response::Failure
                    }
                }
            }
            Extension::Query => {
                let mut reply = ExtensionResponse::openssh_query();
                if let ExtensionResponse::Query { extensions } = &mut reply
                    && !self.forwarded()
                {
                    extensions.extend([
                        STATUS.to_owned(),
                        REFRESH.to_owned(),
                        CERT_REQUEST.to_owned(),
                    ]);
                }
                Response::ExtensionResponse(reply)
            }
            // Control is for this machine's user: a forwarded connection
            // may neither read the agent's state nor act on it.
            Extension::Other { name, .. } if self.forwarded() => {
                tracing::debug!("refusing {} on a forwarded agent connection", escape(&name));
                Response::Failure
            }
            Extension::Other { name, contents } if contents.is_empty() && name == STATUS => {
                agent.refresh_upstream().await;
                status_response(agent, name)
            }
            Extension::Other { name, contents } if contents.is_empty() && name == REFRESH => {
                if agent.link.refresh().await {
                    status_response(agent, name)
                } else {
                    Response::Failure
                }
            }
            // A locked agent asks for nothing on its user's behalf.
            Extension::Other { name, contents }
                if contents.is_empty() && name == CERT_REQUEST && agent.is_locked() =>
            {
                Response::Failure
            }
            Extension::Other { name, contents } if contents.is_empty() && name == CERT_REQUEST => {
                // Refused or not, the status tells which; only "no answer at
                // all" is a failure.
                if agent.certificates && agent.link.signer_name().is_some() {
                    agent.certs.request(agent.link.as_ref(), true).await;
                    status_response(agent, name)
                } else {
                    Response::Failure
                }
            }
            Extension::Other { .. } => Response::Failure,
        }
    }
}

/// Unlocks with `passphrase`, as soon as the agent-wide delay after the
/// last wrong one allows; a wrong one is answered after its own delay.
async fn unlock(agent: &Agent, passphrase: &[u8]) -> Response {
    loop {
        let result = agent.lock().unlock(passphrase, Instant::now());
        match result {
            Ok(()) => return Response::Success,
            // Another connection's guess failed a moment ago: wait our turn.
            Err(Refused::TooSoon(wait)) => tokio::time::sleep(wait).await,
            Err(Refused::WrongPassphrase(delay)) => {
                tokio::time::sleep(delay).await;
                return Response::Failure;
            }
            Err(Refused::Invalid | Refused::Random) => return Response::Failure,
        }
    }
}

fn status_response(agent: &Agent, name: String) -> Response {
    Response::ExtensionResponse(ExtensionResponse::Other {
        name,
        contents: agent.status().to_contents(),
    })
}

async fn sign(agent: &Agent, request: SignRequest, bindings: &Bindings) -> Response {
    if bindings.forwarded() {
        // The remote host may know the certificate (it is shown to every
        // server it logs in to) and ask for it by its blob: refused, and
        // logged, for that is someone trying.
        if let Some(fingerprint) = agent.certs.fingerprint_of(&request.key_blob) {
            log_session_cert(
                agent,
                &request,
                bindings,
                fingerprint,
                "refusedForwarded",
                None,
            );
            return Response::Failure;
        }
    } else if !agent.is_locked()
        && let Some(response) = sign_locally(agent, &request, bindings)
    {
        // A locked agent signs nothing, not even with its own session
        // key; the request then falls through to the refusal below.
        return response;
    }
    let Some(key) = agent.keys().find(&request.key_blob).cloned() else {
        return crate::upstream::sign(agent, request, bindings).await;
    };
    let started = Instant::now();
    let refused = if agent.is_locked() {
        Some("locked")
    } else if request.data.len() > MAX_DATA_TO_SIGN_LEN {
        // More than the link carries; no SSH signature needs it.
        Some("tooLarge")
    } else {
        None
    };
    // The hosts' names only for a request that goes on with hosts to
    // name: known_hosts is read for them, once per request.
    let names = if refused.is_none() && !bindings.is_empty() {
        KnownNames::read().await
    } else {
        KnownNames::default()
    };
    // The proofs travel for the signer to check; the names are claims.
    let bound = bindings.to_wire(|host_key| names.name_of(host_key));
    let context = named(sign_context(&request.data, bindings), &bound);
    let mut entry = Entry {
        time_milliseconds: agent.clock.now_ms(),
        request_id: None,
        key_fingerprint: key.fingerprint.to_string(),
        key_comment: key.comment.clone(),
        path: "forwarded".to_owned(),
        context: context.clone(),
        outcome: String::new(),
        latency_ms: 0,
        message: None,
        route: route(&bound),
    };
    let response = if let Some(outcome) = refused {
        entry.outcome = outcome.to_owned();
        Response::Failure
    } else {
        let (outcome, request_id) = agent
            .link
            .sign(
                &key,
                &request.data,
                request.flags.bits(),
                context,
                bound,
                agent.sign_timeout,
            )
            .await;
        entry.request_id = request_id;
        entry.outcome = outcome.name().to_owned();
        match outcome {
            Outcome::Signed(signature) => {
                logged_in(agent, &request, bindings);
                Response::SignResponse { signature }
            }
            Outcome::Refused(code, message) => {
                // A person saying no is the system working; anything else
                // (clock skew, a disabled key, …) is something to fix. The
                // signer's words and the key's comment reach a terminal:
                // escaped. The log keeps them as they came; its readers
                // escape.
                if code != ErrorCode::UserDenied {
                    tracing::warn!(
                        "the signer refused to sign with \"{}\": {} ({})",
                        escape(&key.comment),
                        message
                            .as_deref()
                            .map_or("it gave no reason".into(), escape),
                        code.as_str()
                    );
                }
                entry.message = message;
                Response::Failure
            }
            _ => Response::Failure,
        }
    };
    entry.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    agent.log.append(&entry);
    response
}

/// Signs with the session certificate's key, here and now, when the
/// request is for it; `None` when it is for another key.
fn sign_locally(agent: &Agent, request: &SignRequest, bindings: &Bindings) -> Option<Response> {
    let started = Instant::now();
    let (response, outcome, fingerprint) = match agent.certs.sign(&request.key_blob, &request.data)
    {
        Local::NotOurs => return None,
        Local::Signed(signature, fingerprint) => (
            Response::SignResponse { signature },
            "approved",
            fingerprint,
        ),
        Local::Failed(fingerprint) => (Response::Failure, "internal", fingerprint),
    };
    log_session_cert(
        agent,
        request,
        bindings,
        fingerprint,
        outcome,
        Some(started),
    );
    Some(response)
}

/// Logs a request for the session certificate's key.
fn log_session_cert(
    agent: &Agent,
    request: &SignRequest,
    bindings: &Bindings,
    fingerprint: String,
    outcome: &str,
    started: Option<Instant>,
) {
    agent.log.append(&Entry {
        time_milliseconds: agent.clock.now_ms(),
        request_id: None,
        key_fingerprint: fingerprint,
        key_comment: cert::COMMENT.to_owned(),
        path: "session-cert".to_owned(),
        context: sign_context(&request.data, bindings),
        outcome: outcome.to_owned(),
        latency_ms: started.map_or(0, |s| {
            u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX)
        }),
        message: None,
        route: None,
    });
}

/// The signer made a login signature with `request`'s key: list it first for
/// that host next time.
fn logged_in(agent: &Agent, request: &SignRequest, bindings: &Bindings) {
    if let SignedData::Userauth(login) = classify(&request.data)
        && let Some(bound) = bindings.for_session(&login.session_id)
    {
        agent.offers.signed(&bound.host_key, &request.key_blob);
    }
}
