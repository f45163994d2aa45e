//! The destination as the sheet, the notification and the log show it:
//! the signer's [`Reading`] named from its host key list, each item with
//! its own quality word. The Destination line names the host alone, from
//! this signer's list or the key itself: the user, the style and any name
//! a requester claims go on lines of their own, so nothing a requester
//! wrote stands next to "verified by this signer". Peer text is kept as it
//! came, cut to [`text::MAX_SHOWN_CHARS`]; whatever prints it escapes it
//! (`ui::text::fields`, the log's readers, the notification).

use std::fmt;

use ssh_key::PublicKey;
use vmux_link::Fingerprint;
use vmux_link::clock::format_utc;
use vmux_proto::text;

use crate::hostkeys::{HostKeys, Naming, Source};
use crate::reading::{Forwarded, Host, Purpose, Reading, split_user};

/// How sure the signer is of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Quality {
    /// Checked by the signer itself: parsed from the signed bytes, or
    /// proved by a session binding.
    Signer,
    /// `vmux ssh` checked it for its own connection.
    Requester,
    /// The requesting device's word (its pinned name).
    Claimed(String),
    /// Nobody knows.
    Unknown,
    /// Not proved, and why.
    Unverified(String),
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Signer => f.write_str("verified by this signer"),
            Quality::Requester => f.write_str("verified by the requester"),
            Quality::Claimed(device) => write!(f, "claimed by {device}"),
            Quality::Unknown => f.write_str("unknown"),
            Quality::Unverified(why) => write!(f, "UNVERIFIED: {why}"),
        }
    }
}

/// One line's value and its quality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What is shown (raw: escaped where it is printed).
    pub text: String,
    /// How sure.
    pub quality: Quality,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.quality)
    }
}

/// Where a signature goes, as the person sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The host alone (its name on this signer's list, else its key's
    /// fingerprint), or what a non-login is.
    pub target: Item,
    /// The account sshd logs in as: the signed user name up to its first
    /// `:`.
    pub user: Option<Item>,
    /// What follows that `:`, when there is one: the authentication style
    /// the client asks sshd for.
    pub style: Option<String>,
    /// The host name the requester gives an unproved destination: only
    /// its word.
    pub claimed_host: Option<Item>,
    /// `SSH login`, `git signature`, `file signature (namespace "…")`,
    /// `unknown data`.
    pub purpose: Item,
    /// `laptop → bastion (forwarded) → db`.
    pub path: Option<Item>,
    /// The host key's fingerprint and what this signer knows of it.
    pub host_key: Option<String>,
}

impl Destination {
    /// Describes `reading` for a request from `device` (its pinned name),
    /// naming host keys from `hosts`.
    pub fn describe(reading: &Reading, hosts: &HostKeys, device: &str) -> Self {
        let purpose = purpose(&reading.purpose);
        let (user, style) = match &reading.purpose {
            Purpose::Login { user } => {
                let (account, style) = split_user(user);
                (Some(shown(account)), style.map(shown))
            }
            _ => (None, None),
        };
        let (target, host_key, claimed_host) = target(reading, hosts, device);
        let path = path(reading, hosts, device, &target);
        Destination {
            user: user.map(|text| Item {
                text,
                quality: Quality::Signer,
            }),
            style,
            claimed_host,
            target,
            purpose,
            path,
            host_key,
        }
    }

    /// One line for logs and notifications: `prod-db (verified by this
    /// signer) — SSH login (verified by this signer) as root`.
    pub fn line(&self) -> String {
        match &self.user {
            Some(user) => format!("{} — {} as {}", self.target, self.purpose, user.text),
            None => format!("{} — {}", self.target, self.purpose),
        }
    }
}

/// The Destination line, the host key line, and a name claimed for a
/// host nothing proves.
fn target(
    reading: &Reading,
    hosts: &HostKeys,
    device: &str,
) -> (Item, Option<String>, Option<Item>) {
    match &reading.host {
        Host::NotALogin => {
            let (text, quality) = match reading.purpose {
                Purpose::Unknown | Purpose::OtherUserauth { .. } => {
                    ("unknown".to_owned(), Quality::Unknown)
                }
                _ => ("none: a signature, not a login".to_owned(), Quality::Signer),
            };
            (Item { text, quality }, None, None)
        }
        Host::Verified { key, claimed_name } => {
            let naming = hosts.naming(key, claimed_name.as_deref());
            let line = key_line(key, &naming, claimed_name.as_deref(), device);
            let target = Item {
                text: name_for(key, &naming),
                quality: Quality::Signer,
            };
            (target, Some(line), None)
        }
        Host::ByRequester { key, name } => {
            // `vmux ssh` on the paired device checked the key under this
            // name itself, and the line says whose check it was.
            let naming = hosts.naming(key, name.as_deref());
            let text = match naming {
                Naming::Known(h) => h.name.clone(),
                _ => name.as_deref().map_or_else(|| fingerprint(key), shown),
            };
            let line = key_line(key, &naming, name.as_deref(), device);
            let target = Item {
                text,
                quality: Quality::Requester,
            };
            (target, Some(line), None)
        }
        Host::Unverified {
            why,
            key,
            claimed_name,
        } => {
            let text = key
                .as_deref()
                .map_or_else(|| "unknown host".to_owned(), fingerprint);
            let target = Item {
                text,
                quality: Quality::Unverified(why.clone()),
            };
            let line = key
                .as_ref()
                .map(|k| format!("{} (not proved)", fingerprint(k)));
            let claim = claimed_name.as_deref().map(|n| Item {
                text: format!("\"{}\"", shown(n)),
                quality: Quality::Claimed(device.to_owned()),
            });
            (target, line, claim)
        }
    }
}

/// A peer string as a sheet shows it: cut to [`text::MAX_SHOWN_CHARS`].
fn shown(s: &str) -> String {
    text::clip(s).into_owned()
}

fn purpose(p: &Purpose) -> Item {
    let (text, quality) = match p {
        Purpose::Login { .. } => ("SSH login".to_owned(), Quality::Signer),
        Purpose::Signature { namespace } if namespace == "git" => {
            ("git signature".to_owned(), Quality::Signer)
        }
        Purpose::Signature { namespace } => (
            format!("file signature (namespace \"{}\")", shown(namespace)),
            Quality::Signer,
        ),
        Purpose::OtherUserauth { service } => (
            format!("unknown data (userauth for service \"{}\")", shown(service)),
            Quality::Unknown,
        ),
        Purpose::Unknown => ("unknown data".to_owned(), Quality::Unknown),
    };
    Item { text, quality }
}

fn fingerprint(key: &[u8]) -> String {
    Fingerprint::of(key).to_string()
}

/// The signer's name for a verified key, else its fingerprint.
fn name_for(key: &[u8], naming: &Naming<'_>) -> String {
    match naming {
        Naming::Known(h) => h.name.clone(),
        _ => fingerprint(key),
    }
}

fn date(ms: u64) -> String {
    format_utc(ms).chars().take(10).collect()
}

/// `SHA256:… — what this signer knows of it`.
fn key_line(key: &[u8], naming: &Naming<'_>, claimed: Option<&str>, device: &str) -> String {
    let fp = fingerprint(key);
    let claim = claimed.map(str::to_owned);
    match naming {
        Naming::Known(h) => {
            let known = match h.source {
                Source::Learned => format!("same host key as approved on {}", date(h.since_ms)),
                source => format!(
                    "on this signer's list as \"{}\" ({} {})",
                    h.name,
                    source.word(),
                    date(h.since_ms)
                ),
            };
            match claim.as_deref().map(shown) {
                Some(c) if !c.eq_ignore_ascii_case(&h.name) => {
                    format!("{fp} — {known}; {device} calls it \"{c}\"")
                }
                _ => format!("{fp} — {known}"),
            }
        }
        Naming::New => match claim.as_deref().map(shown) {
            Some(c) => {
                format!("{fp} — new host, not on this signer's list; \"{c}\" claimed by {device}")
            }
            None => format!("{fp} — new host, not on this signer's list, and no name claimed"),
        },
        Naming::Changed(h) => {
            let old = PublicKey::to_bytes(&h.key)
                .map(|b| fingerprint(&b))
                .unwrap_or_default();
            format!(
                "{fp} — CHANGED HOST KEY: {device} says this is \"{}\", but this signer knows \"{}\" by another key ({old}). Someone could be impersonating the host; deny unless you expected the change.",
                claim.as_deref().map_or_else(|| h.name.clone(), shown),
                h.name
            )
        }
    }
}

/// `laptop → a (forwarded) → b`, for logins and forwarded requests;
/// the last hop is the Destination line's host.
fn path(reading: &Reading, hosts: &HostKeys, device: &str, target: &Item) -> Option<Item> {
    let last = (reading.host != Host::NotALogin).then_some(&target.text);
    if last.is_none() && reading.through.is_empty() && reading.forwarded == Forwarded::No {
        return None;
    }
    let mut text = device.to_owned();
    for hop in &reading.through {
        // The hop's key is proved; a name not on this signer's list is only
        // the requester's word, so it is labelled as such, never bare.
        let hop_text = match (hosts.names_of(&hop.key).first(), &hop.claimed_name) {
            (Some(h), _) => format!("{} (forwarded)", h.name),
            (None, Some(c)) => format!(
                "{} (forwarded; \"{}\" claimed by {device})",
                fingerprint(&hop.key),
                shown(c)
            ),
            (None, None) => format!("{} (forwarded)", fingerprint(&hop.key)),
        };
        text.push_str(&format!(" → {hop_text}"));
    }
    if reading.forwarded == Forwarded::Claimed {
        text.push_str(" → (forwarded)");
    }
    if let Some(last) = last {
        text.push_str(&format!(" → {last}"));
    }
    let quality = match (reading.forwarded, &target.quality) {
        (Forwarded::Claimed, _) => Quality::Claimed(device.to_owned()),
        (_, Quality::Signer) => Quality::Signer,
        (_, Quality::Requester) => Quality::Requester,
        (_, Quality::Unverified(_)) => Quality::Unverified("the destination is not proved".into()),
        // A forwarded signature: its hops are proved.
        _ => Quality::Signer,
    };
    Some(Item { text, quality })
}

#[cfg(test)]
mod tests;
