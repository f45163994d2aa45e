//! Capped exponential backoff for reconnecting to a signer.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(10);

/// Delays of 250 ms, 500 ms, 1 s … capped at 10 s, each with ±20 % jitter so
/// many agents restarting together don't reconnect in lockstep.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt. `random` is any random u32; taking
    /// it as an argument keeps this deterministic under test.
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let base = FIRST.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        // Map random onto [0.8, 1.2).
        let factor = 0.8 + 0.4 * (f64::from(random) / (f64::from(u32::MAX) + 1.0));
        base.mul_f64(factor)
    }

    /// A connection succeeded: start again from the shortest delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_resets() {
        let mut b = Backoff::default();
        let mid = 1u32 << 31; // factor exactly 1.0
        let delays: Vec<_> = (0..8).map(|_| b.next_delay(mid).as_millis()).collect();
        assert_eq!(&delays[..4], &[250, 500, 1000, 2000]);
        assert!(delays.iter().all(|&d| d <= 10_000));
        assert_eq!(*delays.last().unwrap(), 10_000);
        b.reset();
        assert_eq!(b.next_delay(mid).as_millis(), 250);
        assert!(b.next_delay(0) >= Duration::from_millis(400));
        assert!(b.next_delay(u32::MAX) <= Duration::from_millis(1200));
    }
}
