//! The state directory through the binary: a hostile state file (1 GiB,
//! sparse) is refused at once with an error naming it, and nothing else in
//! the directory is touched.

use crate::support::clients;
use crate::support::process;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use clients::text;
use process::VMUX;

/// Every entry of `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (e.path(), meta.len(), meta.modified().unwrap())
        })
        .collect();
    all.sort();
    all
}

/// A state directory holding only `name`, 1 GiB of holes.
fn home_with_huge(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = home.join(name);
    std::fs::File::create(&file)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    (dir, home, file)
}

/// Runs `vmux ARGS` on `home`; asserts it failed within a second or two,
/// naming `file` and its cap, and left the directory as it was.
fn refused(home: &Path, file: &Path, args: &[&str], cap: &str) {
    let before = listing(home);
    let started = Instant::now();
    let out = Command::new(VMUX)
        .args(args)
        .env("VMUX_HOME", home)
        .env("VMUX_LOG", "warn")
        .output()
        .unwrap();
    let took = started.elapsed();
    let said = text(&out);
    assert!(!out.status.success(), "vmux {args:?} succeeded: {said}");
    assert!(
        said.contains(&file.display().to_string()) && said.contains(cap),
        "vmux {args:?}: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(listing(home), before, "vmux {args:?} touched the state");
}

#[test]
fn a_one_gib_trust_store_is_refused_at_once_naming_it() {
    let (_dir, home, trust) = home_with_huge("trust.json");
    refused(&home, &trust, &["peers", "list"], "larger than 1 MiB");
}

#[test]
fn a_one_gib_identity_registry_is_refused_at_once_naming_it() {
    let (_dir, home, identities) = home_with_huge("identities.json");
    refused(&home, &identities, &["key", "list"], "larger than 4 MiB");
}
