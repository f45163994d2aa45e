//! A SoftHSM2 of the test's own: its configuration and token directory in
//! a temporary directory, pointed at by `SOFTHSM2_CONF`.
//!
//! Missing SoftHSM2: what needs it is SKIPPED, unless
//! `VMUX_REQUIRE_SOFTHSM=1` (CI) fails the test.

use std::path::Path;
use std::process::Command;

use super::clients::text;

/// The security officer's PIN of every token made here.
const SO_PIN: &str = "5678";

pub struct SoftHsm {
    _dir: tempfile::TempDir,
    conf: String,
    module: String,
}

impl SoftHsm {
    /// A fresh SoftHSM2 with no token yet, or `None` (after a SKIPPED
    /// note) where SoftHSM2 is not installed.
    pub fn find() -> Option<SoftHsm> {
        let Some(module) = vmux_keys::pkcs11::find_softhsm_module() else {
            assert!(
                std::env::var_os("VMUX_REQUIRE_SOFTHSM").is_none(),
                "SoftHSM2 is required but not installed"
            );
            println!("SKIPPED: SoftHSM2 not installed");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        Some(SoftHsm {
            conf: path_str(&conf),
            module: path_str(&module),
            _dir: dir,
        })
    }

    /// The configuration file, for `SOFTHSM2_CONF`.
    pub fn conf(&self) -> &str {
        &self.conf
    }

    /// The PKCS#11 module's path.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The environment that points a process at this SoftHSM2.
    pub fn env(&self) -> [(&'static str, &str); 1] {
        [("SOFTHSM2_CONF", self.conf.as_str())]
    }

    /// Makes a token `label` with user PIN `pin` in the first free slot.
    pub fn init_token(&self, label: &str, pin: &str) {
        let init = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", pin, "--so-pin", SO_PIN])
            .envs(self.env())
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", text(&init));
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}
