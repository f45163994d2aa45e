//! Load: many clients at once on a real `vmux agent`, listing identities
//! and signing with the session certificate's key, for a while. Zero errors,
//! every client served, and the agent's resident memory flat.
//!
//! "Flat": the agent's VmRSS is sampled every `VMUX_LOAD_SAMPLE_MS`; after
//! a warm-up (a fifth of the run, at least 1 s, and until every client has
//! replaced its connection once: buffers for every connection, the
//! runtime's threads), no sample, including one taken after the clients
//! have gone, may exceed the first post-warm-up sample by more than 10 %.
//! A leak of a few bytes per request or per connection would break that
//! within seconds at these rates.
//!
//! Each client alternates the two requests and reconnects every 50
//! requests. The CI bound is 64 clients for 5 s. The full run (256 clients, 60 s) is
//! scripts/load.sh, which sets `VMUX_LOAD_CLIENTS` and `VMUX_LOAD_SECS`.
//! The session certificate is approved through the signer's pty.

use crate::support::clients;
use crate::support::paired;
use crate::support::process;

use vmux_testkit::agent_client as client;
use vmux_testkit::memory;
use vmux_testkit::stats;

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use client::{CERT_COMMENT, Client, is_list, is_p256_signature, list_frame, sign_frame};
use clients::openssh;
use memory::{Sampler, mib};
use paired::{Paired, WAIT};
use process::Proc;
use stats::{Stats, human, rate};

/// How far above the first post-warm-up sample RSS may go.
const FLAT: f64 = 1.10;
/// Requests per connection before a client reconnects: clients come and
/// go (ssh opens one per login), so their set-up and teardown are part of
/// the steady state being measured.
const PER_CONNECTION: usize = 50;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A signer (plain UI in a pty) with one identity, a paired agent, and its
/// session certificate approved.
fn start() -> (Paired, Proc, PathBuf) {
    let mut paired = Paired::setup().start();
    let mut agent = Proc::spawn(&paired.device_home, &["agent"]);
    let line = agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let sock = PathBuf::from(
        line.split("SSH_AUTH_SOCK=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap(),
    );
    paired.approve_certificate();
    client::wait_identities(&sock, "its session certificate", WAIT, |ids| {
        ids.iter().any(|i| i.comment == CERT_COMMENT)
    });
    (paired, agent, sock)
}

/// What one client did.
#[derive(Default)]
struct Tally {
    lists: Vec<Duration>,
    signs: Vec<Duration>,
    errors: Vec<String>,
    /// When its first connection was closed and replaced.
    reconnected: Option<Instant>,
}

/// Alternates list and sign for `run` from `start`, on a new connection
/// every [`PER_CONNECTION`] requests.
fn client(sock: &Path, list: &[u8], sign: &[u8], start: &Barrier, run: Duration) -> Tally {
    let mut tally = Tally::default();
    let mut connection = Client::connect(sock);
    start.wait();
    let until = Instant::now() + run;
    let mut signing = false;
    let mut on_this = 0;
    while Instant::now() < until {
        if on_this == PER_CONNECTION {
            connection = Client::connect(sock);
            on_this = 0;
            tally.reconnected.get_or_insert_with(Instant::now);
        }
        let client = match &mut connection {
            Ok(c) => c,
            Err(e) => {
                tally.errors.push(format!("connect: {e}"));
                return tally;
            }
        };
        let frame = if signing { sign } else { list };
        let started = Instant::now();
        if let Err(e) = client.round_trip(frame) {
            tally.errors.push(format!("i/o: {e}"));
            return tally;
        }
        let took = started.elapsed();
        let response = vmux_proto::agent::Response::decode(&client.body);
        match (signing, response) {
            (true, Ok(r)) if is_p256_signature(&r) => tally.signs.push(took),
            (false, Ok(r)) if is_list(&r, 2) => tally.lists.push(took),
            (_, other) => tally.errors.push(format!("unexpected answer: {other:?}")),
        }
        signing = !signing;
        on_this += 1;
    }
    tally
}

#[test]
fn many_clients_list_and_sign_without_errors_and_with_flat_memory() {
    let clients = env("VMUX_LOAD_CLIENTS", 64) as usize;
    let secs = env("VMUX_LOAD_SECS", 5);
    let period = Duration::from_millis(env("VMUX_LOAD_SAMPLE_MS", 250));
    let (_paired, agent, sock) = start();

    let ids = Client::connect(&sock).unwrap().identities();
    let cert = ids.iter().find(|i| i.comment == CERT_COMMENT).unwrap();
    let login = ids.iter().find(|i| i.comment == "work").unwrap();
    let (list, sign) = (list_frame(), sign_frame(&cert.key_blob, &login.key_blob));

    let run = Duration::from_secs(secs);
    let start = Barrier::new(clients + 1);
    let idle = memory::rss_kib(agent.pid());
    let (tallies, samples, wall, began) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| scope.spawn(|| client(&sock, &list, &sign, &start, run)))
            .collect();
        // Everyone connected: the clock starts now.
        start.wait();
        let began = Instant::now();
        let sampler = Sampler::start(vec![agent.pid()], period);
        let tallies: Vec<Tally> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (tallies, sampler.finish(), began.elapsed(), began)
    });
    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    let starved = tallies
        .iter()
        .filter(|t| t.lists.is_empty() || t.signs.is_empty())
        .count();
    let lists: Vec<Duration> = tallies.iter().flat_map(|t| t.lists.clone()).collect();
    let signs: Vec<Duration> = tallies.iter().flat_map(|t| t.signs.clone()).collect();

    println!(
        "load: {clients} clients for {:.1?} (list and session-cert sign alternating, a new connection every {PER_CONNECTION} requests)",
        wall
    );
    for (what, samples) in [("list", lists), ("sign", signs)] {
        let stats = Stats::of(samples, wall);
        println!(
            "  {what}: {} requests, p50 {}, p99 {}, {}",
            stats.n,
            human(stats.p50),
            human(stats.p99),
            rate(stats.throughput)
        );
    }
    println!("  errors: {}, clients starved: {starved}", errors.len());
    println!(
        "  agent VmRSS: idle {} before the load; samples every {period:?}:",
        mib(idle)
    );
    let series: Vec<String> = samples
        .iter()
        .map(|(at, kib)| format!("{:.1}s {}", at.as_secs_f64(), mib(kib[0])))
        .collect();
    println!("  {}", series.join(", "));

    assert!(
        errors.is_empty(),
        "{} errors, first: {}",
        errors.len(),
        errors[0]
    );
    assert_eq!(starved, 0, "clients that never got an answer of each kind");
    // The warm-up ends once every client has also closed a connection and
    // opened another (and no earlier than a fifth of the run, or 1 s).
    let reconnected = tallies
        .iter()
        .map(|t| t.reconnected.map(|at| at.saturating_duration_since(began)))
        .max()
        .flatten()
        .expect("a client never reconnected; too short a run for this machine");
    let warm_up = (run / 5).max(Duration::from_secs(1)).max(reconnected);
    let after: Vec<u64> = samples
        .iter()
        .filter(|(at, _)| *at >= warm_up)
        .map(|(_, kib)| kib[0])
        .collect();
    assert!(
        after.len() >= 3,
        "too few samples after the {warm_up:?} warm-up; run longer (VMUX_LOAD_SECS)"
    );
    let baseline = after[0];
    let peak = *after.iter().max().unwrap();
    println!(
        "  after the {warm_up:?} warm-up: first {}, peak {}, last {} (flat: peak ≤ {FLAT} × first)",
        mib(baseline),
        mib(peak),
        mib(*after.last().unwrap())
    );
    assert!(
        peak as f64 <= baseline as f64 * FLAT,
        "agent memory grew under load: {} after the warm-up, peak {}",
        mib(baseline),
        mib(peak)
    );

    // And a real client still finds the agent well afterwards.
    let out = openssh("ssh-add", &sock, &["-l"], &[]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains(CERT_COMMENT),
        "{listed}"
    );
}
