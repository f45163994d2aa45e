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
use vmux_proto::agent::number::SSH_AGENTC_EXTENSION;
use vmux_proto::agent::{
    Extension, ExtensionResponse, FrameDecoder, Request, Response, SESSION_BIND, SignRequest,
    SignedData, classify,
};
use vmux_proto::envelope::ErrorCode;
use vmux_proto::envelope::limits::MAX_DATA_TO_SIGN_LEN;
use vmux_proto::text::escape;
use zeroize::Zeroizing;

use crate::Agent;
use crate::cert::{self, Local};
use crate::context::{named, route, sign_context};
use crate::control::{CERT_REQUEST, REFRESH, STATUS};
use crate::keys::Key;
use crate::known_names::KnownNames;
use crate::link::Outcome;
use crate::lock::Refused;
use crate::request_log::{Entry, Event, Kind, Outcome as LogOutcome, Via};
use crate::session_bind::Bindings;
use crate::sign_route::{Facts, Holder, MAX_USER_LEN, Refusal, Route, decide};
use crate::slots::Slot;

/// Bytes read from the socket at a time. A sign request fits; larger
/// frames arrive over several reads, which the decoder joins.
const READ_CHUNK: usize = 4 * 1024;

/// Serves `stream` until the client hangs up or misbehaves; `slot` is its
/// place under the connection cap, given back when it ends.
pub async fn serve(agent: Arc<Agent>, stream: UnixStream, slot: Slot) {
    // Only our own user (or root) may use our signer. Checked on the
    // connection itself, not on file modes a client could race.
    let (uid, pid) = match stream.peer_cred() {
        Ok(cred) => (cred.uid(), cred.pid()),
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
        bindings: Bindings::for_client(pid),
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
                // A session-bind we cannot read is a failed one (ssh-agent
                // marks the attempt before it parses, 6d51feab1).
                if is_session_bind(body) {
                    self.bindings.unreadable();
                    return Response::ExtensionFailure;
                }
                return Response::Failure;
            }
        };
        match request {
            Request::RequestIdentities => {
                // Locked, or a bind failed: nothing would sign, so nothing
                // is offered (ssh would spend its tries on it).
                if agent.is_locked() || self.bindings.failed() {
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

    /// Extensions as ssh-agent answers them (openssh-portable 0ef0f5a83,
    /// `process_extension`): a name this connection does not support gets
    /// a plain failure (5), one it supports that fails gets
    /// `SSH_AGENT_EXTENSION_FAILURE` (28), so a client can tell the two
    /// apart (511f5bc41). session-bind is taken even while locked, or a
    /// forwarding set up meanwhile would look local (6a57081dc).
    async fn extension(&mut self, ext: Extension) -> Response {
        let agent = self.agent;
        match ext {
            Extension::SessionBind(bind) => {
                let bound = self.bindings.bind(&bind);
                // Forwarded connections have a cap of their own, so a
                // remote host cannot crowd out local clients.
                if self.forwarded() && !self.slot.forwarded() {
                    self.closing = true;
                    return Response::ExtensionFailure;
                }
                match bound {
                    Ok(()) => Response::Success,
                    Err(e) => {
                        tracing::debug!("refusing session-bind: {e:?}");
                        Response::ExtensionFailure
                    }
                }
            }
            // Locked, ssh-agent answers nothing else; ours still say what
            // state the agent is in (`vmux status`: locked).
            Extension::Query if agent.is_locked() => Response::Failure,
            Extension::Query => Response::ExtensionResponse(self.query()),
            // Control is for this machine's user: a forwarded connection
            // may neither read the agent's state nor act on it, and is
            // told these do not exist (its query does not list them).
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
                    // `vmux refresh` and the tray's Refresh Keys leave a trace.
                    tracing::info!("key list fetched on request");
                    status_response(agent, name)
                } else {
                    Response::ExtensionFailure
                }
            }
            // A locked agent asks for nothing on its user's behalf.
            Extension::Other { name, contents }
                if contents.is_empty() && name == CERT_REQUEST && agent.is_locked() =>
            {
                Response::ExtensionFailure
            }
            Extension::Other { name, contents } if contents.is_empty() && name == CERT_REQUEST => {
                // Refused or not, the status tells which; only "no answer at
                // all" is a failure.
                if agent.certificates && agent.link.signer_name().is_some() {
                    agent.certs.request(agent.link.as_ref(), true).await;
                    status_response(agent, name)
                } else {
                    Response::ExtensionFailure
                }
            }
            Extension::Other { .. } => Response::Failure,
        }
    }

    /// What `query` lists: exactly the extensions this connection may use.
    fn query(&self) -> ExtensionResponse {
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
        reply
    }
}

/// Whether `body` is an extension request named session-bind, however
/// badly the rest of it is formed.
fn is_session_bind(body: &[u8]) -> bool {
    let name = SESSION_BIND.as_bytes();
    let Some((&SSH_AGENTC_EXTENSION, rest)) = body.split_first() else {
        return false;
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    usize::try_from(u32::from_be_bytes(*len)).is_ok_and(|n| n == name.len())
        && rest.starts_with(name)
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

/// Decides the request's route ([`sign_route::decide`]) and carries it out.
async fn sign(agent: &Agent, request: SignRequest, bindings: &Bindings) -> Response {
    let started = Instant::now();
    let key = agent.keys().find(&request.key_blob).cloned();
    let holder = if agent.certs.holds(&request.key_blob) {
        Holder::Certificate
    } else if key.is_some() {
        Holder::Signer
    } else {
        Holder::Other
    };
    let facts = Facts {
        holder,
        forwarded: bindings.forwarded(),
        bind_failed: bindings.failed(),
        locked: agent.is_locked(),
        upstream: agent.upstream.is_some(),
        too_large: request.data.len() > MAX_DATA_TO_SIGN_LEN,
        user_too_long: matches!(classify(&request.data),
            SignedData::Userauth(u) if u.user.len() > MAX_USER_LEN),
    };
    match (decide(facts), key) {
        (Route::Certificate, _) => sign_locally(agent, &request, bindings, started),
        // Held while the request waits: a forwarded host's flood gets its
        // share of the signer, not all of it (see `quota`).
        (Route::Signer, Some(key)) => match agent.quota.take(bindings.forwarded()) {
            Some(_waiting) => forward(agent, &key, &request, bindings, started).await,
            None => {
                refuse(agent, &request, bindings, holder, Some(&key), Refusal::Busy);
                Response::Failure
            }
        },
        (Route::Upstream, _) => crate::upstream::sign(agent, request, bindings).await,
        (Route::Refused(why), key) => {
            refuse(agent, &request, bindings, holder, key.as_ref(), why);
            Response::Failure
        }
        // The key went between the two looks: as if it had never been.
        (Route::Signer, None) => Response::Failure,
    }
}

/// Logs a refusal by the agent itself, for a key it knows: the
/// certificate's (someone trying, when forwarded) or a signer's.
fn refuse(
    agent: &Agent,
    request: &SignRequest,
    bindings: &Bindings,
    holder: Holder,
    key: Option<&Key>,
    why: Refusal,
) {
    tracing::debug!("refused a sign request: {}", why.explain());
    let (path, fingerprint, comment) = match (holder, key) {
        (Holder::Certificate, _) => match agent.certs.fingerprint_of(&request.key_blob) {
            Some(fp) => (Via::SessionCert, fp, cert::COMMENT.to_owned()),
            None => return,
        },
        (Holder::Signer, Some(key)) => (
            Via::Signer,
            key.fingerprint.to_string(),
            key.comment.clone(),
        ),
        _ => return,
    };
    agent.log.append(&Entry {
        time: agent.clock.now_ms(),
        request_id: None,
        kind: Kind::Sign,
        key_fingerprint: fingerprint,
        key_comment: comment,
        path,
        context: sign_context(&request.data, bindings),
        outcome: LogOutcome::Refused(why),
        latency_ms: 0,
        reason: None,
        route: None,
    });
}

/// Sends the request to the signer, for a person to approve, and logs
/// what became of it.
async fn forward(
    agent: &Agent,
    key: &Key,
    request: &SignRequest,
    bindings: &Bindings,
    started: Instant,
) -> Response {
    // The hosts' names only for a request with hosts to name: known_hosts
    // is read for them, once per request.
    let names = if bindings.is_empty() {
        KnownNames::default()
    } else {
        KnownNames::read().await
    };
    // The proofs travel for the signer to check; the names are claims,
    // the host the client was given among them.
    let typed = match bindings.client_pid() {
        Some(pid) if !bindings.is_empty() => crate::client_host::of_pid(pid),
        _ => None,
    };
    let bound = bindings.to_wire(typed.as_deref(), |key, typed| names.name_of(key, typed));
    let context = named(sign_context(&request.data, bindings), &bound);
    let mut entry = Entry {
        time: agent.clock.now_ms(),
        request_id: None,
        kind: Kind::Sign,
        key_fingerprint: key.fingerprint.to_string(),
        key_comment: key.comment.clone(),
        path: Via::Signer,
        context: context.clone(),
        outcome: LogOutcome::Event(Event::Approved),
        latency_ms: 0,
        reason: None,
        route: route(&bound),
    };
    let (outcome, request_id) = agent
        .link
        .sign(
            key,
            &request.data,
            request.flags.bits(),
            context,
            bound,
            agent.sign_timeout,
        )
        .await;
    entry.request_id = request_id;
    let response = match outcome {
        Outcome::Signed(signature) => {
            logged_in(agent, request, bindings);
            Response::SignResponse { signature }
        }
        Outcome::Refused(code, message) => {
            entry.outcome = LogOutcome::Signer(code);
            // The link said why, once (crate::refusals). The log keeps the
            // signer's words as they came; its readers escape.
            entry.reason = message;
            Response::Failure
        }
        Outcome::Unreachable => {
            entry.outcome = LogOutcome::Event(Event::Unreachable);
            Response::Failure
        }
        Outcome::TimedOut => {
            entry.outcome = LogOutcome::Event(Event::TimedOut);
            Response::Failure
        }
    };
    entry.latency_ms = elapsed_ms(started);
    agent.log.append(&entry);
    response
}

/// Milliseconds since `started`, for the log.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Signs with the session certificate's key, here and now.
fn sign_locally(
    agent: &Agent,
    request: &SignRequest,
    bindings: &Bindings,
    started: Instant,
) -> Response {
    let (response, outcome, fingerprint) = match agent.certs.sign(&request.key_blob, &request.data)
    {
        // Expired between the two looks.
        Local::NotOurs => return Response::Failure,
        Local::Signed(signature, fingerprint) => (
            Response::SignResponse { signature },
            LogOutcome::Event(Event::Approved),
            fingerprint,
        ),
        Local::Failed(fingerprint) => (
            Response::Failure,
            LogOutcome::Signer(ErrorCode::Internal),
            fingerprint,
        ),
    };
    agent.log.append(&Entry {
        time: agent.clock.now_ms(),
        request_id: None,
        kind: Kind::Sign,
        key_fingerprint: fingerprint,
        key_comment: cert::COMMENT.to_owned(),
        path: Via::SessionCert,
        context: sign_context(&request.data, bindings),
        outcome,
        latency_ms: elapsed_ms(started),
        reason: None,
        route: None,
    });
    response
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

#[cfg(test)]
mod tests;
