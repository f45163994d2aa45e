//! Link latency on loopback: first-contact handshake (to the pairing code),
//! pinned handshake, and an envelope round trip on a running session.
//!
//! Run: `cargo bench -p vmux-link --bench link` (set `VMUX_BENCH_N` to
//! change the sample count). Prints p50, p99 and throughput per case. The
//! same cases run in the agent bench (`cargo bench -p vmux --bench agent`),
//! whose table is the one in docs/performance.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cases;

use vmux_testkit::stats::{self, Run, Stats, human, rate};

fn report(name: &str, (samples, wall): Run) {
    let s = Stats::of(samples, wall);
    println!(
        "{name:<36} n={:<6} p50={:>10} p99={:>10} throughput={:>12}",
        s.n,
        human(s.p50),
        human(s.p99),
        rate(s.throughput)
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("VMUX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rig = cases::LinkRig::new().await;
    let first = rig.first_contact(n).await;
    rig.pair().await;
    let pinned = rig.pinned(n).await;
    let round_trips = rig.round_trips(n * 10).await;
    let codec = cases::codec(n * 10);
    println!(
        "vmux link on loopback ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    report("first-contact handshake (to code)", first);
    report("pinned handshake (to hello)", pinned);
    report("envelope round trip (sign req/resp)", round_trips);
    report("signRequest encode+decode (no I/O)", codec);
}
