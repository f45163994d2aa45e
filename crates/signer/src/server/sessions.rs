//! Bounds on running sessions, per paired device and in all: each holds a
//! socket, and no device (nor a few) may take every descriptor the signer
//! has, nor crowd out the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use vmux_link::noise::KEY_LEN;

/// Sessions one paired device (one static key) may hold at once. An agent
/// holds one and each `vmux` command one more while it runs.
pub(super) const MAX_SESSIONS_PER_DEVICE: usize = 8;
/// Sessions the signer holds at once, all devices together.
pub(super) const MAX_SESSIONS: usize = 128;

/// The sessions running, by device key.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_device: HashMap<[u8; KEY_LEN], usize>,
}

/// One session's place, given back when dropped.
#[derive(Debug)]
pub(super) struct SessionSlot {
    open: Arc<Mutex<Open>>,
    key: [u8; KEY_LEN],
}

/// Why a session was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// The device holds [`MAX_SESSIONS_PER_DEVICE`].
    Device,
    /// The signer holds [`MAX_SESSIONS`].
    Signer,
}

impl Full {
    /// What the device is told (`signerBusy`).
    pub(super) fn message(self) -> String {
        match self {
            Full::Device => format!(
                "this device already has {MAX_SESSIONS_PER_DEVICE} sessions with the signer, \
                 the most one device may hold; end some, or wait 15 s for lost ones to time out"
            ),
            Full::Signer => format!(
                "the signer already serves {MAX_SESSIONS} sessions, the most it holds at once; \
                 try again shortly"
            ),
        }
    }
}

impl Sessions {
    /// A place for a session of the device with static key `key`.
    pub(super) fn open(&self, key: [u8; KEY_LEN]) -> Result<SessionSlot, Full> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_device.get(&key).copied().unwrap_or(0);
        if mine >= MAX_SESSIONS_PER_DEVICE {
            return Err(Full::Device);
        }
        if open.total >= MAX_SESSIONS {
            return Err(Full::Signer);
        }
        open.total += 1;
        open.by_device.insert(key, mine + 1);
        Ok(SessionSlot {
            open: Arc::clone(&self.open),
            key,
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_device.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_device.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn one_device_is_capped_and_others_still_get_in() {
        let sessions = Sessions::default();
        let mine: Vec<_> = (0..MAX_SESSIONS_PER_DEVICE)
            .map(|_| sessions.open([1; KEY_LEN]).unwrap())
            .collect();
        assert_eq!(sessions.open([1; KEY_LEN]).unwrap_err(), Full::Device);
        assert!(sessions.open([2; KEY_LEN]).is_ok());
        drop(mine);
        assert!(sessions.open([1; KEY_LEN]).is_ok());
        assert!(sessions.open.lock().unwrap().by_device.is_empty());
    }

    #[test]
    fn the_total_is_capped_across_devices() {
        let sessions = Sessions::default();
        let held: Vec<_> = (0..MAX_SESSIONS)
            .map(|i| {
                let mut key = [0; KEY_LEN];
                key[..8].copy_from_slice(&(i as u64).to_le_bytes());
                sessions.open(key).unwrap()
            })
            .collect();
        assert_eq!(sessions.open([0xff; KEY_LEN]).unwrap_err(), Full::Signer);
        drop(held);
        assert!(sessions.open([0xff; KEY_LEN]).is_ok());
    }
}
