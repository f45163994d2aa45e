//! The `flags` word of a sign request.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

/// Flags of `SSH_AGENTC_SIGN_REQUEST`.
///
/// Only the RSA hash selectors are defined; unknown bits are kept as sent,
/// so a request re-encodes exactly and the agent can refuse what it does not
/// understand.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignFlags(u32);

impl SignFlags {
    /// No flags: for RSA keys this means the legacy `ssh-rsa` (SHA-1) signature.
    pub const NONE: Self = Self(0);
    /// `SSH_AGENT_RSA_SHA2_256`: sign RSA as `rsa-sha2-256`.
    pub const RSA_SHA2_256: Self = Self(2);
    /// `SSH_AGENT_RSA_SHA2_512`: sign RSA as `rsa-sha2-512`.
    pub const RSA_SHA2_512: Self = Self(4);
    /// Every bit this codec gives a meaning to.
    pub const KNOWN: Self = Self(2 | 4);

    /// Flags from their wire value, unknown bits included.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The wire value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Bits set that this codec does not know.
    pub const fn unknown(self) -> u32 {
        self.0 & !Self::KNOWN.0
    }
}

impl BitOr for SignFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for SignFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl From<u32> for SignFlags {
    fn from(bits: u32) -> Self {
        Self(bits)
    }
}

impl From<SignFlags> for u32 {
    fn from(flags: SignFlags) -> Self {
        flags.0
    }
}

impl fmt::Debug for SignFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_set();
        if self.contains(Self::RSA_SHA2_256) {
            list.entry(&format_args!("RSA_SHA2_256"));
        }
        if self.contains(Self::RSA_SHA2_512) {
            list.entry(&format_args!("RSA_SHA2_512"));
        }
        if self.unknown() != 0 {
            list.entry(&format_args!("{:#x}", self.unknown()));
        }
        list.finish()
    }
}
