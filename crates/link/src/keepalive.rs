//! When to ping and when to give up on a silent peer. Pure: the caller
//! passes the time in, so tests can fake it.

use std::time::{Duration, Instant};

/// Silence after which we ping.
pub const PING_AFTER: Duration = Duration::from_secs(5);
/// Silence after which the peer is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);

/// What the session should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until this instant.
    WaitUntil(Instant),
    /// Send `ping` with this sequence number.
    Ping(u64),
    /// Nothing heard for [`DEAD_AFTER`]: close.
    Dead,
}

/// Keepalive state of one session.
#[derive(Debug)]
pub struct Keepalive {
    last_heard: Instant,
    last_ping: Option<Instant>,
    seq: u64,
}

impl Keepalive {
    /// Starts counting silence at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            last_heard: now,
            last_ping: None,
            seq: 0,
        }
    }

    /// Any frame from the peer proves it alive.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.last_ping = None;
    }

    /// Decides what to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        let dead_at = self.last_heard + DEAD_AFTER;
        if now >= dead_at {
            return Action::Dead;
        }
        // Ping once per PING_AFTER of silence, so a lost pong is retried.
        let ping_at = self.last_ping.unwrap_or(self.last_heard) + PING_AFTER;
        if now >= ping_at {
            self.last_ping = Some(now);
            self.seq += 1;
            return Action::Ping(self.seq);
        }
        Action::WaitUntil(ping_at.min(dead_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_after_silence_and_declares_death_within_fifteen_seconds() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(t0);
        assert_eq!(k.poll(t0), Action::WaitUntil(t0 + PING_AFTER));
        assert_eq!(k.poll(t0 + Duration::from_secs(5)), Action::Ping(1));
        assert_eq!(
            k.poll(t0 + Duration::from_secs(6)),
            Action::WaitUntil(t0 + Duration::from_secs(10))
        );
        assert_eq!(k.poll(t0 + Duration::from_secs(10)), Action::Ping(2));
        assert_eq!(k.poll(t0 + Duration::from_secs(15)), Action::Dead);
    }

    #[test]
    fn hearing_the_peer_resets_the_clock() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut k = Keepalive::new(t0);
        assert_eq!(k.poll(at(5)), Action::Ping(1));
        k.heard(at(6));
        assert_eq!(k.poll(at(10)), Action::WaitUntil(at(11)));
        assert_eq!(k.poll(at(11)), Action::Ping(2));
        assert_ne!(k.poll(at(20)), Action::Dead);
        assert_eq!(k.poll(at(21)), Action::Dead);
    }
}
