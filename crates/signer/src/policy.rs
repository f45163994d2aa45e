//! Per-key policy, enforced on the signer before any sheet is shown:
//! which hosts a key may log in to, what it may sign, and whether it
//! serves forwarded agents and unverified destinations.
//!
//! A request outside the policy is refused at once (`policyDenied`): a
//! sheet would only invite a tired person to approve it. The defaults keep
//! what every key did before policies, except that data the signer cannot
//! read (neither a login nor an SSHSIG signature) is refused unless the
//! policy names `unknown`. Pure: [`check`] looks only at its arguments.

mod store;

use serde::{Deserialize, Serialize};
use vmux_hostkey::known_hosts::glob;

use crate::reading::{Forwarded, Host, Purpose, Reading};

pub use store::Policies;

/// `--purposes` word for SSH logins.
pub const LOGIN: &str = "login";
/// `--purposes` word for data that is neither a login nor SSHSIG.
pub const UNKNOWN: &str = "unknown";
/// `--purposes` word for every SSHSIG namespace.
pub const ANY_NAMESPACE: &str = "*";

/// Allow or deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// Allowed (the default).
    #[default]
    Allow,
    /// Refused with `policyDenied`.
    Deny,
}

/// One key's policy. `None` lists mean "no restriction".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Host name patterns (`*`, `?`) from the signer's host key list that
    /// logins may go to; only destinations verified by the signer match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// `login`, SSHSIG namespaces (`git`, `file`, …, `*` for any) and
    /// `unknown`. Unset: logins and every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purposes: Option<Vec<String>>,
    /// Requests through a forwarded agent.
    #[serde(default)]
    pub forwarded: Rule,
    /// Logins whose destination the signer could not verify.
    #[serde(default)]
    pub unverified: Rule,
}

impl Policy {
    /// Whether this is the default (nothing set).
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// The policy in `vmux key policy` flags, for people.
    pub fn describe(&self) -> String {
        format!(
            "--hosts {}  --purposes {}  --forwarded {}  --unverified {}",
            self.hosts
                .as_ref()
                .map_or_else(|| "(any)".to_owned(), |h| h.join(",")),
            self.purposes
                .as_ref()
                .map_or_else(|| "(login and every namespace)".to_owned(), |p| p.join(",")),
            word(self.forwarded),
            word(self.unverified),
        )
    }
}

fn word(rule: Rule) -> &'static str {
    match rule {
        Rule::Allow => "allow",
        Rule::Deny => "deny",
    }
}

/// Checks `reading` against `policy`. `names` are the signer's names for
/// the destination's host key (empty unless it was verified by this
/// signer and is on the list). The refusal says why, in words for both
/// the log and the requester's person.
pub fn check(policy: &Policy, reading: &Reading, names: &[&str]) -> Result<(), String> {
    let purposes = policy.purposes.as_deref();
    let allows = |w: &str| purposes.is_none_or(|p| p.iter().any(|x| x == w));
    match &reading.purpose {
        Purpose::Unknown => {
            if !purposes.is_some_and(|p| p.iter().any(|x| x == UNKNOWN)) {
                return Err(
                    "the data is neither an SSH login nor an SSHSIG signature, and this key's policy does not allow unknown data (`--purposes …,unknown`)".into(),
                );
            }
        }
        Purpose::OtherUserauth { service } => {
            if !purposes.is_some_and(|p| p.iter().any(|x| x == UNKNOWN)) {
                return Err(format!(
                    "the data is a userauth request for service \"{}\", not an SSH login (only ssh-connection is one), and this key's policy does not allow unknown data (`--purposes …,unknown`)",
                    vmux_proto::text::clip(service)
                ));
            }
        }
        Purpose::Login { .. } => {
            if !allows(LOGIN) {
                return Err("this key's policy does not allow SSH logins".into());
            }
        }
        Purpose::Signature { namespace } => {
            // The reserved words name purposes, not namespaces: `login` must
            // not let a signature in namespace "login" through.
            let named =
                ![LOGIN, UNKNOWN, ANY_NAMESPACE].contains(&namespace.as_str()) && allows(namespace);
            if !(named || allows(ANY_NAMESPACE)) {
                return Err(format!(
                    "this key's policy does not allow signatures in namespace \"{namespace}\""
                ));
            }
        }
    }
    if policy.forwarded == Rule::Deny && reading.forwarded != Forwarded::No {
        return Err(
            "the request came through a forwarded agent, and this key's policy denies forwarding"
                .into(),
        );
    }
    if let Purpose::Login { .. } = reading.purpose {
        if policy.unverified == Rule::Deny && !reading.verified() {
            let why = match &reading.host {
                Host::Unverified { why, .. } => why.as_str(),
                _ => "only the requester verified it",
            };
            return Err(format!(
                "the destination is not verified by this signer ({why}), and this key's policy denies unverified destinations"
            ));
        }
        if let Some(patterns) = &policy.hosts {
            let allowed =
                reading.verified() && names.iter().any(|n| patterns.iter().any(|p| glob(p, n)));
            if !allowed {
                let what = match (reading.verified(), names.first()) {
                    (true, Some(name)) => format!("\"{name}\" is not"),
                    (true, None) => {
                        "the destination is verified but has no name on this signer, so it is not"
                            .to_owned()
                    }
                    (false, _) => {
                        "the destination is not verified by this signer, so it is not".to_owned()
                    }
                };
                return Err(format!(
                    "{what} one of the hosts this key may log in to ({})",
                    patterns.join(",")
                ));
            }
        }
    }
    Ok(())
}

/// Parses `--purposes` words (comma-separated); refuses empty words.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let words: Vec<String> = text.split(',').map(|w| w.trim().to_owned()).collect();
    if let Some(bad) = words.iter().find(|w| {
        w.is_empty()
            || w.chars()
                .any(|c| c.is_whitespace() || vmux_proto::text::is_forbidden(c))
    }) {
        return Err(format!(
            "\"{}\" in \"{}\" is not a word; give words separated by commas, e.g. login,git",
            vmux_proto::text::escape(bad),
            vmux_proto::text::escape(text)
        ));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reading::Hop;

    fn login(verified: bool, forwarded: Forwarded) -> Reading {
        Reading {
            purpose: Purpose::Login {
                user: "root".into(),
            },
            host: if verified {
                Host::Verified {
                    key: vec![1],
                    claimed_name: None,
                }
            } else {
                Host::Unverified {
                    why: "no session binding came with the request".into(),
                    key: None,
                    claimed_name: None,
                }
            },
            through: Vec::<Hop>::new(),
            forwarded,
        }
    }

    fn signature(namespace: &str) -> Reading {
        Reading {
            purpose: Purpose::Signature {
                namespace: namespace.into(),
            },
            host: Host::NotALogin,
            through: Vec::new(),
            forwarded: Forwarded::No,
        }
    }

    fn unknown() -> Reading {
        Reading {
            purpose: Purpose::Unknown,
            ..signature("x")
        }
    }

    #[test]
    fn defaults_allow_what_they_did_except_unknown_data() {
        let p = Policy::default();
        assert!(check(&p, &login(false, Forwarded::Claimed), &[]).is_ok());
        assert!(check(&p, &signature("git"), &[]).is_ok());
        assert!(check(&p, &unknown(), &[]).unwrap_err().contains("unknown"));
        let p = Policy {
            purposes: Some(vec![LOGIN.into(), ANY_NAMESPACE.into(), UNKNOWN.into()]),
            ..Policy::default()
        };
        assert!(check(&p, &unknown(), &[]).is_ok());
        assert!(check(&p, &signature("anything"), &[]).is_ok());
    }

    #[test]
    fn a_userauth_for_another_service_falls_under_unknown() {
        let other = Reading {
            purpose: Purpose::OtherUserauth {
                service: "pam_ssh_agent_auth".into(),
            },
            ..signature("x")
        };
        let why = check(&Policy::default(), &other, &[]).unwrap_err();
        assert!(
            why.contains("service \"pam_ssh_agent_auth\"") && why.contains("unknown"),
            "{why}"
        );
        let logins_only = Policy {
            purposes: Some(vec![LOGIN.into()]),
            ..Policy::default()
        };
        assert!(check(&logins_only, &other, &[]).is_err());
        let p = Policy {
            purposes: Some(vec![UNKNOWN.into()]),
            ..Policy::default()
        };
        assert!(check(&p, &other, &[]).is_ok());
    }

    #[test]
    fn hosts_match_only_verified_named_destinations() {
        let p = Policy {
            hosts: Some(vec!["prod-*".into()]),
            ..Policy::default()
        };
        assert!(check(&p, &login(true, Forwarded::No), &["prod-db"]).is_ok());
        assert!(check(&p, &login(true, Forwarded::No), &["other", "PROD-web"]).is_ok());
        let why = check(&p, &login(true, Forwarded::No), &["staging"]).unwrap_err();
        assert!(
            why.contains("\"staging\" is not") && why.contains("prod-*"),
            "{why}"
        );
        assert!(
            check(&p, &login(true, Forwarded::No), &[])
                .unwrap_err()
                .contains("no name")
        );
        // A name is not enough: the key must be the verified destination.
        assert!(
            check(&p, &login(false, Forwarded::No), &["prod-db"])
                .unwrap_err()
                .contains("not verified")
        );
        // Signatures have no host.
        assert!(check(&p, &signature("git"), &[]).is_ok());
    }

    #[test]
    fn purposes_forwarding_and_unverified() {
        let p = Policy {
            purposes: Some(vec!["git".into()]),
            forwarded: Rule::Deny,
            unverified: Rule::Deny,
            ..Policy::default()
        };
        assert!(check(&p, &signature("git"), &[]).is_ok());
        assert!(
            check(&p, &signature("file"), &[])
                .unwrap_err()
                .contains("\"file\"")
        );
        assert!(
            check(&p, &login(true, Forwarded::No), &[])
                .unwrap_err()
                .contains("logins")
        );
        let mut fwd = signature("git");
        fwd.forwarded = Forwarded::Bound;
        assert!(check(&p, &fwd, &[]).unwrap_err().contains("forwarded"));
        fwd.forwarded = Forwarded::Claimed;
        assert!(check(&p, &fwd, &[]).is_err());
        let p = Policy {
            unverified: Rule::Deny,
            ..Policy::default()
        };
        assert!(check(&p, &login(true, Forwarded::No), &[]).is_ok());
        let why = check(&p, &login(false, Forwarded::No), &[]).unwrap_err();
        assert!(why.contains("no session binding"), "{why}");
        // Purpose words are not namespaces: a key for logins (and unknown
        // data) signs nothing in a namespace called "login" or "unknown".
        let p = Policy {
            purposes: Some(vec![LOGIN.into(), UNKNOWN.into()]),
            ..Policy::default()
        };
        for namespace in [LOGIN, UNKNOWN, ANY_NAMESPACE] {
            assert!(
                check(&p, &signature(namespace), &[]).is_err(),
                "{namespace}"
            );
        }
    }

    #[test]
    fn lists_are_words() {
        assert_eq!(parse_list("login, git").unwrap(), ["login", "git"]);
        assert!(parse_list("login,,git").is_err());
        assert!(parse_list("a\u{1b}b").is_err());
    }
}
