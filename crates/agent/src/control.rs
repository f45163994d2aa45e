//! `…@vmux` extensions: how `vmux status` and `vmux refresh` reach the
//! running agent over its own socket, so there is no second control
//! socket to secure. The reply's contents are one SSH string holding JSON.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vmux_proto::agent::{Extension, ExtensionResponse, Request, Response, frame_len};
use vmux_proto::text::escape;

use crate::{Error, Result};

/// Returns the agent's [`Status`].
pub const STATUS: &str = "status@vmux";
/// Fetches the key list from the signer now, then returns the [`Status`].
pub const REFRESH: &str = "refresh@vmux";
/// Asks the signer for a new session certificate now, waits for the
/// answer, then returns the [`Status`].
pub const CERT_REQUEST: &str = "cert-request@vmux";
/// How long a control command waits for the agent.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);
/// A certificate waits for a person at the signer: up to its 60 s window.
const CERT_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// What the menu showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The name of the signer in use, while a session is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_to: Option<String>,
    /// The other signers with a session up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_connected: Vec<String>,
    /// The CA keys the signers advertised in their key lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorities: Vec<StatusAuthority>,
    /// How each signer can be woken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake: Vec<StatusWake>,
    /// The upstream agent, with `--upstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<StatusUpstream>,
    /// The session certificate line.
    pub certificate: String,
    /// The error code of the last certificate request, if it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_refused: Option<String>,
    /// The agent is locked (`ssh-add -x`).
    #[serde(default)]
    pub locked: bool,
    /// The keys came from the cache, not from the signer in this run.
    #[serde(default)]
    pub from_cache: bool,
    /// The keys offered.
    pub keys: Vec<StatusKey>,
    /// State the agent could not write to its directory: what, where, why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_saved: Vec<String>,
    /// Why the signer last refused this device, or could not be reached,
    /// until a request works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<StatusRefusal>,
}

/// The last refusal in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRefusal {
    /// When, ms since the epoch.
    pub at_milliseconds: u64,
    /// In words, e.g. "signer refused: device removed on the signer".
    pub reason: String,
    /// What to do about it.
    pub next_step: String,
    /// The signer's own words, when it gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_message: Option<String>,
    /// The signer's code, e.g. `pairingInvalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One key in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusKey {
    /// Comment as set on the signer.
    pub comment: String,
    /// `SHA256:` fingerprint.
    pub fingerprint: String,
    /// SSH algorithm.
    pub algorithm: String,
    /// Where it is held: a signer's name, or `upstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A signer's CA, from its key list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusAuthority {
    /// The signer's name.
    pub signer: String,
    /// `SHA256:` fingerprint of the CA key.
    pub fingerprint: String,
    /// Its SSH algorithm.
    pub algorithm: String,
}

/// A signer's wake endpoint and how the last wake went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusWake {
    /// The signer's name.
    pub signer: String,
    /// The endpoint's host (the rest of the URL is a secret).
    pub host: String,
    /// When the last wake was attempted, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<u64>,
    /// Its result, e.g. `HTTP 404`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// Whether it failed.
    #[serde(default)]
    pub last_failed: bool,
}

/// The upstream agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpstream {
    /// Its socket.
    pub path: String,
    /// Whether add, remove and lock reach it.
    pub writable: bool,
    /// Whether it answered the last listing.
    pub answering: bool,
}

impl Status {
    /// The lines `vmux status` prints. Names come from peers (the signer's,
    /// key comments) and from the system (paths, errors): escaped.
    pub fn lines(&self) -> Vec<String> {
        let esc = |s: &str| vmux_proto::text::escape(s).into_owned();
        let mut lines = vec![
            match (&self.connected_to, self.also_connected.as_slice()) {
                (Some(name), []) => format!("Connected to {}", esc(name)),
                (Some(name), others) => format!(
                    "Connected to {} (signer in use); also to {}",
                    esc(name),
                    others.iter().map(|o| esc(o)).collect::<Vec<_>>().join(", ")
                ),
                (None, _) => "Disconnected".to_owned(),
            },
            escape(&self.certificate).into_owned(),
        ];
        if let Some(code) = &self.certificate_refused {
            lines.push(format!(
                "Last certificate request refused: {}",
                escape(code)
            ));
        }
        if self.locked {
            lines.push("Agent locked (ssh-add -X to unlock)".to_owned());
        }
        if self.keys.is_empty() {
            lines.push("No keys".to_owned());
        } else if self.from_cache {
            lines.push("Keys (cached):".to_owned());
        } else {
            lines.push("Keys:".to_owned());
        }
        for k in &self.keys {
            let from = k.from.as_deref().map(|f| format!("  [{}]", esc(f)));
            lines.push(format!(
                "  {}  {}  ({}){}",
                escape(&k.comment),
                escape(&k.fingerprint),
                escape(&k.algorithm),
                from.unwrap_or_default()
            ));
        }
        for ca in &self.authorities {
            lines.push(format!(
                "CA: {}  ({}) on {}",
                esc(&ca.fingerprint),
                esc(&ca.algorithm),
                esc(&ca.signer)
            ));
        }
        if self.wake.is_empty() {
            lines.push(
                "Wake: no endpoint (the signer sets one with `vmux signer --wake-url URL`)"
                    .to_owned(),
            );
        }
        for w in &self.wake {
            let (signer, host) = (esc(&w.signer), esc(&w.host));
            let when = w.last_attempt.map(vmux_link::clock::format_utc);
            lines.push(match (when, &w.last_result) {
                (Some(when), Some(result)) if w.last_failed => format!(
                    "Wake: last attempt failed, {} at {when} ({signer} via {host})",
                    esc(result)
                ),
                (Some(when), Some(result)) => format!(
                    "Wake: last sent at {when}, {} ({signer} via {host})",
                    esc(result)
                ),
                _ => format!("Wake: ready, not used yet ({signer} via {host})"),
            });
        }
        if let Some(up) = &self.upstream {
            lines.push(format!(
                "Upstream agent: {} ({}{})",
                esc(&up.path),
                if up.writable { "writable" } else { "read-only" },
                if up.answering { "" } else { ", not answering" }
            ));
        }
        for what in &self.not_saved {
            lines.push(format!("Not saved, kept in memory: {}", escape(what)));
        }
        if let Some(r) = &self.last_refusal {
            lines.push(format!(
                "Last refusal at {}: {}",
                vmux_link::clock::format_utc(r.at_milliseconds),
                esc(&r.reason)
            ));
            lines.push(format!("  Next: {}", esc(&r.next_step)));
            if let (Some(message), Some(code)) = (&r.signer_message, &r.code) {
                lines.push(format!(
                    "  The signer said: {} ({})",
                    esc(message),
                    esc(code)
                ));
            }
        }
        lines
    }

    /// Encodes the reply contents: one SSH string of JSON.
    pub fn to_contents(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len().saturating_add(4));
        out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }

    pub fn from_contents(contents: &[u8]) -> Option<Self> {
        let (len, json) = contents.split_at_checked(4)?;
        let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
        if len != json.len() {
            return None;
        }
        serde_json::from_slice(json).ok()
    }
}

/// Sends the control extension `name` to the agent at `path` and returns
/// its status.
pub async fn call(path: &Path, name: &str) -> Result<Status> {
    let err = |why: String| Error::Control {
        path: path.to_owned(),
        why,
    };
    match exchange(path, name).await? {
        Response::ExtensionResponse(ExtensionResponse::Other { name: n, contents })
            if n == name =>
        {
            Status::from_contents(&contents)
                .ok_or_else(|| err("its answer did not parse; is it the same vmux version?".into()))
        }
        Response::Failure | Response::ExtensionFailure
            if name == REFRESH || name == CERT_REQUEST =>
        {
            // The refusal carries no reason; the status tells it.
            let locked = matches!(
                exchange(path, STATUS).await,
                Ok(Response::ExtensionResponse(ExtensionResponse::Other { contents, .. }))
                    if Status::from_contents(&contents).is_some_and(|s| s.locked)
            );
            Err(err(if locked && name == CERT_REQUEST {
                "the agent is locked; unlock it (ssh-add -X), then try again".into()
            } else {
                "it could not reach its signer; make sure `vmux signer` is running and reachable, then try again"
                    .into()
            }))
        }
        _ => Err(err(format!(
            "it does not answer {name}: it is not a vmux agent, or it is one reached through \
             `ssh -A`, which answers no control requests (run this where the agent runs); \
             check SSH_AUTH_SOCK or give --socket"
        ))),
    }
}

/// One request for the extension `name`, and the agent's response.
async fn exchange(path: &Path, name: &str) -> Result<Response> {
    let err = |why: String| Error::Control {
        path: path.to_owned(),
        why,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.map_err(|e| {
            err(format!(
                "cannot connect ({e}); is `vmux agent` running? Start it, or point SSH_AUTH_SOCK or --socket at it"
            ))
        })?;
        let request = Request::Extension(Extension::Other {
            name: name.to_owned(),
            contents: Vec::new(),
        })
        .to_frame()
        .map_err(|e| err(e.to_string()))?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut header = [0u8; 4];
        stream
            .read_exact(&mut header)
            .await
            .map_err(|_| err("it closed the connection without answering".into()))?;
        let len = frame_len(header).map_err(|e| err(e.to_string()))?;
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| err(e.to_string()))?;
        Response::decode(&body).map_err(|e| err(e.to_string()))
    };
    let bound = if name == CERT_REQUEST {
        CERT_REQUEST_TIMEOUT
    } else {
        CONTROL_TIMEOUT
    };
    tokio::time::timeout(bound, exchange)
        .await
        .map_err(|_| err(format!("no answer within {} s", bound.as_secs())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_escape_what_peers_named() {
        let status = Status {
            connected_to: Some("phone\u{1b}[2J".into()),
            certificate: "No session certificate".into(),
            certificate_refused: Some("userDenied\n".into()),
            locked: false,
            from_cache: false,
            keys: vec![StatusKey {
                comment: "work\u{202e}txt.exe".into(),
                fingerprint: "SHA256:x".into(),
                algorithm: "ssh-ed25519".into(),
                from: Some("tab\u{1b}let".into()),
            }],
            not_saved: vec!["the key cache at /tmp/a\rb".into()],
            last_refusal: Some(StatusRefusal {
                at_milliseconds: 0,
                reason: "signer refused: device removed on the signer".into(),
                next_step: "pair again".into(),
                signer_message: Some("gone\u{1b}".into()),
                code: Some("pairingInvalid".into()),
            }),
            also_connected: vec!["tab\u{1b}let".into()],
            authorities: vec![StatusAuthority {
                signer: "phone\r".into(),
                fingerprint: "SHA256:c\u{1b}a".into(),
                algorithm: "ssh-ed25519".into(),
            }],
            wake: vec![StatusWake {
                signer: "phone".into(),
                host: "ntfy\u{1b}.example".into(),
                last_attempt: Some(0),
                last_result: Some("HTTP 404\r".into()),
                last_failed: true,
            }],
            upstream: Some(StatusUpstream {
                path: "/tmp/up\u{1b}.sock".into(),
                writable: false,
                answering: false,
            }),
        };
        let lines = status.lines().join("\n");
        assert!(
            !lines.contains(['\u{1b}', '\u{202e}', '\r'])
                && lines.contains("Connected to phone\\e[2J (signer in use); also to tab\\e")
                && lines.contains("[tab\\elet]")
                && lines.contains("CA: SHA256:c\\ea  (ssh-ed25519) on phone\\r")
                && lines
                    .contains("Wake: last attempt failed, HTTP 404\\r at 1970-01-01 00:00:00 UTC")
                && lines.contains("Upstream agent: /tmp/up\\e.sock (read-only, not answering)")
                && lines.contains("work\\u{202e}txt.exe")
                && lines.contains("userDenied\\n")
                && lines.contains(
                    "Last refusal at 1970-01-01 00:00:00 UTC: signer refused: device removed on the signer"
                )
                && lines.contains("  The signer said: gone\\e (pairingInvalid)")
                && lines.contains("/tmp/a\\rb"),
            "{lines}"
        );
    }
}
