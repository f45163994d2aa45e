//! Waking a signer that cannot be reached: where the original sent an
//! APNs push, a UnifiedPush / ntfy-style HTTP POST.
//!
//! The signer tells each device where to POST (`deviceTokenUpdate`); the
//! device keeps the latest endpoint per signer in `wake.json` (0600). When
//! a request finds no session with the signer, the device POSTs a short
//! text to the endpoint, at most once per signer per [`MIN_INTERVAL_MS`]
//! (counted across processes: the time is kept in the file), and keeps
//! looking for the signer. The body says which device waits and nothing
//! else: no host, user or key, since the push service reads it.
//!
//! Only `https://` endpoints (TLS 1.3), checked against the system's roots,
//! are used, or `http://` to this machine (a push distributor or test receiver
//! on loopback). Redirects and proxies are not followed: the endpoint is
//! where the POST goes, or nowhere.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::home::{Home, StateFile};
use crate::{Error, Fingerprint, Result};

/// `wake.json`: the signers' wake endpoints ([`MAX_SIGNERS`] of about
/// 1 KiB each); a larger file is not ours.
pub const WAKE_FILE: StateFile = StateFile::new("wake.json", MAX_FILE_LEN as u64);
/// At most one wake per signer in this long.
pub const MIN_INTERVAL_MS: u64 = 30_000;
/// How long one POST may take, connecting included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The most `wake.json` may hold.
const MAX_FILE_LEN: usize = 1024 * 1024;
/// Signers remembered at most (each entry is about 1 KiB).
const MAX_SIGNERS: usize = 64;

/// The body of a wake POST: `<device> is waiting for your signer`, UTF-8.
pub fn message(device_name: &str) -> String {
    format!("{device_name} is waiting for your signer")
}

/// Whether a device may POST to `url`: `https://HOST…`, or `http://` to a
/// loopback address. `Err` says why not, for the person who set it.
pub fn check_endpoint(url: &str) -> std::result::Result<(), String> {
    let refuse = |why: &str| Err(format!("wake endpoint refused: {why}"));
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("it contains spaces or control characters");
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return if host_of(rest).is_empty() {
            refuse("it names no host")
        } else {
            Ok(())
        };
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return refuse("it must start with https:// (or http:// to this machine)");
    };
    let host = host_of(rest);
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        refuse(
            "plain http:// is allowed only to this machine (127.0.0.1, [::1], localhost); use https://",
        )
    }
}

/// The host (without port or user info) of a URL after its `scheme://`.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or_default();
    }
    host_port.split(':').next().unwrap_or_default()
}

/// Where an endpoint sends, for people: its host only. The rest of the URL
/// is a capability (anyone holding it can push) and stays out of logs.
pub fn endpoint_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    host_of(rest)
}

/// What this device knows about waking one signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Where to POST.
    pub endpoint: String,
    /// When the last wake was attempted, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<u64>,
    /// Its result: `HTTP 200`, `HTTP 404`, `timed out after 5 s`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// Whether the last attempt failed.
    #[serde(default)]
    pub last_failed: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct WakeFile {
    /// By the signer's `SHA256:` link-key fingerprint.
    signers: BTreeMap<String, Endpoint>,
}

/// What [`Wakes::wake`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The signer gave no endpoint.
    NoEndpoint,
    /// A wake went out less than [`MIN_INTERVAL_MS`] ago.
    TooSoon,
    /// POSTed: the HTTP status, or why there was none.
    Sent(std::result::Result<u16, String>),
}

/// The wake endpoints of this device's signers, in `wake.json`.
#[derive(Debug, Clone)]
pub struct Wakes {
    path: PathBuf,
    /// Read-modify-write of the file, within this process.
    lock: Arc<Mutex<()>>,
}

impl Wakes {
    /// The endpoints kept in `home`.
    pub fn new(home: &Home) -> Self {
        Self {
            path: WAKE_FILE.path(home),
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn load(&self) -> WakeFile {
        match WAKE_FILE.read_at(&self.path) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{} is corrupt ({e}); wake endpoints are learnt again at the next connection",
                    self.path.display()
                );
                WakeFile::default()
            }),
            Ok(None) => WakeFile::default(),
            Err(e) => {
                tracing::warn!("{e}");
                WakeFile::default()
            }
        }
    }

    fn save(&self, file: &WakeFile) -> Result<()> {
        let json = serde_json::to_vec_pretty(file).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(WAKE_FILE.write_at(&self.path, &json)?)
    }

    /// Records the endpoint `signer` sent; an empty one forgets it. Invalid
    /// endpoints are refused with the reason.
    pub fn set(&self, signer: &Fingerprint, endpoint: &str) -> Result<()> {
        if !endpoint.is_empty() {
            check_endpoint(endpoint).map_err(|why| Error::Corrupt {
                path: self.path.clone(),
                reason: why,
            })?;
        }
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = self.load();
        let key = signer.to_string();
        match file.signers.get(&key) {
            Some(e) if e.endpoint == endpoint => return Ok(()),
            None if endpoint.is_empty() => return Ok(()),
            _ => {}
        }
        if endpoint.is_empty() {
            file.signers.remove(&key);
        } else {
            if file.signers.len() >= MAX_SIGNERS && !file.signers.contains_key(&key) {
                return Ok(());
            }
            file.signers.insert(
                key,
                Endpoint {
                    endpoint: endpoint.to_owned(),
                    last_attempt: None,
                    last_result: None,
                    last_failed: false,
                },
            );
        }
        self.save(&file)
    }

    /// What is known about waking `signer`.
    pub fn get(&self, signer: &Fingerprint) -> Option<Endpoint> {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.load().signers.remove(signer.as_str())
    }

    /// Wakes `signer` for the device `device_name`, unless it gave no
    /// endpoint or was woken less than 30 s ago. The POST runs on a
    /// blocking thread; its result is kept for `vmux status` and logged.
    pub async fn wake(&self, signer: &Fingerprint, device_name: &str, now_ms: u64) -> Attempt {
        let endpoint = {
            let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let mut file = self.load();
            let Some(entry) = file.signers.get_mut(signer.as_str()) else {
                return Attempt::NoEndpoint;
            };
            if entry
                .last_attempt
                .is_some_and(|t| now_ms.saturating_sub(t) < MIN_INTERVAL_MS && t <= now_ms)
            {
                return Attempt::TooSoon;
            }
            // Claimed before sending, so that another request (or process)
            // does not send a second wake meanwhile.
            entry.last_attempt = Some(now_ms);
            entry.last_result = Some("sending".to_owned());
            entry.last_failed = false;
            let endpoint = entry.endpoint.clone();
            if let Err(e) = self.save(&file) {
                tracing::warn!("{e}");
            }
            endpoint
        };
        // Escaped for the log: the signer chose it (checked, but a bidi
        // mark passes).
        let host = vmux_proto::text::escape(endpoint_host(&endpoint)).into_owned();
        let body = message(device_name);
        // Bounded here too: name resolution has no timeout of its own.
        let sent = tokio::time::timeout(
            HTTP_TIMEOUT + Duration::from_secs(1),
            tokio::task::spawn_blocking(move || post(&endpoint, body)),
        )
        .await
        .map_err(|_| format!("no answer within {} s", HTTP_TIMEOUT.as_secs()))
        .and_then(|joined| joined.map_err(|e| format!("the wake task failed: {e}")))
        .and_then(|sent| sent);
        let (result, failed) = match &sent {
            Ok(status) if (200..300).contains(status) => (format!("HTTP {status}"), false),
            Ok(status) => (format!("HTTP {status}"), true),
            Err(why) => (why.clone(), true),
        };
        // It may quote the host.
        let said = vmux_proto::text::escape(&result);
        if failed {
            tracing::warn!("waking the signer {signer} through {host} failed: {said}");
        } else {
            tracing::info!("woke the signer {signer} through {host} ({said})");
        }
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = self.load();
        if let Some(entry) = file.signers.get_mut(signer.as_str()) {
            entry.last_result = Some(result);
            entry.last_failed = failed;
            if let Err(e) = self.save(&file) {
                tracing::warn!("{e}");
            }
        }
        Attempt::Sent(sent)
    }
}

/// One POST of `body` to `endpoint`: the HTTP status, or why there was none.
///
/// HTTP/1.1 by hand, for one request and one status line: an HTTP client
/// crate (ureq) cost ~0.5 MiB of the binary more, for nothing used here.
/// TLS is rustls (ring, TLS 1.3), checked against the system's roots.
fn post(endpoint: &str, body: String) -> std::result::Result<u16, String> {
    check_endpoint(endpoint)?;
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let (tls, rest) = match endpoint.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return Err("not an http(s) URL".to_owned()),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    // Credentials in the URL are not sent anywhere.
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = host_of(rest);
    let port = match authority
        .strip_prefix(host)
        .and_then(|p| p.strip_prefix(':'))
    {
        Some(port) => port.parse::<u16>().map_err(|_| "a bad port".to_owned())?,
        None if tls => 443,
        None => 80,
    };
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let left = |deadline: Instant| {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} s", HTTP_TIMEOUT.as_secs()))
    };
    let addresses: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {name}: {e}"))?
        .collect();
    let mut stream = None;
    let mut why = format!("{name} has no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, left(deadline)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => why = format!("cannot connect to {address}: {e}"),
        }
    }
    let stream = stream.ok_or(why)?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: vmux\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let timed_out = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {} s", HTTP_TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    };
    let head = if tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|e| format!("{name}: {e}"))?;
        let connection =
            rustls::ClientConnection::new(Arc::new(config), server).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(connection, stream);
        tls.write_all(request.as_bytes()).map_err(timed_out)?;
        status_line(&mut tls).map_err(timed_out)?
    } else {
        let mut plain = stream;
        plain.write_all(request.as_bytes()).map_err(timed_out)?;
        status_line(&mut plain).map_err(timed_out)?
    };
    // `HTTP/1.1 404 Not Found`
    head.split(' ')
        .nth(1)
        .filter(|_| head.starts_with("HTTP/1."))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| "the answer was not HTTP".to_owned())
}

/// The first line of an answer, read byte by byte (at most 256).
fn status_line(stream: &mut impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 256 {
        if stream.read(&mut byte)? == 0 || byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        assert!(check_endpoint("https://ntfy.example/vmux-7f3a").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/up").is_ok());
        assert!(check_endpoint("http://[::1]:8080/up").is_ok());
        assert!(check_endpoint("http://localhost/up").is_ok());
        for bad in [
            "http://ntfy.example/up",
            "http://127.0.0.1.evil.example/up",
            "http://localhost.evil.example/",
            "http://user@192.0.2.1/",
            "ftp://127.0.0.1/",
            "https://",
            "https://host/a b",
            "https://host/\u{1b}[2J",
            "",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(
            endpoint_host("https://u@ntfy.example:443/secret"),
            "ntfy.example"
        );
        assert_eq!(endpoint_host("http://[::1]:80/x"), "[::1]");
    }

    #[test]
    fn endpoints_are_kept_per_signer_and_wakes_are_spaced() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let wakes = Wakes::new(&home);
        let phone = Fingerprint::from_string("SHA256:phone".into());
        assert!(wakes.set(&phone, "http://example.com/").is_err());
        // Port 9 on loopback: nobody listens, so the POST fails fast.
        wakes.set(&phone, "http://127.0.0.1:9/up").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let first = rt.block_on(wakes.wake(&phone, "laptop", 1_000_000));
        assert!(matches!(first, Attempt::Sent(Err(_))), "{first:?}");
        let entry = wakes.get(&phone).unwrap();
        assert!(entry.last_failed);
        assert_eq!(entry.last_attempt, Some(1_000_000));
        assert_eq!(
            rt.block_on(wakes.wake(&phone, "laptop", 1_029_999)),
            Attempt::TooSoon
        );
        assert!(matches!(
            rt.block_on(wakes.wake(&phone, "laptop", 1_030_000)),
            Attempt::Sent(_)
        ));
        // HTTPS to where nobody listens fails cleanly too.
        assert!(post("https://127.0.0.1:9/up", "x".into()).is_err());
        let other = Fingerprint::from_string("SHA256:other".into());
        assert_eq!(
            rt.block_on(wakes.wake(&other, "laptop", 0)),
            Attempt::NoEndpoint
        );
        wakes.set(&phone, "").unwrap();
        assert_eq!(wakes.get(&phone), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(WAKE_FILE.path(&home))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(message("laptop"), "laptop is waiting for your signer");
    }

    #[test]
    fn a_file_past_the_bound_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let wakes = Wakes::new(&home);
        let phone = Fingerprint::from_string("SHA256:phone".into());
        let json = r#"{"signers":{"SHA256:phone":{"endpoint":"http://127.0.0.1:9/up"}}}"#;
        let padded = |len: usize| format!("{json}{}", " ".repeat(len - json.len()));
        std::fs::write(WAKE_FILE.path(&home), padded(MAX_FILE_LEN)).unwrap();
        assert!(wakes.get(&phone).is_some());
        std::fs::write(WAKE_FILE.path(&home), padded(MAX_FILE_LEN + 1)).unwrap();
        assert_eq!(wakes.get(&phone), None);
    }
}
