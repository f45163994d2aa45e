//! Running a test inside a private network namespace holding only `lo`, so
//! that mDNS can never reach a real interface: no test traffic may leave
//! the machine.

use std::process::Command;

/// Set in the copy of a test that runs inside the namespace.
const INSIDE: &str = "VMUX_TEST_IN_NETNS";

/// Outside the namespace: re-runs the test `name` (its full name, `module::test`, in this test binary) inside
/// one under `unshare --net`, asserts it passed, and returns `false`; the
/// caller returns. Inside: checks that `lo` is the only interface, brings it
/// up and returns `true`; the caller runs the test body.
///
/// Without namespaces (no privileges) the test is skipped with a note,
/// unless `VMUX_REQUIRE_NETNS` is set (CI), where it fails.
pub fn enter(name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        assert_lone_loopback();
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let run = |prefix: &[&str]| {
        Command::new("unshare")
            .args(prefix)
            .arg(&exe)
            .args(["--exact", name, "--nocapture"])
            .env(INSIDE, "1")
            .output()
    };
    let out = match run(&["--net", "--"]) {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).starts_with("unshare:") => out,
        _ => run(&["--user", "--map-root-user", "--net", "--"]).unwrap(),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.starts_with("unshare:") && std::env::var_os("VMUX_REQUIRE_NETNS").is_none() {
        println!(
            "SKIPPED: no network namespace available ({})",
            stderr.trim()
        );
        return false;
    }
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "in the namespace:\n{stdout}\n{stderr}"
    );
    false
}

/// Refuses to go on (and so to multicast) anywhere but a lone loopback.
fn assert_lone_loopback() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(
        interfaces,
        ["lo"],
        "not in a private namespace; refusing to run mDNS"
    );
    assert!(
        Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success()
    );
}
