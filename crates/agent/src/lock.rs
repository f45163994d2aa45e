//! `ssh-add -x` / `-X`: locking the agent with a passphrase, as OpenSSH's
//! agent does it.
//!
//! Only a salted hash of the passphrase is kept, never the passphrase, and a
//! wrong unlock passphrase costs a growing delay so it cannot be guessed
//! quickly over the socket.
//!
//! The delay is the agent's, not the connection's: OpenSSH's agent sleeps
//! in its only thread, so guesses queue. Ours serves connections in
//! parallel, so a guesser with a hundred connections would get a hundred
//! guesses per delay. Instead no passphrase is checked before the previous
//! failure's delay is over, whichever connection asks. Time is passed in,
//! so the tests can fake it.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const SALT_LEN: usize = 16;
const DOMAIN: &[u8] = b"vmux agent lock v1";
/// OpenSSH: 0.1 s more per failure, at most 10 s.
const DELAY_STEP: Duration = Duration::from_millis(100);
const MAX_FAILURES: u32 = 100;

/// Why a lock or unlock was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Empty passphrase, or already in the requested state.
    Invalid,
    /// Wrong passphrase: answer only after this delay.
    WrongPassphrase(Duration),
    /// Asked before the last failure's delay was over: not checked; ask
    /// again after this long.
    TooSoon(Duration),
    /// The OS random source failed.
    Random,
}

/// The agent's lock.
#[derive(Debug, Default)]
pub struct Lock {
    /// Salt and hash while locked.
    locked: Option<([u8; SALT_LEN], Zeroizing<[u8; 64]>)>,
    failures: u32,
    /// No passphrase is checked before this (set by a failure).
    not_before: Option<Instant>,
}

impl Lock {
    /// Whether the agent is locked.
    pub fn is_locked(&self) -> bool {
        self.locked.is_some()
    }

    /// Locks with `passphrase`; refused when empty or already locked.
    pub fn lock(&mut self, passphrase: &[u8]) -> Result<(), Refused> {
        if passphrase.is_empty() || self.locked.is_some() {
            return Err(Refused::Invalid);
        }
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| Refused::Random)?;
        self.locked = Some((salt, hash(&salt, passphrase)));
        Ok(())
    }

    /// Unlocks, at `now`, if `passphrase` matches. A wrong one is answered
    /// after a delay that grows with each failure, and until that delay is
    /// over no passphrase is checked at all ([`Refused::TooSoon`]).
    pub fn unlock(&mut self, passphrase: &[u8], now: Instant) -> Result<(), Refused> {
        let Some((salt, expected)) = &self.locked else {
            return Err(Refused::Invalid);
        };
        if passphrase.is_empty() {
            return Err(Refused::Invalid);
        }
        if let Some(wait) = self.not_before.and_then(|t| t.checked_duration_since(now))
            && !wait.is_zero()
        {
            return Err(Refused::TooSoon(wait));
        }
        let given = hash(salt, passphrase);
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
            self.locked = None;
            self.failures = 0;
            self.not_before = None;
            return Ok(());
        }
        self.failures = self.failures.saturating_add(1).min(MAX_FAILURES);
        let delay = DELAY_STEP.saturating_mul(self.failures);
        self.not_before = now.checked_add(delay);
        Err(Refused::WrongPassphrase(delay))
    }
}

fn hash(salt: &[u8; SALT_LEN], passphrase: &[u8]) -> Zeroizing<[u8; 64]> {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update(salt);
    h.update(passphrase);
    Zeroizing::new(h.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn behaves_like_openssh() {
        let t = Instant::now();
        let mut lock = Lock::default();
        assert_eq!(lock.unlock(b"x", t), Err(Refused::Invalid));
        assert_eq!(lock.lock(b""), Err(Refused::Invalid));
        lock.lock(b"secret").unwrap();
        assert!(lock.is_locked());
        assert_eq!(lock.lock(b"other"), Err(Refused::Invalid));
        assert_eq!(
            lock.unlock(b"wrong", t),
            Err(Refused::WrongPassphrase(ms(100)))
        );
        assert_eq!(
            lock.unlock(b"wrong", t + ms(100)),
            Err(Refused::WrongPassphrase(ms(200)))
        );
        lock.unlock(b"secret", t + ms(300)).unwrap();
        assert!(!lock.is_locked());
        lock.lock(b"again").unwrap();
        assert_eq!(
            lock.unlock(b"wrong", t + ms(300)),
            Err(Refused::WrongPassphrase(ms(100)))
        );
    }

    /// Guesses from any number of connections are one queue: none is
    /// checked, not even the right one, until the last failure's delay is
    /// over.
    #[test]
    fn no_guess_is_checked_during_the_delay() {
        let t = Instant::now();
        let mut lock = Lock::default();
        lock.lock(b"secret").unwrap();
        assert_eq!(
            lock.unlock(b"wrong", t),
            Err(Refused::WrongPassphrase(ms(100)))
        );
        assert_eq!(
            lock.unlock(b"wrong", t + ms(40)),
            Err(Refused::TooSoon(ms(60)))
        );
        assert_eq!(
            lock.unlock(b"secret", t + ms(99)),
            Err(Refused::TooSoon(ms(1)))
        );
        assert!(lock.is_locked());
        // The refused-unchecked ones did not count as failures.
        assert_eq!(
            lock.unlock(b"wrong", t + ms(100)),
            Err(Refused::WrongPassphrase(ms(200)))
        );
        assert_eq!(
            lock.unlock(b"secret", t + ms(250)),
            Err(Refused::TooSoon(ms(50)))
        );
        lock.unlock(b"secret", t + ms(300)).unwrap();
        assert!(!lock.is_locked());
    }
}
