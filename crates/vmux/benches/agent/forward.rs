//! A sign forwarded over the link: client → `vmux agent` → Noise/TCP on
//! loopback → the in-process signer → approver → back, beside ssh-agent
//! signing with its own P-256 key.
//!
//! "Approval excluded" means: the approver times each request's window on
//! the signer, from the sheet reaching it to the "Approved" banner. That
//! window holds the approval (instant here), the user verification
//! (bcrypt-pbkdf decryption of the key with its passphrase, slow by
//! design) and the P-256 signature. What the client measured minus that
//! window is what vmux adds: the agent, the link both ways, the signer's
//! checks, its reading of the identity files, its log. The signature is
//! inside the window while ssh-agent's own is in its figure, so comparing
//! "added" with ssh-agent's whole sign favours ssh-agent.
//!
//! Every process involved sits idle through the window (a tenth of a
//! second), and waking idle threads on idle cores is most of what is
//! added. So each ssh-agent sample is taken after ssh-agent, too, sat
//! idle for as long as that window: like with like.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::{Client, is_p256_signature};
use crate::compare::Row;
use crate::signer::BenchSigner;
use crate::stats::Stats;

/// The forwarded requests' client latency, window and added latency.
pub fn forwarded(
    signer: &BenchSigner,
    vmux_sock: &Path,
    vmux_frame: &[u8],
    ssh_sock: &Path,
    ssh_frame: &[u8],
    n: usize,
) -> Vec<Row> {
    let window_wait = Duration::from_secs(30);
    let mut vmux = Client::connect(vmux_sock).unwrap();
    let mut ssh = Client::connect(ssh_sock).unwrap();
    let mut one = || {
        let started = Instant::now();
        vmux.round_trip(vmux_frame).unwrap();
        let total = started.elapsed();
        assert!(is_p256_signature(&vmux.response()), "{:?}", vmux.response());
        let window = signer.next_window(window_wait);
        // Sequential requests: this window must lie inside this request.
        // (The approver reads its clock on being woken, so the banner can
        // reach it a little after the answer reached us.)
        assert!(
            window.sheet >= started && window.signed <= started + total + Duration::from_millis(20),
            "a window not of this request"
        );
        let window = window.len().min(total);
        std::thread::sleep(window);
        let started = Instant::now();
        ssh.round_trip(ssh_frame).unwrap();
        let ssh_took = started.elapsed();
        assert!(is_p256_signature(&ssh.response()), "{:?}", ssh.response());
        (total, window, ssh_took)
    };
    // Warm-up: the first request reads the identity files cold.
    for _ in 0..2 {
        one();
    }
    let (mut totals, mut windows, mut added, mut ssh_samples) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (total, window, ssh_took) = one();
        totals.push(total);
        windows.push(window);
        added.push(total - window);
        ssh_samples.push(ssh_took);
    }
    let ssh = Stats::sequential(ssh_samples);
    vec![
        Row::latency_only(
            "forwarded sign over the link, whole request (approver answers at once; passphrase verification included) vs ssh-agent P-256 sign after as long idle",
            Stats::sequential(totals),
            Some(ssh.clone()),
        ),
        Row::latency_only(
            "… of which the signer's approval window (approval + passphrase decryption + signature)",
            Stats::sequential(windows),
            None,
        ),
        Row::latency_only(
            "… approval window excluded: what forwarding adds (agent, link both ways, signer checks) vs ssh-agent's whole P-256 sign after as long idle",
            Stats::sequential(added),
            Some(ssh),
        ),
    ]
}

/// Signing with the session-certificate key (vmux) and ssh-agent's P-256
/// key, each request after both agents sat idle for `gap`: what a login
/// now and then meets, rather than a hot loop.
pub fn after_idle(
    vmux_sock: &Path,
    vmux_frame: &[u8],
    ssh_sock: &Path,
    ssh_frame: &[u8],
    n: usize,
    gap: Duration,
) -> Row {
    let mut clients = [
        Client::connect(vmux_sock).unwrap(),
        Client::connect(ssh_sock).unwrap(),
    ];
    let frames = [vmux_frame, ssh_frame];
    let mut samples = [Vec::new(), Vec::new()];
    for i in 0..n + 2 {
        for side in 0..2 {
            std::thread::sleep(gap);
            let started = Instant::now();
            clients[side].round_trip(frames[side]).unwrap();
            let took = started.elapsed();
            assert!(is_p256_signature(&clients[side].response()));
            // The first two are warm-up.
            if i >= 2 {
                samples[side].push(took);
            }
        }
    }
    let [vmux, ssh] = samples;
    Row::latency_only(
        &format!(
            "sign 211 B after {} ms idle, session-cert key (vmux) vs P-256 key (ssh-agent), 1 connection",
            gap.as_millis()
        ),
        Stats::sequential(vmux),
        Some(Stats::sequential(ssh)),
    )
}
