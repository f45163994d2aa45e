//! This device's identity on the link: a random id, a name and the static
//! Noise key.
//!
//! The static key is a link-authentication key, not an SSH key: holding it
//! lets a device *ask* the signer for signatures, each still approved by a
//! person. It is the one secret an agent host keeps (see SECURITY.md).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::home::{Home, StateFile};
use crate::noise::{KEY_LEN, StaticKeypair};
use crate::{Error, Fingerprint, Result};

/// `device.json`: this device's id and name (a name is at most a few
/// hundred bytes).
pub const DEVICE_FILE: StateFile = StateFile::new("device.json", 64 << 10);
/// `link.key`: the static key's secret, exactly [`KEY_LEN`] bytes.
pub const KEY_FILE: StateFile = StateFile::new("link.key", KEY_LEN as u64);

/// Who this device is on the link.
#[derive(Debug)]
pub struct Device {
    /// Random UUID made once, sent as `deviceID`.
    pub id: String,
    /// Name shown to the other side's person.
    pub name: String,
    /// The long-term Noise static key.
    pub keypair: StaticKeypair,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceFile {
    #[serde(rename = "deviceID")]
    device_id: String,
    name: String,
}

impl Device {
    /// Loads this device from `home`, creating its id and key on first use.
    /// `name` overrides (and records) the stored name.
    pub fn load_or_create(home: &Home, name: Option<&str>) -> Result<Self> {
        let info_path = DEVICE_FILE.path(home);
        let key_path = KEY_FILE.path(home);
        let stored: Option<DeviceFile> = match DEVICE_FILE.read(home)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: info_path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let keypair = match KEY_FILE.read(home)? {
            Some(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let secret: [u8; KEY_LEN] =
                    bytes.as_slice().try_into().map_err(|_| Error::Corrupt {
                        path: key_path.clone(),
                        reason: format!("expected {KEY_LEN} bytes"),
                    })?;
                StaticKeypair::from_secret_bytes(Zeroizing::new(secret))
            }
            None => {
                let keypair = StaticKeypair::generate()?;
                KEY_FILE.write(home, keypair.secret_bytes().as_slice())?;
                keypair
            }
        };
        let id = match &stored {
            Some(s) => s.device_id.clone(),
            None => new_uuid()?,
        };
        let name = match (name, &stored) {
            (Some(n), _) => {
                check_name(n)?;
                n.to_owned()
            }
            (None, Some(s)) => {
                // Written by hand or by an older build: peers would refuse
                // it, so say so here, where it can be fixed.
                if let Some(why) = name_problem(&s.name) {
                    return Err(Error::Name {
                        name: s.name.clone(),
                        why: format!(
                            "(in {}) {why}; give a new one with --name, or edit the file",
                            info_path.display()
                        ),
                    });
                }
                s.name.clone()
            }
            (None, None) => default_name(),
        };
        if stored.as_ref().is_none_or(|s| s.name != name) {
            let file = DeviceFile {
                device_id: id.clone(),
                name: name.clone(),
            };
            let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Corrupt {
                path: info_path.clone(),
                reason: e.to_string(),
            })?;
            DEVICE_FILE.write(home, &json)?;
        }
        Ok(Self { id, name, keypair })
    }

    /// The fingerprint of this device's static key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.keypair.public())
    }

    /// The name as sent in requests (`sourceDeviceName`): cut to the
    /// protocol's limit on a character boundary, because the signer refuses
    /// a longer one and a long host name should not make every request fail.
    pub fn wire_name(&self) -> String {
        let max = vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN;
        let mut end = self.name.len().min(max);
        while !self.name.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        self.name.get(..end).unwrap_or_default().to_owned()
    }
}

/// Refuses a device name that no peer would show: empty, or holding a
/// control or format character ([`vmux_proto::text`]). A name longer than
/// the wire allows is fine: [`Device::wire_name`] cuts it.
pub fn check_name(name: &str) -> Result<()> {
    match name_problem(name) {
        None => Ok(()),
        Some(why) => Err(Error::Name {
            name: name.to_owned(),
            why,
        }),
    }
}

/// What is wrong with `name`, worded to follow it.
fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".to_owned());
    }
    let c = vmux_proto::text::check(name).err()?;
    Some(format!(
        "contains the control or format character {}, which peers refuse to show",
        vmux_proto::text::describe(c)
    ))
}

/// A random (version 4) UUID in its canonical text form.
pub fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| Error::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    Ok(text)
}

/// The host name, which is what people call their machines.
fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::process::Command::new("hostname")
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
        })
        .map(|n| n.trim().to_owned())
        .filter(|n| check_name(n).is_ok())
        .unwrap_or_else(|| "vmux device".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        let max = vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN;
        let long = "é".repeat(max);
        let device = Device::load_or_create(&home, Some(&long)).unwrap();
        let wire = device.wire_name();
        assert!(wire.len() <= max && wire.len() >= max - 1, "{}", wire.len());
        assert!(wire.chars().all(|c| c == 'é'));
        let short = Device::load_or_create(&home, Some("laptop")).unwrap();
        assert_eq!(short.wire_name(), "laptop");
    }

    #[test]
    fn names_a_peer_would_refuse_are_refused_here() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        for bad in ["evil\u{1b}[2J", "a\u{202e}b", "two\nlines", " "] {
            let err = Device::load_or_create(&home, Some(bad)).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("the device name \""), "{text}");
            assert!(!text.chars().any(vmux_proto::text::is_forbidden), "{text}");
        }
        // One written by hand (or an older build) is refused on load, with
        // where it is and what to do.
        Device::load_or_create(&home, Some("ok")).unwrap();
        let file = DEVICE_FILE.path(&home);
        let json = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, json.replace("\"ok\"", "\"bad\\u001b[2J\"")).unwrap();
        let err = Device::load_or_create(&home, None).unwrap_err().to_string();
        assert!(
            err.contains("U+001B") && err.contains("device.json") && err.contains("--name"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err}");
        // --name replaces it.
        assert_eq!(
            Device::load_or_create(&home, Some("fixed")).unwrap().name,
            "fixed"
        );
    }
}
