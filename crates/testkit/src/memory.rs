//! Resident memory of a process, read from `/proc`, and a sampler that
//! reads it on a fixed period in the background. Used by the agent bench
//! and the load test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Resident memory (VmRSS) of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Samples `pids`' RSS every `period` until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Duration, Vec<u64>)>>,
}

impl Sampler {
    pub fn start(pids: Vec<u32>, period: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut next = started;
            while !flag.load(Ordering::Relaxed) {
                samples.push((
                    started.elapsed(),
                    pids.iter().map(|&p| rss_kib(p)).collect(),
                ));
                next += period;
                // A fixed schedule, not a fixed gap: a slow read does not
                // stretch the series.
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            samples.push((
                started.elapsed(),
                pids.iter().map(|&p| rss_kib(p)).collect(),
            ));
            samples
        });
        Sampler { stop, thread }
    }

    /// Stops and returns (time since start, RSS of each pid in KiB) per sample.
    pub fn finish(self) -> Vec<(Duration, Vec<u64>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
