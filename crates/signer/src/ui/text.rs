//! The words on a sheet, shared by every front end so they say the same.
//!
//! Every value is escaped ([`vmux_proto::text::escape`]) on its way out:
//! what came over the wire was checked at decode, but a name pinned by an
//! older build, or read from a file, was not.

use std::time::Duration;

use chrono::TimeZone;
use vmux_keys::ca::Grant;
use vmux_proto::text::escape;

use crate::approval::Sheet;
use crate::destination::Quality;

/// The sheet's heading.
pub fn title(sheet: &Sheet) -> &'static str {
    match sheet {
        Sheet::Pairing { .. } => "Pairing request",
        Sheet::Sign { .. } => "SSH Sign Request",
        Sheet::Certificate { .. } => "Session certificate request",
    }
}

/// Labelled lines, in display order, escaped.
pub fn fields(sheet: &Sheet) -> Vec<(&'static str, String)> {
    raw_fields(sheet)
        .into_iter()
        .map(|(label, value)| (label, escape(&value).into_owned()))
        .collect()
}

fn raw_fields(sheet: &Sheet) -> Vec<(&'static str, String)> {
    match sheet {
        Sheet::Pairing {
            device,
            fingerprint,
            code,
            already_named,
        } => {
            let mut lines = vec![
                ("Device", format!("\"{device}\" wants to pair, code {code}")),
                ("Key", fingerprint.to_string()),
            ];
            if !already_named.is_empty() {
                let keys: Vec<String> = already_named.iter().map(ToString::to_string).collect();
                lines.push((
                    "Same name",
                    format!(
                        "a paired device is already named \"{device}\" ({}); this one is {fingerprint}. Accept only if you mean both, then tell them apart with `vmux peers rename`",
                        keys.join(", ")
                    ),
                ));
            }
            lines
        }
        Sheet::Sign {
            device,
            claimed,
            destination,
            key,
        } => {
            let mut lines = from_device(device, claimed.as_deref());
            // The host alone: user, style and claims each on their own line.
            lines.push(("Destination", destination.target.to_string()));
            if destination.target.quality == Quality::Requester {
                lines.push(("Host check", REQUESTER_CHECKED.to_owned()));
            }
            if let Some(claim) = &destination.claimed_host {
                lines.push(("Host name", claim.to_string()));
            }
            if let Some(user) = &destination.user {
                lines.push(("User", user.to_string()));
            }
            if let Some(style) = &destination.style {
                lines.push((
                    "Style",
                    format!(
                        "auth style requested: \"{style}\" (the client's word; sshd logs in as the user above)"
                    ),
                ));
            }
            lines.push(("Purpose", destination.purpose.to_string()));
            if let Some(path) = &destination.path {
                lines.push(("Path", path.to_string()));
            }
            if let Some(host_key) = &destination.host_key {
                lines.push(("Host key", host_key.clone()));
            }
            lines.push(("Key", key.clone()));
            lines
        }
        Sheet::Certificate {
            grant,
            claimed,
            new_ca,
            device_key,
        } => {
            let mut lines = from_device(&grant.device, claimed.as_deref());
            if let Some(key) = device_key {
                lines.push((
                    "Device key",
                    format!(
                        "{key} (another paired device is also named \"{}\")",
                        grant.device
                    ),
                ));
            }
            lines.extend(certificate_fields(grant, *new_ca));
            lines
        }
    }
}

/// Why a `vmux ssh` destination is the requester's word, in plain words.
const REQUESTER_CHECKED: &str = "vmux ssh on that device checked the host key against its \
    known_hosts before asking; this signer cannot see that connection, so the name is its word";

/// One line naming the request, for history lines: `sign request from
/// "laptop" for root@prod-db (SSH login)`. Raw, as banners are: whatever
/// prints it escapes it.
pub fn summary(sheet: &Sheet) -> String {
    match sheet {
        Sheet::Pairing { device, .. } => format!("pairing request from \"{device}\""),
        Sheet::Sign {
            device,
            destination,
            ..
        } => format!(
            "sign request from \"{device}\" for {} ({})",
            destination.target.text, destination.purpose.text
        ),
        Sheet::Certificate { grant, .. } => {
            format!("certificate request from \"{}\"", grant.device)
        }
    }
}

/// The countdown under a sheet: `Expires in 42 s`.
pub fn countdown(left: Duration) -> String {
    // Rounded up: "0 s" would read as already gone.
    let secs = left.as_millis().div_ceil(1000);
    format!("Expires in {secs} s")
}

/// The pinned name, then what the device calls itself now if that differs,
/// labelled as its word.
fn from_device(device: &str, claimed: Option<&str>) -> Vec<(&'static str, String)> {
    let mut lines = vec![("From Device", device.to_owned())];
    if let Some(claimed) = claimed {
        lines.push((
            "Claims name",
            format!(
                "\"{}\" (its own word; paired as \"{device}\")",
                vmux_proto::text::clip(claimed)
            ),
        ));
    }
    lines
}

/// Everything the certificate will say, as the CA will sign it.
/// After the "From Device" lines.
fn certificate_fields(grant: &Grant, new_ca: bool) -> Vec<(&'static str, String)> {
    let validity = duration(grant.validity_secs());
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let critical: Vec<String> = grant
        .critical_options()
        .into_iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let mut fields = vec![
        (
            "Request",
            format!("Session certificate for {}, valid {validity}", grant.device),
        ),
        ("Principals", list(&grant.principals)),
        (
            "Valid",
            format!(
                "{} – {} local time ({validity} from now)",
                local_time(grant.valid_after),
                local_time(grant.valid_before)
            ),
        ),
        ("Extensions", list(&grant.extensions)),
        ("Critical", list(&critical)),
    ];
    if grant.shortened() {
        fields.push((
            "Requested",
            format!(
                "{}, shortened to {validity} by the CA policy",
                duration(grant.requested_secs)
            ),
        ));
    }
    if new_ca {
        fields.push((
            "CA",
            "none yet: approving makes one, and you choose its passphrase".to_owned(),
        ));
    }
    fields
}

/// `2026-03-01 09:55:12` in the signer's time zone.
pub fn local_time(unix_secs: u64) -> String {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| chrono::Local.timestamp_opt(secs, 0).single())
        .map_or_else(
            || format!("{unix_secs} (Unix time)"),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// A line of advice under the fields.
pub fn note(sheet: &Sheet) -> Option<&'static str> {
    match sheet {
        Sheet::Pairing { .. } => Some("Accept only if the other device shows the same code."),
        Sheet::Sign { .. } => {
            Some("Approve only if you just started this yourself, on that device.")
        }
        Sheet::Certificate { .. } => {
            Some("Approve only if this device should log in on its own until then.")
        }
    }
}

/// The word for `a`.
pub fn yes(sheet: &Sheet) -> &'static str {
    match sheet {
        Sheet::Pairing { .. } => "accept",
        _ => "approve",
    }
}

/// The word for `d`.
pub fn no(sheet: &Sheet) -> &'static str {
    match sheet {
        Sheet::Pairing { .. } => "reject",
        _ => "deny",
    }
}

/// `8h`, `30m`, `1h 30m`, `45s`.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) if h > 0 => format!("{h}h {m}m"),
        (_, m, s) => format!("{m}m {s}s"),
    }
}
