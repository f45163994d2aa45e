//! The checks a request passes before it reaches the person (protocol.md
//! §9.3). Pure: the time comes in as an argument.

use std::collections::HashMap;

use vmux_proto::envelope::ErrorCode;

/// How long a request window may be: the window requesters use.
pub const MAX_WINDOW_MS: u64 = vmux_proto::envelope::limits::REQUEST_WINDOW_MS;
/// Clock skew tolerated between requester and signer.
pub const MAX_SKEW_MS: u64 = 30_000;
/// Live nonces remembered per device; past this, new requests are refused
/// rather than old entries evicted (eviction would reopen a replay).
pub const REPLAY_CACHE_PER_DEVICE: usize = 4096;

/// A refusal: the code and a message that says what to do.
pub type Refusal = (ErrorCode, String);

/// Checks the request window against the signer's clock.
pub fn window(issued_ms: u64, expires_ms: u64, now_ms: u64) -> Result<(), Refusal> {
    if expires_ms <= issued_ms || expires_ms - issued_ms > MAX_WINDOW_MS {
        return Err((
            ErrorCode::MalformedRequest,
            format!(
                "request window of {} ms is invalid; it must be 1 to {MAX_WINDOW_MS} ms",
                expires_ms.saturating_sub(issued_ms)
            ),
        ));
    }
    if issued_ms > now_ms + MAX_SKEW_MS {
        let ahead = (issued_ms - now_ms) / 1000;
        return Err((
            ErrorCode::RequestExpired,
            format!(
                "request issued {ahead} s in the future by the signer's clock: check the clocks of both devices (clock skew)"
            ),
        ));
    }
    if now_ms > expires_ms {
        let late = (now_ms - expires_ms) / 1000;
        return Err((
            ErrorCode::RequestExpired,
            format!(
                "request expired {late} s before it reached the signer; if it was just made, check the clocks of both devices (clock skew)"
            ),
        ));
    }
    Ok(())
}

/// Nonces seen per device, each kept until its request expires.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: HashMap<[u8; 32], HashMap<Vec<u8>, u64>>,
}

impl ReplayCache {
    /// Records `nonce` from `device` (its pinned key), refusing one seen before.
    pub fn admit(
        &mut self,
        device: [u8; 32],
        nonce: &[u8],
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let nonces = self.seen.entry(device).or_default();
        nonces.retain(|_, &mut expires| expires >= now_ms);
        if nonces.contains_key(nonce) {
            return Err((
                ErrorCode::ReplayedRequest,
                "this request's nonce was already used; it was replayed".into(),
            ));
        }
        if nonces.len() >= REPLAY_CACHE_PER_DEVICE {
            return Err((
                ErrorCode::SignerBusy,
                "too many requests from this device in the last minute; try again shortly".into(),
            ));
        }
        nonces.insert(nonce.to_vec(), expires_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_twenty_seconds_of_skew_and_names_five_minutes() {
        let now = 1_000_000;
        assert!(window(now, now + 60_000, now).is_ok());
        assert!(
            window(now + 20_000, now + 80_000, now).is_ok(),
            "requester 20 s ahead"
        );
        assert!(
            window(now - 20_000, now + 40_000, now).is_ok(),
            "requester 20 s behind"
        );
        let (code, msg) = window(now + 300_000, now + 360_000, now).unwrap_err();
        assert_eq!(code, ErrorCode::RequestExpired);
        assert!(
            msg.contains("clock skew") && msg.contains("300 s in the future"),
            "{msg}"
        );
        let (code, msg) = window(now - 360_000, now - 300_000, now).unwrap_err();
        assert_eq!(code, ErrorCode::RequestExpired);
        assert!(msg.contains("clock skew"), "{msg}");
    }

    #[test]
    fn window_must_be_short_and_forward() {
        assert_eq!(
            window(10, 10, 10).unwrap_err().0,
            ErrorCode::MalformedRequest
        );
        assert_eq!(
            window(10, 5, 10).unwrap_err().0,
            ErrorCode::MalformedRequest
        );
        assert_eq!(
            window(0, 60_001, 0).unwrap_err().0,
            ErrorCode::MalformedRequest
        );
    }

    #[test]
    fn a_nonce_is_refused_twice_until_its_window_passes() {
        let mut cache = ReplayCache::default();
        let dev = [1; 32];
        assert!(cache.admit(dev, b"n1", 100, 0).is_ok());
        assert_eq!(
            cache.admit(dev, b"n1", 100, 50).unwrap_err().0,
            ErrorCode::ReplayedRequest
        );
        assert!(
            cache.admit([2; 32], b"n1", 100, 50).is_ok(),
            "nonces are per device"
        );
        assert!(
            cache.admit(dev, b"n1", 300, 101).is_ok(),
            "entry dropped after expiry"
        );
    }

    #[test]
    fn a_full_cache_refuses_instead_of_forgetting() {
        let mut cache = ReplayCache::default();
        for i in 0..REPLAY_CACHE_PER_DEVICE {
            cache.admit([1; 32], &i.to_le_bytes(), 1_000, 0).unwrap();
        }
        assert_eq!(
            cache.admit([1; 32], b"one more", 1_000, 0).unwrap_err().0,
            ErrorCode::SignerBusy
        );
        assert_eq!(
            cache
                .admit([1; 32], &0usize.to_le_bytes(), 1_000, 0)
                .unwrap_err()
                .0,
            ErrorCode::ReplayedRequest
        );
    }
}
