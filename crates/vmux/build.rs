//! Sets `VMUX_VERSION` for `vmux --version`: the crate version, and the
//! commit when built from a git checkout. Without git (a source tarball,
//! a registry build) it is the version alone; nothing here can fail the
//! build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    // Built again when HEAD moves: a commit, a checkout, a rebase.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["rev-parse", "--symbolic-full-name", "HEAD"])
            .and_then(|r| git(&["rev-parse", "--git-path", &r])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    match commit {
        Some(commit) => println!("cargo:rustc-env=VMUX_VERSION={version} ({commit})"),
        None => println!("cargo:rustc-env=VMUX_VERSION={version}"),
    }
}
