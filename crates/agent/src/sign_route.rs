//! Where a sign request goes: a pure decision over what the connection and
//! the agent know, so every combination is tested here and
//! `connection::sign` only carries it out.

use serde::{Deserialize, Serialize};

/// Longest user name a login may carry: OpenSSH's
/// `AGENT_USER_CONSTRAINT_MAX_LEN` (openssh-portable 10f66b2af), and more
/// than any sshd takes as a login name.
pub const MAX_USER_LEN: usize = 256;

/// Whose key the request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The valid session certificate, or its ephemeral key.
    Certificate,
    /// One of the signers' keys.
    Signer,
    /// Neither: maybe the upstream agent's.
    Other,
}

/// What is known when a sign request arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Whose key it names.
    pub holder: Holder,
    /// A session binding said the connection is forwarded.
    pub forwarded: bool,
    /// A session-bind on this connection was refused.
    pub bind_failed: bool,
    /// The agent is locked.
    pub locked: bool,
    /// An upstream agent is configured.
    pub upstream: bool,
    /// The data is more than the link carries.
    pub too_large: bool,
    /// The data is a login whose user name is over [`MAX_USER_LEN`].
    pub user_too_long: bool,
}

/// Why a request is refused by the agent itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    /// The session certificate asked for on a forwarded connection: someone
    /// on the remote host trying to sign without a sheet.
    #[serde(rename = "refusedForwarded")]
    CertificateForwarded,
    /// The agent is locked (`ssh-add -x`).
    Locked,
    /// A session-bind on the connection was refused.
    #[serde(rename = "refusedBindFailed")]
    BindFailed,
    /// More data than the link carries; no SSH signature needs it.
    TooLarge,
    /// A login's user name is longer than any sshd takes.
    #[serde(rename = "refusedUserTooLong")]
    UserTooLong,
    /// No key here or upstream that this connection may use.
    #[serde(rename = "refusedNoKey")]
    NoKey,
    /// Its connection's share of the requests waiting on the signer is
    /// used ([`crate::quota`]).
    #[serde(rename = "refusedBusy")]
    Busy,
}

impl Refusal {
    /// The word the request log writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::CertificateForwarded => "refusedForwarded",
            Refusal::Locked => "locked",
            Refusal::BindFailed => "refusedBindFailed",
            Refusal::TooLarge => "tooLarge",
            Refusal::UserTooLong => "refusedUserTooLong",
            Refusal::NoKey => "refusedNoKey",
            Refusal::Busy => "refusedBusy",
        }
    }

    /// What a person reading the log or a warning should know.
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::CertificateForwarded => {
                "the session certificate is never used through a forwarded agent"
            }
            Refusal::Locked => "the agent is locked: unlock it with `ssh-add -X`",
            Refusal::BindFailed => {
                "a session-bind on this connection did not verify, so it signs nothing more"
            }
            Refusal::TooLarge => "more data than any SSH signature needs",
            Refusal::UserTooLong => "the login's user name is over 256 bytes",
            Refusal::NoKey => "no key this connection may use",
            Refusal::Busy => {
                "the share of requests waiting on the signer is used (8 from forwarded \
                 connections together, 24 in all)"
            }
        }
    }
}

/// Where the request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Signed here with the session certificate's ephemeral key.
    Certificate,
    /// Sent to the signer, for a person to approve.
    Signer,
    /// Passed to the upstream agent as it came.
    Upstream,
    /// Refused here.
    Refused(Refusal),
}

/// The route for a request with `facts`. Order matters only for which
/// reason is logged: the certificate on a forwarded connection first (that
/// is someone trying), then OpenSSH's order (locked before anything).
pub fn decide(facts: Facts) -> Route {
    use Refusal::*;
    if facts.holder == Holder::Certificate && facts.forwarded {
        return Route::Refused(CertificateForwarded);
    }
    if facts.locked {
        return Route::Refused(Locked);
    }
    if facts.bind_failed {
        return Route::Refused(BindFailed);
    }
    if facts.user_too_long {
        return Route::Refused(UserTooLong);
    }
    match facts.holder {
        Holder::Certificate => Route::Certificate,
        Holder::Signer if facts.too_large => Route::Refused(TooLarge),
        Holder::Signer => Route::Signer,
        // Upstream keys sign with no person in the loop: never for a
        // forwarded connection.
        Holder::Other if facts.upstream && !facts.forwarded => Route::Upstream,
        Holder::Other => Route::Refused(NoKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the facts, 3 × 2^6.
    fn every() -> impl Iterator<Item = Facts> {
        [Holder::Certificate, Holder::Signer, Holder::Other]
            .into_iter()
            .flat_map(|holder| {
                (0u8..64).map(move |bits| Facts {
                    holder,
                    forwarded: bits & 1 != 0,
                    bind_failed: bits & 2 != 0,
                    locked: bits & 4 != 0,
                    upstream: bits & 8 != 0,
                    too_large: bits & 16 != 0,
                    user_too_long: bits & 32 != 0,
                })
            })
    }

    /// The rules written out once more, one per line, as a person checks.
    fn expected(f: Facts) -> Route {
        let refuse = Route::Refused;
        if f.forwarded && f.holder == Holder::Certificate {
            refuse(Refusal::CertificateForwarded)
        } else if f.locked {
            refuse(Refusal::Locked)
        } else if f.bind_failed {
            refuse(Refusal::BindFailed)
        } else if f.user_too_long {
            refuse(Refusal::UserTooLong)
        } else {
            match (f.holder, f.too_large, f.upstream, f.forwarded) {
                (Holder::Certificate, ..) => Route::Certificate,
                (Holder::Signer, true, ..) => refuse(Refusal::TooLarge),
                (Holder::Signer, false, ..) => Route::Signer,
                (Holder::Other, _, true, false) => Route::Upstream,
                (Holder::Other, ..) => refuse(Refusal::NoKey),
            }
        }
    }

    #[test]
    fn every_combination_routes_as_the_rules_say() {
        let mut seen = 0;
        for facts in every() {
            assert_eq!(decide(facts), expected(facts), "{facts:?}");
            seen += 1;
        }
        assert_eq!(seen, 192);
    }

    #[test]
    fn the_invariants_hold_everywhere() {
        for f in every() {
            let route = decide(f);
            // A forwarded connection never signs without a person.
            if f.forwarded {
                assert!(
                    !matches!(route, Route::Certificate | Route::Upstream),
                    "{f:?}"
                );
            }
            // Locked, or a failed bind: nothing is signed at all.
            if f.locked || f.bind_failed || f.user_too_long {
                assert!(matches!(route, Route::Refused(_)), "{f:?}");
            }
            // Only the signer's keys go to the signer.
            assert_eq!(route == Route::Signer, {
                f.holder == Holder::Signer
                    && !f.locked
                    && !f.bind_failed
                    && !f.user_too_long
                    && !f.too_large
            });
        }
    }

    #[test]
    fn refusals_are_logged_under_stable_names() {
        let names: Vec<String> = [
            Refusal::CertificateForwarded,
            Refusal::Locked,
            Refusal::BindFailed,
            Refusal::TooLarge,
            Refusal::UserTooLong,
            Refusal::NoKey,
        ]
        .iter()
        .map(|r| {
            let text = serde_json::to_string(r).unwrap_or_default();
            assert_eq!(text, format!("\"{}\"", r.as_str()));
            text
        })
        .collect();
        assert_eq!(
            names,
            [
                "\"refusedForwarded\"",
                "\"locked\"",
                "\"refusedBindFailed\"",
                "\"tooLarge\"",
                "\"refusedUserTooLong\"",
                "\"refusedNoKey\""
            ]
        );
    }
}
