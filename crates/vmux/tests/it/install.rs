//! Installed like a tool: `vmux completions SHELL` loads in each shell, and
//! every page `vmux man DIR` writes renders with `man -l`.

use std::path::Path;
use std::process::Command;

use crate::support::process::VMUX;

fn vmux(args: &[&str]) -> String {
    let out = Command::new(VMUX).args(args).output().unwrap();
    assert!(out.status.success(), "vmux {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `shell` is installed; without it, only a skip that says so, and
/// none where VMUX_REQUIRE_SHELLS=1 (CI installs all three).
fn present(shell: &str) -> bool {
    let found = Command::new(shell)
        .args(["-c", "exit 0"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = std::env::var("VMUX_REQUIRE_SHELLS").is_ok_and(|v| v == "1");
        assert!(!required, "{shell} is missing, and VMUX_REQUIRE_SHELLS=1");
        eprintln!("SKIPPED: {shell} is not installed; its completion script was not loaded");
    }
    found
}

/// Runs `shell -c script` with the completion script's path as `$1`
/// (`$argv[1]` in fish); returns its stdout.
fn run_in(shell: &str, script: &str, file: &Path) -> String {
    // sh-like shells take the first argument after the script as $0.
    let zeroth: &[&str] = if shell == "fish" { &[] } else { &["sh"] };
    let out = Command::new(shell)
        .args(["-c", script])
        .args(zeroth)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{shell} -c {script:?}: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = vmux(&["completions", shell]);
        assert!(
            script.contains("tray") && script.contains("completions"),
            "{shell}: {script}"
        );
        let file = dir.path().join(format!("vmux.{shell}"));
        std::fs::write(&file, &script).unwrap();
        if !present(shell) {
            continue;
        }
        let parsed = Command::new(shell).arg("-n").arg(&file).output().unwrap();
        assert!(parsed.status.success(), "{shell} -n: {parsed:?}");
        // Loaded, the shell knows how to complete vmux.
        match shell {
            "bash" => {
                let out = run_in("bash", "source \"$1\" && complete -p vmux", &file);
                assert!(out.contains("vmux"), "{out}");
            }
            "zsh" => {
                let out = run_in(
                    "zsh",
                    "autoload -U compinit && compinit -u -D && source \"$1\" && print -r -- $_comps[vmux]",
                    &file,
                );
                assert!(out.contains("_vmux"), "{out}");
            }
            _ => {
                let out = run_in("fish", "source $argv[1]; complete -C 'vmux tr'", &file);
                assert!(out.contains("tray"), "{out}");
            }
        }
    }
}

#[test]
fn every_manual_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    let said = vmux(&["man", dir.path().to_str().unwrap()]);
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for page in [
        "vmux.1",
        "vmux-tray.1",
        "vmux-agent.1",
        "vmux-key-new.1",
        "vmux-man.1",
    ] {
        assert!(names.iter().any(|n| n == page), "no {page} in {names:?}");
    }
    assert!(
        said.contains(&format!("Wrote {} manual pages", pages.len())),
        "{said}"
    );
    for page in &pages {
        let out = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(page)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let stem = page.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            out.status.success() && out.stderr.is_empty() && text.contains(&format!("{stem}(1)")),
            "man -l {}: {out:?}",
            page.display()
        );
    }
}
