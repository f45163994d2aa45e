//! What the CA is willing to sign: `ca.json` in the signer's state dir,
//! set by the person with `vmux ca policy`. A requester chooses none of it:
//! it asks for a validity and gets at most the policy's.

use std::net::IpAddr;

use vmux_state::{Home, StateFile};

use crate::{Error, Result};

/// The CA policy in the state dir: a few rules and lists, each capped
/// ([`MAX_SOURCE_ADDRESSES`] and the like).
pub const POLICY_FILE: StateFile = StateFile::new("ca.json", 1 << 20);
/// Default and ceiling for a certificate's lifetime: 8 hours.
pub const DEFAULT_MAX_VALIDITY: u64 = 8 * 60 * 60;
/// No policy may allow more than this (one week): a session certificate
/// that outlives a week is a standing credential, not a session.
pub const MAX_VALIDITY_CEILING: u64 = 7 * 24 * 60 * 60;
/// Certificates start this long before `now`, for clock skew between the
/// signer and the servers.
pub const BACKDATE_SECS: u64 = 5 * 60;

/// The extensions a certificate may carry (OpenSSH's `permit-*`).
pub const KNOWN_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];
/// An ordinary interactive login. X11 forwarding and `~/.ssh/rc` are only
/// granted when the person asks for them.
pub const DEFAULT_EXTENSIONS: [&str; 3] = [
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
];
/// Most networks in `source-address`; a longer list is a typo, not a policy.
pub const MAX_SOURCE_ADDRESSES: usize = 32;

/// The CA's rules.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Longest validity granted, seconds; longer requests are shortened.
    pub max_validity_secs: u64,
    /// Login names written into every certificate.
    pub principals: Vec<String>,
    /// Whether the signer offers certificates at all. Not an auto-approve:
    /// each certificate is still approved on the sheet.
    pub auto_issue: bool,
    /// Extensions written into every certificate (a policy file from before
    /// they could be chosen gets the defaults).
    #[serde(default = "default_extensions")]
    pub extensions: Vec<String>,
    /// The `source-address` critical option: CIDR networks the certificate
    /// may be used from, enforced by sshd. Empty: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_addresses: Vec<String>,
}

fn default_extensions() -> Vec<String> {
    DEFAULT_EXTENSIONS.map(str::to_owned).to_vec()
}

/// What the CA will sign for one request: decided by the policy before
/// the sheet is shown, shown on it, then signed exactly as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// What sshd logs as the certificate's ID: `vmux:<device>:<device id>`.
    pub key_id: String,
    /// The (pinned) name of the device it is for.
    pub device: String,
    /// Login names it is valid for.
    pub principals: Vec<String>,
    /// The signer's time when it was decided, Unix seconds.
    pub now: u64,
    /// Valid from (backdated by [`BACKDATE_SECS`]), Unix seconds.
    pub valid_after: u64,
    /// Valid until, Unix seconds.
    pub valid_before: u64,
    /// The validity the requester asked for, seconds.
    pub requested_secs: u64,
    /// `permit-*` extensions, sorted.
    pub extensions: Vec<String>,
    /// The `source-address` critical option's networks; empty for none.
    pub source_addresses: Vec<String>,
}

impl Grant {
    /// Seconds from `now` to the end of validity.
    pub fn validity_secs(&self) -> u64 {
        self.valid_before.saturating_sub(self.now)
    }

    /// Whether the policy gave less than was asked for.
    pub fn shortened(&self) -> bool {
        self.validity_secs() < self.requested_secs
    }

    /// The critical options as (name, value), in the certificate's order.
    pub fn critical_options(&self) -> Vec<(&'static str, String)> {
        if self.source_addresses.is_empty() {
            Vec::new()
        } else {
            vec![("source-address", self.source_addresses.join(","))]
        }
    }
}

impl Policy {
    /// 8 hours, the signer user's login name, certificates offered, the
    /// default extensions.
    pub fn default_for_this_user() -> Self {
        Self {
            max_validity_secs: DEFAULT_MAX_VALIDITY,
            principals: login_name().into_iter().collect(),
            auto_issue: true,
            extensions: default_extensions(),
            source_addresses: Vec::new(),
        }
    }

    /// Reads the policy in `home`, saving the defaults on first use.
    pub fn load(home: &Home) -> Result<Self> {
        let path = POLICY_FILE.path(home);
        match POLICY_FILE.read(home)? {
            Some(json) => {
                let policy: Policy =
                    serde_json::from_slice(&json).map_err(|e| damaged(&path, e))?;
                policy.validate().map_err(|e| damaged(&path, e))?;
                Ok(policy)
            }
            None => {
                let policy = Self::default_for_this_user();
                policy.save(home)?;
                Ok(policy)
            }
        }
    }

    /// Validates and saves the policy (atomically, 0600).
    pub fn save(&self, home: &Home) -> Result<()> {
        self.validate()?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::other(format!("cannot encode the CA policy: {e}")))?;
        POLICY_FILE.write(home, &json)?;
        Ok(())
    }

    /// Checks the rules make sense before they are saved or used.
    pub fn validate(&self) -> Result<()> {
        if self.max_validity_secs < 60 {
            return Err(Error::other(
                "the max validity must be at least 1 minute (e.g. --max-validity 30m)",
            ));
        }
        if self.max_validity_secs > MAX_VALIDITY_CEILING {
            return Err(Error::other(
                "the max validity can be at most 7 days (e.g. --max-validity 8h)",
            ));
        }
        for p in &self.principals {
            if p.is_empty()
                || p.chars()
                    .any(|c| c.is_whitespace() || c == ',' || c.is_control())
            {
                return Err(Error::other(format!(
                    "\"{}\" is not a valid principal: use login names without spaces or commas",
                    p.escape_debug()
                )));
            }
        }
        for e in &self.extensions {
            if !KNOWN_EXTENSIONS.contains(&e.as_str()) {
                return Err(Error::other(format!(
                    "\"{}\" is not an extension vmux grants; choose from {}",
                    e.escape_debug(),
                    KNOWN_EXTENSIONS.join(", ")
                )));
            }
        }
        if self.source_addresses.len() > MAX_SOURCE_ADDRESSES {
            return Err(Error::other(format!(
                "at most {MAX_SOURCE_ADDRESSES} networks in --source-address"
            )));
        }
        for cidr in &self.source_addresses {
            if canonical_cidr(cidr)?.as_str() != cidr {
                return Err(Error::other(format!(
                    "write the network \"{cidr}\" as {}",
                    canonical_cidr(cidr)?
                )));
            }
        }
        Ok(())
    }

    /// What the CA grants a device asking for `requested` seconds at `now`
    /// (Unix seconds), or why it grants nothing. Checked before the person
    /// is asked; the answer is what the sheet shows and what is signed.
    pub fn grant(&self, device: &str, device_id: &str, requested: u64, now: u64) -> Result<Grant> {
        if !self.auto_issue {
            return Err(Error::PolicyDenied(
                "this signer does not issue certificates (`vmux ca policy --auto-issue on` to allow)"
                    .into(),
            ));
        }
        if self.principals.is_empty() {
            return Err(Error::PolicyDenied(
                "the CA policy lists no principals (`vmux ca policy --principals LOGIN`)".into(),
            ));
        }
        if requested == 0 {
            return Err(Error::PolicyDenied(
                "a certificate was requested with a validity of 0 seconds; ask for a positive duration"
                    .into(),
            ));
        }
        let validity = requested.min(self.max_validity_secs);
        let valid_before = now.checked_add(validity).ok_or_else(|| {
            Error::other("the signer's clock is out of range; check its date and time")
        })?;
        let mut extensions = self.extensions.clone();
        extensions.sort();
        extensions.dedup();
        Ok(Grant {
            key_id: key_id(device, device_id),
            device: device.to_owned(),
            principals: self.principals.clone(),
            now,
            valid_after: now.saturating_sub(BACKDATE_SECS),
            valid_before,
            requested_secs: requested,
            extensions,
            source_addresses: self.source_addresses.clone(),
        })
    }
}

/// `vmux:<device>:<device id>`: what sshd logs as the certificate's ID, and
/// what `vmux ca revoke DEVICE` revokes. The device id keeps a new device
/// that takes a lost one's name from inheriting its revocation.
pub fn key_id(device: &str, device_id: &str) -> String {
    format!("vmux:{device}:{device_id}")
}

/// Whether `key_id` is one [`key_id`] made for `device_id`, under any name:
/// `vmux peers rename` changes the name in later key IDs, never the device
/// id, so revocation goes by the id.
pub fn key_id_is_of(key_id: &str, device_id: &str) -> bool {
    key_id
        .strip_prefix("vmux:")
        .and_then(|rest| rest.strip_suffix(device_id))
        .is_some_and(|name| name.ends_with(':'))
}

/// `ADDR/BITS` with the address as the standard library prints it, for a
/// network OpenSSH accepts in `source-address`: a literal IPv4 or IPv6
/// address, a prefix length that fits it, and no host bits set. A bare
/// address is a single host (`/32` or `/128`).
pub fn canonical_cidr(text: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::other(format!(
            "\"{}\" is not a network for --source-address ({why}); write e.g. 192.168.1.0/24 or 2001:db8::/32",
            text.escape_debug()
        ))
    };
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
    let width: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => width,
        Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) && b.len() <= 3 => {
            b.parse().map_err(|_| bad("bad prefix length"))?
        }
        Some(_) => return Err(bad("bad prefix length")),
    };
    if bits > width {
        return Err(bad("prefix longer than the address"));
    }
    let host_bits = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) & low_bits(32 - bits),
        IpAddr::V6(a) => u128::from(a) & low_bits(128 - bits),
    };
    if host_bits != 0 {
        return Err(bad("host bits set after the prefix"));
    }
    Ok(format!("{addr}/{bits}"))
}

fn low_bits(n: u32) -> u128 {
    match n {
        0 => 0,
        128.. => u128::MAX,
        n => (1u128 << n) - 1,
    }
}

fn damaged(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::other(format!(
        "{} is damaged ({e}); move it aside (or delete it) to get the defaults back, then set what you need with `vmux ca policy`",
        path.display()
    ))
}

/// The signer user's login name: `$USER`, else `id -un`.
fn login_name() -> Option<String> {
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return Some(user);
    }
    let out = std::process::Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn networks_are_checked_as_openssh_does_and_written_one_way() {
        for (given, canonical) in [
            ("10.9.9.9/32", "10.9.9.9/32"),
            ("10.9.9.9", "10.9.9.9/32"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("2001:DB8::/32", "2001:db8::/32"),
        ] {
            assert_eq!(canonical_cidr(given).unwrap(), canonical, "{given}");
        }
        for bad in [
            "",
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "host.example",
            "10.0.0.0/8,10.1.0.0/16",
            "*",
            "10.0.0.0/ 8",
            "fe80::1%eth0",
        ] {
            assert!(canonical_cidr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_policy_file_from_before_extensions_gets_the_defaults() {
        let old = r#"{"maxValiditySecs":3600,"principals":["alice"],"autoIssue":true}"#;
        let policy: Policy = serde_json::from_str(old).unwrap();
        assert_eq!(policy.extensions, DEFAULT_EXTENSIONS.map(str::to_owned));
        assert!(policy.source_addresses.is_empty());
        policy.validate().unwrap();
    }

    #[test]
    fn a_grant_is_at_most_the_policy() {
        let policy = Policy {
            max_validity_secs: 3600,
            principals: vec!["alice".into()],
            auto_issue: true,
            extensions: vec!["permit-pty".into()],
            source_addresses: vec!["10.9.9.9/32".into()],
        };
        let grant = policy.grant("laptop", "id-1", 86_400, 1_000_000).unwrap();
        assert_eq!(grant.valid_before, 1_003_600);
        assert_eq!(grant.valid_after, 1_000_000 - BACKDATE_SECS);
        assert!(grant.shortened());
        assert_eq!(grant.key_id, "vmux:laptop:id-1");
        assert_eq!(
            grant.critical_options(),
            vec![("source-address", "10.9.9.9/32".to_owned())]
        );
        let short = policy.grant("laptop", "id-1", 60, 1_000_000).unwrap();
        assert!(!short.shortened());
        assert!(matches!(
            policy.grant("laptop", "id-1", 0, 1),
            Err(Error::PolicyDenied(_))
        ));
        assert!(policy.grant("laptop", "id-1", 1, u64::MAX).is_err());
    }

    #[test]
    fn a_key_id_is_of_its_device_under_any_name() {
        assert!(key_id_is_of(&key_id("laptop", "id-1"), "id-1"));
        assert!(key_id_is_of(&key_id("work: laptop", "id-1"), "id-1"));
        assert!(key_id_is_of(&key_id("x", "a:b"), "a:b"));
        assert!(key_id_is_of(&key_id("x", ""), ""));
        for (other, id) in [
            (key_id("laptop", "id-12"), "id-1"),
            (key_id("laptop", "xid-1"), "id-1"),
            (key_id("laptop", "id-1"), ""),
            (key_id("x", "id-1:y"), "id-1"),
            ("laptop:id-1".to_owned(), "id-1"),
            ("vmux:id-1".to_owned(), "id-1"),
        ] {
            assert!(!key_id_is_of(&other, id), "{other} taken for {id:?}");
        }
    }
}
