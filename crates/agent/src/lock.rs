//! `ssh-add -x` / `-X`: locking the agent with a passphrase, as OpenSSH's
//! agent does it.
//!
//! Only a salted hash of the passphrase is kept, never the passphrase, and a
//! wrong unlock passphrase costs a growing delay so it cannot be guessed
//! quickly over the socket.

use std::time::Duration;

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
    /// The OS random source failed.
    Random,
}

/// The agent's lock.
#[derive(Debug, Default)]
pub struct Lock {
    /// Salt and hash while locked.
    locked: Option<([u8; SALT_LEN], Zeroizing<[u8; 64]>)>,
    failures: u32,
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

    /// Unlocks if `passphrase` matches; a wrong one is answered after a
    /// delay that grows with each failure.
    pub fn unlock(&mut self, passphrase: &[u8]) -> Result<(), Refused> {
        let Some((salt, expected)) = &self.locked else {
            return Err(Refused::Invalid);
        };
        if passphrase.is_empty() {
            return Err(Refused::Invalid);
        }
        let given = hash(salt, passphrase);
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
            self.locked = None;
            self.failures = 0;
            return Ok(());
        }
        self.failures = self.failures.saturating_add(1).min(MAX_FAILURES);
        Err(Refused::WrongPassphrase(
            DELAY_STEP.saturating_mul(self.failures),
        ))
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

    #[test]
    fn behaves_like_openssh() {
        let mut lock = Lock::default();
        assert_eq!(lock.unlock(b"x"), Err(Refused::Invalid));
        assert_eq!(lock.lock(b""), Err(Refused::Invalid));
        lock.lock(b"secret").unwrap();
        assert!(lock.is_locked());
        assert_eq!(lock.lock(b"other"), Err(Refused::Invalid));
        assert_eq!(
            lock.unlock(b"wrong"),
            Err(Refused::WrongPassphrase(Duration::from_millis(100)))
        );
        assert_eq!(
            lock.unlock(b"wrong"),
            Err(Refused::WrongPassphrase(Duration::from_millis(200)))
        );
        lock.unlock(b"secret").unwrap();
        assert!(!lock.is_locked());
        lock.lock(b"again").unwrap();
        assert_eq!(
            lock.unlock(b"wrong"),
            Err(Refused::WrongPassphrase(Duration::from_millis(100)))
        );
    }
}
