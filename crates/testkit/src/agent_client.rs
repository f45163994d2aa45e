//! A blocking agent-protocol client on one Unix-socket connection, and the
//! requests the bench and the load test send. Used by the agent bench and
//! the tests (load, bounds, destination, signer).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use vmux_proto::agent::{Identity, Request, Response, SignFlags, SignRequest, frame_len};

/// The comment the agent gives its session certificate.
pub const CERT_COMMENT: &str = "vmux-session-cert";

/// One connection to an agent.
pub struct Client {
    stream: UnixStream,
    /// The last answer's body.
    pub body: Vec<u8>,
}

impl Client {
    pub fn connect(sock: &Path) -> std::io::Result<Client> {
        Ok(Client {
            stream: UnixStream::connect(sock)?,
            body: Vec::with_capacity(64 * 1024),
        })
    }

    /// Writes `frame` and reads the whole answer's body into `self.body`;
    /// this is the part a latency sample times.
    pub fn round_trip(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(frame)?;
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header)?;
        let len = frame_len(header)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        self.body.resize(len, 0);
        self.stream.read_exact(&mut self.body)
    }

    /// The last answer, decoded.
    pub fn response(&self) -> Response {
        Response::decode(&self.body).unwrap()
    }

    pub fn call(&mut self, request: &Request) -> Response {
        self.round_trip(&request.to_frame().unwrap()).unwrap();
        self.response()
    }

    pub fn identities(&mut self) -> Vec<Identity> {
        match self.call(&Request::RequestIdentities) {
            Response::IdentitiesAnswer(ids) => ids,
            other => panic!("list answered {other:?}"),
        }
    }
}

pub fn list_frame() -> Vec<u8> {
    Request::RequestIdentities.to_frame().unwrap()
}

/// A sign request for `key_blob` over what ssh signs for a login as user
/// "bench" with `login_key_blob` (the same bytes whichever agent signs).
pub fn sign_frame(key_blob: &[u8], login_key_blob: &[u8]) -> Vec<u8> {
    Request::SignRequest(SignRequest {
        key_blob: key_blob.to_vec(),
        data: userauth_blob(login_key_blob),
        flags: SignFlags::NONE,
    })
    .to_frame()
    .unwrap()
}

/// Whether `response` is an answer to a list with at least `want` keys.
pub fn is_list(response: &Response, want: usize) -> bool {
    matches!(response, Response::IdentitiesAnswer(ids) if ids.len() >= want)
}

/// Whether `response` carries an ECDSA P-256 signature blob.
pub fn is_p256_signature(response: &Response) -> bool {
    const NAME: &[u8] = b"ecdsa-sha2-nistp256";
    match response {
        Response::SignResponse { signature } => {
            signature.len() > 4 + NAME.len() + 64 && signature.get(4..4 + NAME.len()) == Some(NAME)
        }
        _ => false,
    }
}

/// An SSH wire string: its length, then its bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s);
}

/// What ssh asks an agent to sign for a public-key login (RFC 4252 §7):
/// a 32-byte session id, user, service, method, algorithm and the
/// 104-byte P-256 key blob; 211 bytes for user "bench".
pub fn userauth_blob(key_blob: &[u8]) -> Vec<u8> {
    userauth(&[0x5a; 32], "bench", "ecdsa-sha2-nistp256", key_blob)
}

/// What ssh signs to log in as `user` with `key_blob` (`algorithm`) in
/// session `session_id`.
pub fn userauth(session_id: &[u8], user: &str, algorithm: &str, key_blob: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    put_string(&mut data, session_id);
    data.push(50);
    put_string(&mut data, user.as_bytes());
    put_string(&mut data, b"ssh-connection");
    put_string(&mut data, b"publickey");
    data.push(1);
    put_string(&mut data, algorithm.as_bytes());
    put_string(&mut data, key_blob);
    data
}

/// Polls the agent at `sock` until its identities satisfy `done`.
pub fn wait_identities(
    sock: &Path,
    what: &str,
    within: Duration,
    done: impl Fn(&[Identity]) -> bool,
) -> Vec<Identity> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut client) = Client::connect(sock) {
            let ids = client.identities();
            if done(&ids) {
                return ids;
            }
        }
        assert!(Instant::now() < deadline, "the agent never listed {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
