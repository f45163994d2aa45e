//! Device names are the device's own choice, so two can collide. Wherever
//! they do, a sheet shows the device's key fingerprint beside the name;
//! pairing a name already pinned says so, with both fingerprints. Device
//! ids must be unique: a second device claiming a pinned id is refused.

use vmux_link::Fingerprint;
use vmux_link::trust::{PeerRole, TrustStore};

/// The fingerprints of the other paired devices (requesters) named `name`,
/// the key `except` left out.
pub(super) fn others_named(trust: &TrustStore, name: &str, except: &[u8; 32]) -> Vec<Fingerprint> {
    trust
        .peers()
        .iter()
        .filter(|p| p.role == PeerRole::Requester && p.name == name && !p.has_key(except))
        .map(|p| p.key_fingerprint())
        .collect()
}

/// Why a device with `device_id` and key `key` cannot be paired: another
/// key already holds that id.
pub(super) fn id_taken(trust: &TrustStore, device_id: &str, key: &[u8; 32]) -> Option<String> {
    let holder = trust
        .peers()
        .iter()
        .find(|p| p.role == PeerRole::Requester && p.device_id == device_id && !p.has_key(key))?;
    Some(format!(
        "device id {device_id} is already paired with this signer (\"{}\", {}); device ids must be unique: remove that device with `vmux peers remove {}` on the signer first",
        holder.name,
        holder.key_fingerprint(),
        holder.key_fingerprint()
    ))
}

/// `laptop`, or when another paired device has that name too,
/// `laptop (device key SHA256:…; 2 paired devices are named "laptop")`.
pub(super) fn shown(trust: &TrustStore, name: &str, key: &[u8; 32]) -> String {
    let others = others_named(trust, name, key).len();
    if others == 0 {
        return name.to_owned();
    }
    format!(
        "{name} (device key {}; {} paired devices are named \"{name}\")",
        Fingerprint::of(key),
        others + 1
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vmux_link::home::Home;
    use vmux_link::trust::PinnedPeer;

    #[test]
    fn colliding_names_show_the_key_and_a_pinned_id_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let mut trust = TrustStore::load(&home).unwrap();
        for (id, key) in [("id-1", [1u8; 32]), ("id-2", [2u8; 32])] {
            trust
                .pin(PinnedPeer::new(
                    id.into(),
                    "laptop".into(),
                    PeerRole::Requester,
                    &key,
                    0,
                ))
                .unwrap();
        }
        assert_eq!(others_named(&trust, "laptop", &[1; 32]).len(), 1);
        assert_eq!(others_named(&trust, "laptop", &[3; 32]).len(), 2);
        assert!(others_named(&trust, "phone", &[3; 32]).is_empty());
        let label = shown(&trust, "laptop", &[1; 32]);
        assert!(
            label.starts_with("laptop (device key SHA256:")
                && label.ends_with("2 paired devices are named \"laptop\")"),
            "{label}"
        );
        assert_eq!(shown(&trust, "phone", &[9; 32]), "phone");
        assert!(id_taken(&trust, "id-1", &[1; 32]).is_none(), "its own id");
        let why = id_taken(&trust, "id-1", &[3; 32]).unwrap();
        assert!(
            why.contains("already paired") && why.contains("unique"),
            "{why}"
        );
    }
}
