//! The words on a sheet, shared by every front end so they say the same.

use vmux_proto::envelope::ContextQuality;

use crate::approval::{Destination, Sheet};

/// The sheet's heading.
pub fn title(sheet: &Sheet) -> &'static str {
    match sheet {
        Sheet::Pairing { .. } => "Pairing request",
        Sheet::Sign { .. } => "SSH Sign Request",
        Sheet::Certificate { .. } => "Session certificate request",
    }
}

/// Labelled lines, in display order.
pub fn fields(sheet: &Sheet) -> Vec<(&'static str, String)> {
    match sheet {
        Sheet::Pairing {
            device,
            fingerprint,
            code,
        } => vec![
            ("Device", format!("\"{device}\" wants to pair, code {code}")),
            ("Key", fingerprint.to_string()),
        ],
        Sheet::Sign {
            device,
            destination,
            key,
        } => vec![
            ("From Device", device.clone()),
            ("Destination", destination_line(destination)),
            ("Key", key.clone()),
        ],
        Sheet::Certificate {
            device,
            validity_seconds,
        } => vec![
            ("From Device", device.clone()),
            (
                "Request",
                format!(
                    "Session certificate for {device}, valid {}",
                    duration(*validity_seconds)
                ),
            ),
        ],
    }
}

/// A line of advice under the fields.
pub fn note(sheet: &Sheet) -> Option<&'static str> {
    match sheet {
        Sheet::Pairing { .. } => Some("Accept only if the other device shows the same code."),
        Sheet::Sign { .. } => Some("Approve only if you just started this connection."),
        Sheet::Certificate { .. } => None,
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

/// `user@host (verified)`, or what is known of it.
pub fn destination_line(d: &Destination) -> String {
    let target = match (&d.user, &d.host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        (None, Some(h)) => h.clone(),
        (Some(u), None) => format!("{u}@(unknown host)"),
        (None, None) => "unknown (the requester does not see the destination)".to_owned(),
    };
    let quality = match d.quality {
        ContextQuality::Verified => "verified by the requester",
        ContextQuality::Claimed => "claimed, not verified",
        _ => "unverified",
    };
    match &d.purpose {
        Some(p) => format!("{target} — {p} ({quality})"),
        None => format!("{target} ({quality})"),
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
