//! Latency samples reduced to p50, p99 and throughput. Shared by the link
//! bench, the agent bench and the load test, so every table reads its
//! samples the same way.

use std::time::Duration;

/// One run: per-request latencies and the run's wall time.
pub type Run = (Vec<Duration>, Duration);

/// A run reduced.
#[derive(Clone, Debug)]
pub struct Stats {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    /// Requests per second over the wall time of the run.
    pub throughput: f64,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>, wall: Duration) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort();
        Stats {
            n: samples.len(),
            p50: quantile(&samples, 0.50),
            p99: quantile(&samples, 0.99),
            throughput: samples.len() as f64 / wall.as_secs_f64(),
        }
    }

    /// For samples taken one after another, with nothing else between.
    pub fn sequential(samples: Vec<Duration>) -> Stats {
        let wall = samples.iter().sum();
        Stats::of(samples, wall)
    }
}

/// The `q` quantile of sorted `samples` (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// `d` in the unit that keeps it readable: µs, ms or s.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// A rate, with thousands separated.
pub fn rate(per_second: f64) -> String {
    let whole = per_second.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}
