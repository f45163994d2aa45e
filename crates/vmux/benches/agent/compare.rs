//! Driving agents with the blocking client, one connection or many, and
//! the rows of the table: vmux beside ssh-agent where ssh-agent has a
//! counterpart.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use vmux_proto::agent::Response;

use crate::client::Client;
use crate::stats::{Run, Stats, human, rate};

/// Chunks each side's samples are taken in, alternating between the two
/// agents, so drift in a shared VM hits both alike.
pub const ROUNDS: usize = 4;

/// What a round's first and last answers must look like.
pub type Check<'a> = &'a (dyn Fn(&Response) -> bool + Sync);

/// Runs `frame` `n` times on one connection to `sock`.
pub fn sequential(sock: &Path, frame: &[u8], n: usize, check: Check) -> Run {
    concurrent(sock, frame, 1, n, check)
}

/// `connections` clients at once, `n` requests each, all started together.
pub fn concurrent(sock: &Path, frame: &[u8], connections: usize, n: usize, check: Check) -> Run {
    let barrier = Barrier::new(connections + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut client = Client::connect(sock).unwrap();
                    client.round_trip(frame).unwrap();
                    assert!(check(&client.response()), "{:?}", client.response());
                    let mut samples = Vec::with_capacity(n);
                    barrier.wait();
                    for _ in 0..n {
                        let t = Instant::now();
                        client.round_trip(frame).unwrap();
                        samples.push(t.elapsed());
                    }
                    assert!(check(&client.response()), "{:?}", client.response());
                    samples
                })
            })
            .collect();
        barrier.wait();
        let wall = Instant::now();
        let samples: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (samples, wall.elapsed())
    })
}

/// Both agents, alternating in [`ROUNDS`] chunks after a 10 % warm-up;
/// `measure(vmux_side, n)` is one chunk.
pub fn compare(case: &str, n: usize, measure: &dyn Fn(bool, usize) -> Run) -> Row {
    measure(true, (n / 10).max(1));
    measure(false, (n / 10).max(1));
    let (mut vs, mut vw, mut ss, mut sw) = (Vec::new(), Duration::ZERO, Vec::new(), Duration::ZERO);
    for _ in 0..ROUNDS {
        let (s, w) = measure(true, n / ROUNDS);
        vs.extend(s);
        vw += w;
        let (s, w) = measure(false, n / ROUNDS);
        ss.extend(s);
        sw += w;
    }
    Row::new(case, Stats::of(vs, vw), Some(Stats::of(ss, sw)))
}

/// One line of the table.
pub struct Row {
    pub case: String,
    pub vmux: Stats,
    pub ssh: Option<Stats>,
    /// Whether the throughput column means anything for this case.
    pub throughput: bool,
}

impl Row {
    pub fn new(case: &str, vmux: Stats, ssh: Option<Stats>) -> Row {
        let row = Row {
            case: case.to_owned(),
            vmux,
            ssh,
            throughput: true,
        };
        row.progress();
        row
    }

    /// A row of durations that are parts of a request, not requests.
    pub fn latency_only(case: &str, vmux: Stats, ssh: Option<Stats>) -> Row {
        let row = Row {
            case: case.to_owned(),
            vmux,
            ssh,
            throughput: false,
        };
        row.progress();
        row
    }

    pub fn header() {
        println!(
            "| case | n | vmux p50 | vmux p99 | vmux throughput | ssh-agent p50 | ssh-agent p99 | ssh-agent throughput | p50 ratio vmux/ssh-agent | throughput ratio vmux/ssh-agent |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
    }

    /// On stderr as each case ends; the table comes at the end.
    fn progress(&self) {
        eprintln!(
            "  {}: vmux p50 {}{}",
            self.case,
            human(self.vmux.p50),
            self.ssh
                .as_ref()
                .map(|s| format!(", ssh-agent p50 {}", human(s.p50)))
                .unwrap_or_default()
        );
    }

    pub fn print(&self) {
        let tput = |s: &Stats| {
            if self.throughput {
                rate(s.throughput)
            } else {
                "—".to_owned()
            }
        };
        let (ssh, ratios) = match &self.ssh {
            Some(ssh) => (
                format!("{} | {} | {}", human(ssh.p50), human(ssh.p99), tput(ssh)),
                format!(
                    "{:.2} | {}",
                    self.vmux.p50.as_secs_f64() / ssh.p50.as_secs_f64(),
                    if self.throughput {
                        format!("{:.2}", self.vmux.throughput / ssh.throughput)
                    } else {
                        "—".to_owned()
                    }
                ),
            ),
            None => ("— | — | —".to_owned(), "— | —".to_owned()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {ssh} | {ratios} |",
            self.case,
            self.vmux.n,
            human(self.vmux.p50),
            human(self.vmux.p99),
            tput(&self.vmux),
        );
    }
}
