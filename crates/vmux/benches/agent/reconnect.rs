//! Reconnecting after a signer restart: the in-process signer is stopped
//! (every socket closed, as in a crash), the agent notices, the signer
//! listens again on the same port, and we time until the agent reports
//! its session up again (`status@vmux`, polled every 100 µs; the session
//! is usable from that moment: the agent forwards on it).
//!
//! Two cases:
//! - the agent's next attempt is already waiting in the listen queue when
//!   the signer starts accepting: one pinned handshake, hellos and the
//!   key-list request (the DESIGN target's "one handshake");
//! - the signer is back at once after the agent noticed: the time is then
//!   mostly the agent's backoff before its first retry (250 ms ± 20 %).

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use vmux_agent::control::{self, STATUS};

use crate::compare::Row;
use crate::signer::BenchSigner;
use crate::stats::Stats;

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_micros(100);

pub fn reconnect(signer: &mut BenchSigner, vmux_sock: &Path, n: usize) -> Vec<Row> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = |up: bool| wait_connected(&runtime, vmux_sock, up);
    let (mut queued, mut quick) = (Vec::new(), Vec::new());
    for i in 0..2 * n {
        status(true);
        signer.stop();
        status(false);
        let listener = TcpListener::bind(signer.addr).unwrap();
        let waiting = i % 2 == 0;
        if waiting {
            wait_queued(signer.addr.port());
        }
        signer.serve(listener);
        let listening = Instant::now();
        status(true);
        let took = listening.elapsed();
        if waiting { &mut queued } else { &mut quick }.push(took);
    }
    vec![
        Row::latency_only(
            "reconnect after a signer restart, the agent's attempt already queued: listening again → session up (one pinned handshake + hellos)",
            Stats::sequential(queued),
            None,
        ),
        Row::latency_only(
            "reconnect after a quick signer restart: listening again → session up (includes the agent's first-retry backoff, 250 ms ± 20 %)",
            Stats::sequential(quick),
            None,
        ),
    ]
}

/// Polls the agent's `status@vmux` until its session is up (`true`) or
/// down.
fn wait_connected(runtime: &tokio::runtime::Runtime, sock: &Path, up: bool) {
    let deadline = Instant::now() + WAIT;
    let connected = || {
        let status = runtime.block_on(control::call(sock, STATUS)).unwrap();
        status.connected_to.is_some()
    };
    while connected() != up {
        assert!(
            Instant::now() < deadline,
            "the agent's session never went {}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until a connection sits in the accept queue of our listener on
/// 127.0.0.1:`port` (for a listening socket, /proc/net/tcp's rx_queue is
/// that queue's length).
fn wait_queued(port: u16) {
    let local = format!("0100007F:{port:04X}");
    let deadline = Instant::now() + WAIT;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let queued = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str())
                && fields.get(3) == Some(&"0A")
                && fields
                    .get(4)
                    .and_then(|q| q.split(':').nth(1))
                    .is_some_and(|rx| u64::from_str_radix(rx, 16).is_ok_and(|n| n > 0))
        });
        if queued {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never tried to reconnect"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
