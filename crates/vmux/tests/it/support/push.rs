//! A push service on 127.0.0.1: an HTTP receiver that records each request
//! and answers every one with a fixed status. It stands for the ntfy or
//! UnifiedPush server a signer's wake endpoint points at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A connection, in the clear or behind TLS.
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Request line and headers.
    pub head: String,
    /// The body, exactly.
    pub body: Vec<u8>,
}

pub struct Receiver {
    /// `http://127.0.0.1:PORT/vmux-wake-secret`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    arrived: mpsc::Receiver<Request>,
}

impl Receiver {
    /// Listens on 127.0.0.1 and answers every request with `status`.
    pub fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/vmux-wake-secret",
            listener.local_addr().unwrap().port()
        );
        Self::serve(listener, url, move |stream| Some(Box::new(stream)), status)
    }

    /// Listens on 127.0.0.1 behind TLS, as `localhost`, with a certificate
    /// from a CA made in `dir` for this receiver alone; answers every
    /// request with `status`. Returns the CA's PEM file: a device trusts
    /// the receiver only when told to (`SSL_CERT_FILE`).
    pub fn start_tls(status: u16, dir: &Path) -> (Receiver, PathBuf) {
        let (ca, chain, key) = certificates(dir);
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://localhost:{}/vmux-wake-secret",
            listener.local_addr().unwrap().port()
        );
        let tls = move |stream: TcpStream| -> Option<Box<dyn ReadWrite>> {
            let connection = rustls::ServerConnection::new(config.clone()).ok()?;
            let mut tls = rustls::StreamOwned::new(connection, stream);
            // A client that does not trust the certificate ends here.
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).ok()?;
            }
            Some(Box::new(tls))
        };
        (Self::serve(listener, url, tls, status), ca)
    }

    fn serve(
        listener: TcpListener,
        url: String,
        wrap: impl Fn(TcpStream) -> Option<Box<dyn ReadWrite>> + Send + 'static,
        status: u16,
    ) -> Receiver {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, arrived) = mpsc::channel();
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let Some(stream) = wrap(stream) else { continue };
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0u8; len.min(64 * 1024)];
                let _ = reader.read_exact(&mut body);
                let stream = reader.get_mut();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.flush();
                let request = Request { head, body };
                kept.lock().unwrap().push(request.clone());
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        Receiver {
            url,
            requests,
            arrived,
        }
    }

    /// The next request, within `within`.
    pub fn next(&self, within: Duration) -> Request {
        self.arrived
            .recv_timeout(within)
            .expect("no request reached the push receiver")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A P-256 CA and a `localhost` / 127.0.0.1 server certificate it signs,
/// made with the openssl tool in `dir`: (the CA's PEM file, the chain, the
/// key). An end-entity certificate apart from its CA, as webpki requires.
fn certificates(
    dir: &Path,
) -> (
    PathBuf,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=vmux test push CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "1",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    (dir.join("ca.pem"), chain, key)
}
