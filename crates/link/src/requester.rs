//! What both requesters share, the agent and `vmux ssh`: building sign and
//! certificate requests with their window, and reading the signer's
//! answers. No I/O; the time comes from the clock each requester injects.

use std::sync::Arc;

use vmux_proto::envelope::limits::REQUEST_WINDOW_MS;
use vmux_proto::envelope::{
    CertificateRequest, CertificateResponse, ErrorCode, ErrorReport, Origin, SessionBinding,
    SignContext, SignRequest, SignResponse,
};

use crate::Result;
use crate::clock::Clock;
use crate::device::{Device, new_uuid};

/// Why the signer gave no signature or certificate: its code, and its
/// reason when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code, an unknown one read as `internal` (protocol §11).
    pub code: ErrorCode,
    /// The signer's words, if any.
    pub message: Option<String>,
}

impl Refusal {
    /// A refusal with `code` as the signer sent it (`None`: it sent none).
    pub fn new(code: Option<ErrorCode>, message: Option<String>) -> Self {
        Self {
            code: known(code),
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// The signer's message, else the code's own words.
    pub fn reason(&self) -> String {
        self.message
            .clone()
            .unwrap_or_else(|| self.code.to_string())
    }
}

/// A refusal code, an unknown one read as `internal` (protocol §11).
pub fn known(code: Option<ErrorCode>) -> ErrorCode {
    match code {
        Some(ErrorCode::Unknown) | None => ErrorCode::Internal,
        Some(code) => code,
    }
}

/// One signature to ask for, before it gets an id, a nonce and a window.
#[derive(Debug, Clone)]
pub struct Sign {
    /// The key's algorithm, from its blob.
    pub key_algorithm: String,
    /// The identity to sign with.
    pub public_key_blob: Vec<u8>,
    /// What kind of program asks.
    pub origin: Origin,
    /// The bytes to sign.
    pub data: Vec<u8>,
    /// ssh-agent sign flags.
    pub flags: u32,
    /// What the requester knows about the signature's use.
    pub context: SignContext,
    /// The connection's session bindings, for the signer to check.
    pub bindings: Vec<SessionBinding>,
}

/// This device as a requester: its id and name on every request, and the
/// clock that sets each request's window.
#[derive(Debug, Clone)]
pub struct Requester {
    device_id: String,
    device_name: String,
    clock: Arc<dyn Clock>,
}

impl Requester {
    /// Requests from `device`, timed by `clock`.
    pub fn new(device: &Device, clock: Arc<dyn Clock>) -> Self {
        Self {
            device_id: device.id.clone(),
            device_name: device.wire_name(),
            clock,
        }
    }

    /// The device's name as the signer sees it.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Now, by the injected clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// `(issuedAt, expiresAt)` of a request made now.
    fn window(&self) -> (u64, u64) {
        let now = self.clock.now_ms();
        (now, now.saturating_add(REQUEST_WINDOW_MS))
    }

    /// A sign request with a fresh id and nonce, valid for the window.
    pub fn sign_request(&self, sign: Sign) -> Result<SignRequest> {
        let (request_id, nonce) = (new_uuid()?, crate::pairing::nonce()?);
        let (issued, expires) = self.window();
        Ok(SignRequest {
            request_id,
            key_algorithm: sign.key_algorithm,
            public_key_blob: sign.public_key_blob,
            source_device_id: self.device_id.clone(),
            source_device_name: self.device_name.clone(),
            origin: sign.origin,
            data_to_sign: sign.data,
            nonce: nonce.to_vec(),
            issued_at_milliseconds: issued,
            expires_at_milliseconds: expires,
            flags: sign.flags,
            context: sign.context,
            bindings: sign.bindings,
        })
    }

    /// A certificate request for `public_key_blob`, asking `validity_secs`.
    pub fn certificate_request(
        &self,
        public_key_blob: Vec<u8>,
        validity_secs: u64,
    ) -> Result<CertificateRequest> {
        let (request_id, nonce) = (new_uuid()?, crate::pairing::nonce()?);
        let (issued, expires) = self.window();
        Ok(CertificateRequest {
            request_id,
            public_key_blob,
            source_device_id: self.device_id.clone(),
            source_device_name: self.device_name.clone(),
            requested_validity_seconds: validity_secs,
            nonce: nonce.to_vec(),
            issued_at_milliseconds: issued,
            expires_at_milliseconds: expires,
        })
    }
}

/// The signature in `response`, or why there is none.
pub fn read_sign_response(response: SignResponse) -> std::result::Result<Vec<u8>, Refusal> {
    match (response.approved, response.signature) {
        (true, Some(signature)) => Ok(signature),
        (true, None) => Err(Refusal::new(
            Some(ErrorCode::Internal),
            Some("the signer approved but sent no signature".into()),
        )),
        (false, _) => Err(Refusal::new(response.error_code, response.error_message)),
    }
}

/// The certificate blob in `response` (not yet checked), or why there is
/// none.
pub fn read_certificate_response(
    response: CertificateResponse,
) -> std::result::Result<Vec<u8>, Refusal> {
    match (response.approved, response.certificate_blob) {
        (true, Some(blob)) => Ok(blob),
        (true, None) => Err(Refusal::new(
            Some(ErrorCode::Internal),
            Some("the signer approved but sent no certificate".into()),
        )),
        (false, _) => Err(Refusal::new(response.error_code, response.error_message)),
    }
}

/// An `error` naming a request: the request ends with it.
pub fn read_error(report: ErrorReport) -> Refusal {
    Refusal::new(Some(report.code), Some(report.message))
}

/// The refusal for a request whose answer did not come within the wait.
pub fn timed_out() -> Refusal {
    Refusal::new(Some(ErrorCode::RequestExpired), None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU64, Ordering};

    use vmux_proto::envelope::limits::REQUEST_WAIT;

    use super::*;
    use crate::home::Home;

    #[derive(Debug)]
    struct FakeClock(AtomicU64);

    impl Clock for FakeClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn requester(dir: &std::path::Path, clock: Arc<FakeClock>) -> Requester {
        let home = Home::at(dir.to_owned()).unwrap();
        let device = Device::load_or_create(&home, Some("laptop")).unwrap();
        Requester::new(&device, clock)
    }

    fn sign() -> Sign {
        Sign {
            key_algorithm: "ssh-ed25519".into(),
            public_key_blob: b"key".to_vec(),
            origin: Origin::GenericAgent,
            data: b"data".to_vec(),
            flags: 4,
            context: SignContext::default(),
            bindings: Vec::new(),
        }
    }

    #[test]
    fn requests_take_their_window_from_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock(AtomicU64::new(1_700_000_000_000)));
        let requester = requester(dir.path(), clock.clone());
        let first = requester.sign_request(sign()).unwrap();
        assert_eq!(first.issued_at_milliseconds, 1_700_000_000_000);
        assert_eq!(first.expires_at_milliseconds, 1_700_000_060_000);
        assert_eq!(
            (first.flags, first.data_to_sign.as_slice()),
            (4, &b"data"[..])
        );
        assert_eq!(first.source_device_name, "laptop");

        clock.0.store(1_700_000_005_000, Ordering::Relaxed);
        let cert = requester.certificate_request(b"k".to_vec(), 3600).unwrap();
        assert_eq!(cert.issued_at_milliseconds, 1_700_000_005_000);
        assert_eq!(cert.expires_at_milliseconds, 1_700_000_065_000);
        assert_eq!(cert.source_device_id, first.source_device_id);
        // Fresh per request, whatever the clock says.
        let second = requester.sign_request(sign()).unwrap();
        assert_ne!(second.request_id, first.request_id);
        assert_ne!(second.nonce, first.nonce);
        // The wait outlasts the window, so an answer at its end arrives.
        assert!(REQUEST_WAIT.as_millis() > u128::from(REQUEST_WINDOW_MS));
    }

    #[test]
    fn the_window_saturates_at_the_end_of_time() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock(AtomicU64::new(u64::MAX - 1)));
        let request = requester(dir.path(), clock).sign_request(sign()).unwrap();
        assert_eq!(request.expires_at_milliseconds, u64::MAX);
    }

    #[test]
    fn answers_are_read_one_way() {
        let response =
            |approved, signature: Option<&[u8]>, code, message: Option<&str>| SignResponse {
                request_id: "r".into(),
                approved,
                signature: signature.map(<[u8]>::to_vec),
                error_code: code,
                error_message: message.map(str::to_owned),
            };
        assert_eq!(
            read_sign_response(response(true, Some(b"sig"), None, None)),
            Ok(b"sig".to_vec())
        );
        let refused = read_sign_response(response(
            false,
            None,
            Some(ErrorCode::PolicyDenied),
            Some("not on weekends"),
        ))
        .unwrap_err();
        assert_eq!(refused.code, ErrorCode::PolicyDenied);
        assert_eq!(refused.reason(), "not on weekends");
        // An unknown code, or none, is `internal`; an empty message is none.
        let unknown = read_sign_response(response(false, None, Some(ErrorCode::Unknown), Some("")))
            .unwrap_err();
        assert_eq!((unknown.code, unknown.message), (ErrorCode::Internal, None));
        let empty = read_sign_response(response(true, None, None, None)).unwrap_err();
        assert_eq!(empty.code, ErrorCode::Internal);
        let error = read_error(ErrorReport {
            code: ErrorCode::PairingInvalid,
            message: "removed".into(),
            request_id: Some("r".into()),
        });
        assert_eq!(
            error,
            Refusal::new(Some(ErrorCode::PairingInvalid), Some("removed".into()))
        );
        assert_eq!(timed_out().code, ErrorCode::RequestExpired);
        assert_eq!(timed_out().reason(), ErrorCode::RequestExpired.to_string());
    }
}
