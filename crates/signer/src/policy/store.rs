//! `key-policies.json`: each key's policy, by the key's `SHA256:`
//! fingerprint (so renaming an identity keeps its policy, and a key removed
//! and imported again is as restricted as it was).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vmux_link::home::{Home, StateFile};

use super::Policy;
use crate::error::{Error, Result};

/// `key-policies.json` in the signer's state directory; larger than 1 MiB
/// is not a file we wrote.
pub const FILE: StateFile = StateFile::new("key-policies.json", 1 << 20);

/// Every key's policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    version: u32,
    keys: BTreeMap<String, Policy>,
}

impl Policies {
    /// Reads the policies in `home`; none when there is no file.
    pub fn load(home: &Home) -> Result<Self> {
        let path = FILE.path(home);
        let Some(bytes) = FILE.read(home)? else {
            return Ok(Self::default());
        };
        let policies: Policies = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: path.clone(),
            why: format!("not a policy file: {e}"),
        })?;
        if policies.version > 1 {
            return Err(Error::Corrupt {
                path,
                why: format!("version {} (this build reads version 1)", policies.version),
            });
        }
        Ok(policies)
    }

    /// Sets (or, for the default, clears) the policy of the key with
    /// `fingerprint`, under the file's lock.
    pub fn set(home: &Home, fingerprint: &str, policy: Policy) -> Result<()> {
        let path = FILE.path(home);
        FILE.locked(&path, || {
            let mut all = Self::load(home)?;
            all.version = 1;
            if policy.is_default() {
                all.keys.remove(fingerprint);
            } else {
                all.keys.insert(fingerprint.to_owned(), policy);
            }
            let mut bytes = serde_json::to_vec_pretty(&all).map_err(|e| Error::Corrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
            bytes.push(b'\n');
            FILE.write_at(&path, &bytes)?;
            Ok(())
        })
    }

    /// The policy of the key with `fingerprint` (the default when none).
    pub fn for_key(&self, fingerprint: &str) -> Policy {
        self.keys.get(fingerprint).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::Rule;

    #[test]
    fn policies_are_kept_by_fingerprint_and_defaults_take_no_room() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned()).unwrap();
        assert!(
            Policies::load(&home)
                .unwrap()
                .for_key("SHA256:x")
                .is_default()
        );
        let strict = Policy {
            hosts: Some(vec!["prod-db".into()]),
            forwarded: Rule::Deny,
            ..Policy::default()
        };
        Policies::set(&home, "SHA256:x", strict.clone()).unwrap();
        assert_eq!(Policies::load(&home).unwrap().for_key("SHA256:x"), strict);
        assert!(
            Policies::load(&home)
                .unwrap()
                .for_key("SHA256:y")
                .is_default()
        );
        Policies::set(&home, "SHA256:x", Policy::default()).unwrap();
        let text = std::fs::read_to_string(FILE.path(&home)).unwrap();
        assert!(!text.contains("SHA256:x"), "{text}");
        std::fs::write(
            FILE.path(&home),
            "{\"version\":1,\"keys\":{\"k\":{\"hosts\":1}}}",
        )
        .unwrap();
        assert!(Policies::load(&home).is_err());
    }
}
