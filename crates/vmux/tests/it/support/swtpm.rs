//! A software TPM 2.0 (swtpm) on 127.0.0.1 with a throwaway state, and the
//! environment that points tpm2-pkcs11 and tpm2-tools at it.
//!
//! Missing swtpm or tpm2-pkcs11: SKIPPED, unless `VMUX_REQUIRE_TPM=1` (CI)
//! fails the test.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running swtpm; killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    /// tpm2-pkcs11's store (its sqlite database), kept apart from any home.
    pub store: PathBuf,
}

/// Whether the TPM tests must run (CI) rather than skip.
pub fn required() -> bool {
    std::env::var("VMUX_REQUIRE_TPM").is_ok_and(|v| v == "1")
}

/// Starts swtpm in `dir`, or says why not (`None` when the tools are
/// missing and the TPM tests may skip).
pub fn start(dir: &Path, test: &str) -> Option<Swtpm> {
    let missing = [
        (
            "swtpm",
            Command::new("swtpm").arg("--version").output().is_ok(),
        ),
        (
            "tpm2-tools",
            Command::new("tpm2_getcap").arg("-v").output().is_ok(),
        ),
        ("tpm2-pkcs11", vmux_keys::tpm::find_module().is_some()),
    ];
    let missing: Vec<&str> = missing
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        let what = format!("{} not installed", missing.join(", "));
        assert!(!required(), "{what}, and VMUX_REQUIRE_TPM=1");
        eprintln!("SKIPPED {test}: {what}");
        return None;
    }
    let state = dir.join("swtpm");
    let store = dir.join("tpm2-pkcs11");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    // The ports are free when picked; if another process takes one first,
    // swtpm exits and others are tried. The swtpm TCTI finds the control
    // channel on the next port up.
    for _ in 0..5 {
        let port = free_port_pair();
        let ctrl = port + 1;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut tpm = Swtpm {
            child,
            port,
            store: store.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(tpm);
            }
            if tpm.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("swtpm did not start");
}

/// A port that is free, with the next one free too.
fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Swtpm {
    /// The TCTI string for this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// What a process using this TPM through tpm2-pkcs11 needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TPM2_PKCS11_TCTI".into(), self.tcti()),
            ("TPM2_PKCS11_STORE".into(), self.store.display().to_string()),
            // Its FAPI backend is unprovisioned here; use the database only.
            ("TPM2_PKCS11_BACKEND".into(), "esysdb".into()),
        ]
    }

    /// Runs a tpm2-tools command against this TPM.
    pub fn tool(&self, program: &str, args: &[&str]) -> Output {
        let out = Command::new(program)
            .args(args)
            .env("TPM2TOOLS_TCTI", self.tcti())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The TPM's dictionary-attack failure counter.
    pub fn lockout_counter(&self) -> u32 {
        let out = self.tool("tpm2_getcap", &["properties-variable"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("TPM2_PT_LOCKOUT_COUNTER"))
            .unwrap();
        let hex = line.rsplit("0x").next().unwrap().trim();
        u32::from_str_radix(hex, 16).unwrap()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
