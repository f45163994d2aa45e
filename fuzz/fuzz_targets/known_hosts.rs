//! Arbitrary bytes as a `known_hosts` file, as `vmux ssh` reads it before
//! trusting a server. Whatever the file holds, a host key just recorded for
//! a name is then known for that name (unless a line revokes it), and the
//! verdict on it before recording was never "known".
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ssh_key::PublicKey;
use vmux_ssh::known_hosts::{self, KnownHosts, Verdict};

/// A host key made with `ssh-keygen -t ed25519` for the fuzz corpus.
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vmux-fuzz-kh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = known_hosts::parse(&text);
    // The first line names the host; the rest is the file.
    let (name, _) = text.split_once('\n').unwrap_or((&text, ""));
    let name: String = name
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(64)
        .collect();
    if name.is_empty() || name.starts_with('#') {
        return;
    }
    let path = dir().join("known_hosts");
    std::fs::write(&path, data).expect("write known_hosts");
    let Ok(mut known) = KnownHosts::load(vec![path]) else {
        return;
    };
    let key = PublicKey::from_openssh(KEY).expect("fixture key");
    let before = known.check(&name, &key);
    if matches!(before, Verdict::Revoked { .. } | Verdict::Known) {
        return;
    }
    known.add(&name, &key).expect("record the key");
    assert!(
        matches!(known.check(&name, &key), Verdict::Known),
        "{name:?} not known after recording it"
    );
});
