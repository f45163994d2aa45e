//! One client connection on the agent socket: requests answered in order,
//! each connection in its own task so a slow approval on one never holds
//! up another.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vmux_proto::agent::{
    Extension, ExtensionResponse, FrameDecoder, Request, Response, SignRequest,
};
use vmux_proto::envelope::ErrorCode;
use vmux_proto::envelope::limits::MAX_DATA_TO_SIGN_LEN;
use zeroize::Zeroizing;

use crate::Agent;
use crate::cert::{self, Local};
use crate::context::sign_context;
use crate::control::{CERT_REQUEST, REFRESH, STATUS};
use crate::link::Outcome;
use crate::lock::Refused;
use crate::request_log::Entry;
use crate::session_bind::Bindings;

/// Serves `stream` until the client hangs up or misbehaves.
pub async fn serve(agent: Arc<Agent>, stream: UnixStream) {
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
    let (mut reader, mut writer) = stream.into_split();
    let mut frames = FrameDecoder::new();
    let mut bindings = Bindings::default();
    // May hold a lock passphrase in transit: wiped on drop. 4 KiB holds a
    // whole sign request; larger frames arrive over several reads (the
    // decoder joins them), and 64 idle connections stay cheap.
    let mut buf = Zeroizing::new(vec![0u8; 4 * 1024]);
    loop {
        let n = match reader.read(buf.as_mut_slice()).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut input = buf.get(..n).unwrap_or_default();
        loop {
            let body = match frames.decode(&mut input) {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => {
                    // Over 256 KiB or zero length: the stream can't be
                    // trusted to be in sync any more.
                    tracing::debug!("closing an agent connection: {e}");
                    return;
                }
            };
            let response = handle(&agent, &body, &mut bindings).await;
            let frame = response
                .to_frame()
                .or_else(|_| Response::Failure.to_frame())
                .unwrap_or_default();
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    }
}

async fn handle(agent: &Agent, body: &[u8], bindings: &mut Bindings) -> Response {
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
            // The certificate first: where a server takes either, it is
            // the one that needs no approval.
            let mut identities: Vec<_> = agent.certs.identity().into_iter().collect();
            identities.extend(agent.keys().identities());
            Response::IdentitiesAnswer(identities)
        }
        Request::SignRequest(s) => sign(agent, s, bindings).await,
        Request::Lock { passphrase } => match agent.lock().lock(&passphrase) {
            Ok(()) => Response::Success,
            Err(_) => Response::Failure,
        },
        Request::Unlock { passphrase } => {
            let result = agent.lock().unlock(&passphrase);
            drop(passphrase);
            match result {
                Ok(()) => Response::Success,
                Err(Refused::WrongPassphrase(delay)) => {
                    // Only this connection waits; others carry on.
                    tokio::time::sleep(delay).await;
                    Response::Failure
                }
                Err(_) => Response::Failure,
            }
        }
        Request::Extension(ext) => extension(agent, ext, bindings).await,
        // This agent holds no private keys, ever: every add, remove and
        // smartcard request is refused. Key material in them is wiped on
        // drop by the codec's SecretBytes.
        Request::AddIdentity { .. }
        | Request::AddIdConstrained { .. }
        | Request::RemoveIdentity { .. }
        | Request::RemoveAllIdentities
        | Request::AddSmartcardKey(_)
        | Request::RemoveSmartcardKey(_)
        | Request::AddSmartcardKeyConstrained { .. } => Response::Failure,
    }
}

async fn extension(agent: &Agent, ext: Extension, bindings: &mut Bindings) -> Response {
    match ext {
        Extension::SessionBind(bind) => match bindings.bind(&bind) {
            Ok(()) => Response::Success,
            Err(e) => {
                tracing::debug!("refusing session-bind: {e:?}");
                Response::Failure
            }
        },
        Extension::Query => {
            let mut reply = ExtensionResponse::openssh_query();
            if let ExtensionResponse::Query { extensions } = &mut reply {
                extensions.extend([
                    STATUS.to_owned(),
                    REFRESH.to_owned(),
                    CERT_REQUEST.to_owned(),
                ]);
            }
            Response::ExtensionResponse(reply)
        }
        Extension::Other { name, contents } if contents.is_empty() && name == STATUS => {
            status_response(agent, name)
        }
        Extension::Other { name, contents } if contents.is_empty() && name == REFRESH => {
            if agent.link.refresh().await {
                status_response(agent, name)
            } else {
                Response::Failure
            }
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

fn status_response(agent: &Agent, name: String) -> Response {
    Response::ExtensionResponse(ExtensionResponse::Other {
        name,
        contents: agent.status().to_contents(),
    })
}

async fn sign(agent: &Agent, request: SignRequest, bindings: &Bindings) -> Response {
    // A locked agent signs nothing, not even with its own session key; the
    // request then falls through to the refusal below.
    if !agent.is_locked()
        && let Some(response) = sign_locally(agent, &request, bindings)
    {
        return response;
    }
    let Some(key) = agent.keys().find(&request.key_blob).cloned() else {
        return Response::Failure;
    };
    let started = Instant::now();
    let context = sign_context(&request.data, bindings);
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
    };
    let response = if agent.is_locked() {
        entry.outcome = "locked".to_owned();
        Response::Failure
    } else if request.data.len() > MAX_DATA_TO_SIGN_LEN {
        // More than the link carries; no SSH signature needs it.
        entry.outcome = "tooLarge".to_owned();
        Response::Failure
    } else {
        let (outcome, request_id) = agent
            .link
            .sign(
                &key,
                &request.data,
                request.flags.bits(),
                context,
                agent.sign_timeout,
            )
            .await;
        entry.request_id = request_id;
        entry.outcome = outcome.name().to_owned();
        match outcome {
            Outcome::Signed(signature) => Response::SignResponse { signature },
            Outcome::Refused(code, message) => {
                // The signer's words reach a terminal and the log: no
                // control characters.
                let message = message.map(|m| m.chars().filter(|c| !c.is_control()).collect());
                // A person saying no is the system working; anything else
                // (clock skew, a disabled key, …) is something to fix.
                if code != ErrorCode::UserDenied {
                    tracing::warn!(
                        "the signer refused to sign with \"{}\": {} ({})",
                        key.comment
                            .chars()
                            .filter(|c| !c.is_control())
                            .collect::<String>(),
                        message.as_deref().unwrap_or("it gave no reason"),
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
    agent.log.append(&Entry {
        time_milliseconds: agent.clock.now_ms(),
        request_id: None,
        key_fingerprint: fingerprint,
        key_comment: cert::COMMENT.to_owned(),
        path: "session-cert".to_owned(),
        context: sign_context(&request.data, bindings),
        outcome: outcome.to_owned(),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        message: None,
    });
    Some(response)
}
