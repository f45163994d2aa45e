//! Cold mDNS discovery, inside a network namespace this bench creates.
//!
//! No traffic may leave the machine (mDNS only in a network namespace
//! holding nothing but `lo`). As in
//! crates/link/tests/discovery.rs, the bench re-executes itself under
//! `unshare --net`; the child brings up the namespace's `lo`, refuses to go
//! on unless `lo` is its only interface, and only then advertises and
//! browses (restricted to loopback on top of that). It prints its samples;
//! the parent reads them.

use std::process::Command;
use std::time::{Duration, Instant};

use vmux_link::Fingerprint;
use vmux_link::discovery::{self, Scope};

use crate::compare::Row;
use crate::stats::Stats;

/// Set in the child that runs inside the namespace.
pub const IN_NETNS: &str = "VMUX_BENCH_IN_NETNS";
const COLD: &str = "discovery-cold-ns";
const SETTLED: &str = "discovery-settled-ns";

/// Runs the child in a fresh network namespace and turns its samples into
/// rows; `Err` says why no namespace could be made.
pub fn rows(n: usize) -> Result<Vec<Row>, String> {
    let exe = std::env::current_exe().unwrap();
    let mut attempts = Vec::new();
    // As root a plain network namespace will do; otherwise try a user
    // namespace in which we are root.
    for prefix in [
        &["--net", "--"][..],
        &["--user", "--map-root-user", "--net", "--"][..],
    ] {
        let out = Command::new("unshare")
            .args(prefix)
            .arg(&exe)
            .env(IN_NETNS, n.to_string())
            .output()
            .map_err(|e| format!("cannot run `unshare` ({e}); install util-linux"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            attempts.push(format!("unshare {}: {}", prefix.join(" "), stderr.trim()));
            continue;
        }
        let samples = |tag: &str| -> Vec<Duration> {
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix(tag))
                .map(|ns| Duration::from_nanos(ns.trim().parse().unwrap()))
                .collect()
        };
        let (cold, settled) = (samples(COLD), samples(SETTLED));
        assert_eq!(
            (cold.len(), settled.len()),
            (n, n),
            "child said:\n{stdout}{stderr}"
        );
        return Ok(vec![
            Row::latency_only(
                "cold discovery in a private netns, browse started with the advertisement (includes mdns-sd's ~750 ms name probing)",
                Stats::sequential(cold),
                None,
            ),
            Row::latency_only(
                "cold discovery in a private netns, a fresh browser, the advertisement already up",
                Stats::sequential(settled),
                None,
            ),
        ]);
    }
    Err(attempts.join("; "))
}

/// The child: `n` samples of each case, printed as `TAG NANOS` lines.
pub fn child(n: usize) {
    let interfaces = || -> Vec<String> {
        // Unlike /sys/class/net, /proc/self/net follows our namespace.
        let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
        dev.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_owned())
            .collect()
    };
    assert_eq!(
        interfaces(),
        ["lo"],
        "not in a private network namespace; refusing to run mDNS"
    );
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("`ip` (iproute2) is needed");
    assert!(up.success());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        for i in 0..n {
            // A new signer each time: nothing cached anywhere.
            let fp = Fingerprint::of(format!("bench signer {i}").as_bytes());
            let advertisement =
                discovery::advertise(&format!("Bench Signer {i}"), port, &fp, Scope::Loopback)
                    .unwrap();
            println!("{COLD} {}", browse(&fp).await.as_nanos());
            // mDNS answers a record at most once a second (RFC 6762 §6):
            // let the answers to the browse above age out first.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            println!("{SETTLED} {}", browse(&fp).await.as_nanos());
            advertisement.withdraw().await;
        }
    });
}

/// A fresh browser until it resolves the signer with `fp`.
async fn browse(fp: &Fingerprint) -> Duration {
    let started = Instant::now();
    let found = discovery::browse(
        Scope::Loopback,
        std::slice::from_ref(fp),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    assert_eq!(found.first().map(|f| &f.fingerprint), Some(fp), "{found:?}");
    took
}
