//! What the CA is willing to sign: `ca.json` in the signer's state dir.

use crate::{Error, Result};

/// Default and ceiling for a certificate's lifetime: 8 hours.
pub const DEFAULT_MAX_VALIDITY: u64 = 8 * 60 * 60;
/// No policy may allow more than this (one week): a session certificate
/// that outlives a week is a standing credential, not a session.
pub const MAX_VALIDITY_CEILING: u64 = 7 * 24 * 60 * 60;

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
}

impl Policy {
    /// 8 hours, the signer user's login name, certificates offered.
    pub fn default_for_this_user() -> Self {
        Self {
            max_validity_secs: DEFAULT_MAX_VALIDITY,
            principals: login_name().into_iter().collect(),
            auto_issue: true,
        }
    }

    /// Checks the rules make sense before they are saved.
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
                    "\"{p}\" is not a valid principal: use login names without spaces or commas"
                )));
            }
        }
        Ok(())
    }
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
