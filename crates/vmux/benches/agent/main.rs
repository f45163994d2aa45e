//! vmux against OpenSSH's `ssh-agent`, side by side in one run on the same
//! machine, with the same key type (ECDSA P-256): the table in
//! docs/performance.md.
//!
//! Run: `cargo bench -p vmux --bench agent`. Environment:
//! `VMUX_BENCH_N` (default 2000) sets the sample count of the agent-socket
//! cases, `VMUX_BENCH_FORWARD_N` (100) of the forwarded sign, whose
//! passphrase decryption takes most of its time, `VMUX_BENCH_RECONNECT_N`
//! (20) of each reconnect case, `VMUX_BENCH_DISCOVERY_N` (3) of each
//! discovery case. Filters are not supported.
//!
//! One run sets up, in temporary directories: the signer in this process
//! with a test approver (benches/agent/signer.rs), a real `vmux agent`
//! paired with it and holding an approved session certificate, and
//! `ssh-agent -D`; then measures list, sign (session-certificate key,
//! 1/8/64 connections), the forwarded sign, the link handshakes, reconnect
//! after a signer restart, cold discovery in a private network namespace,
//! resident memory and the binary's size.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The tests' process driver; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../../tests/it/support/process.rs"]
mod process;

// The link bench's cases, shared rather than copied.
#[path = "../../../link/benches/link/cases.rs"]
mod cases;

mod compare;
mod discovery;
mod forward;
mod reconnect;
mod signer;

use vmux_testkit::{agent_client as client, memory, stats};

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::{CERT_COMMENT, is_list, is_p256_signature, list_frame, sign_frame, wait_identities};
use compare::{Row, compare, concurrent, sequential};
use memory::{Sampler, mib, rss_kib};
use process::{Proc, VMUX};
use stats::Stats;
use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(30);
const PASS: &str = "correct horse battery";

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates `names` as encrypted ECDSA identities on the signer.
fn create_identities(signer_home: &Path, names: impl Iterator<Item = String>) {
    let mut keyring = Keyring::load(&Home::at(signer_home.to_owned()).unwrap()).unwrap();
    let pass = Zeroizing::new(PASS.to_owned());
    for name in names {
        keyring
            .create_software(&name, KeyType::Ecdsa, &pass)
            .unwrap();
    }
}

/// `ssh-keygen` P-256 keys `k{from}`..`k{to}` in `dir`, added to the
/// ssh-agent at `sock`.
fn ssh_keys(dir: &Path, sock: &Path, range: std::ops::Range<usize>) {
    let files: Vec<PathBuf> = range.map(|i| dir.join(format!("k{i}"))).collect();
    for file in &files {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C"])
            .arg(format!("bench-{}", file.display()))
            .arg("-f")
            .arg(file));
    }
    run(Command::new("ssh-add")
        .args(["-q"])
        .args(&files)
        .env("SSH_AUTH_SOCK", sock)
        .stdin(Stdio::null()));
}

fn main() {
    if let Ok(n) = std::env::var(discovery::IN_NETNS) {
        discovery::child(n.parse().unwrap());
        return;
    }
    let n = env_n("VMUX_BENCH_N", 2000);
    let forward_n = env_n("VMUX_BENCH_FORWARD_N", 100);
    let reconnect_n = env_n("VMUX_BENCH_RECONNECT_N", 20);
    let discovery_n = env_n("VMUX_BENCH_DISCOVERY_N", 3);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let signer_home = dir.path().join("signer");
    let agent_home = dir.path().join("agent");
    let ssh_dir = dir.path().join("ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();

    // The signer in this process, with one identity.
    create_identities(&signer_home, std::iter::once("bench-0".to_owned()));
    let mut signer = signer::BenchSigner::start(&signer_home, PASS);
    let addr = signer.addr.to_string();
    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "bench-agent"],
    );
    pair.expect("Paired with bench", WAIT);
    assert!(pair.wait_exit(WAIT).success());
    drop(pair);

    // The agent asks for a session certificate on connecting.
    let mut agent = Proc::spawn(&agent_home, &["agent", "--signer", &addr]);
    let line = agent.expect("export SSH_AUTH_SOCK;", WAIT);
    let vmux_sock = PathBuf::from(
        line.split("SSH_AUTH_SOCK=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap(),
    );
    let ids = wait_identities(&vmux_sock, "its session certificate", WAIT, |ids| {
        ids.iter().any(|i| i.comment == CERT_COMMENT)
    });
    assert_eq!(
        ids.len(),
        2,
        "expected the signer's key and the certificate"
    );
    let blob_of = |comment: &str| {
        ids.iter()
            .find(|i| i.comment == comment)
            .unwrap()
            .key_blob
            .clone()
    };
    let (cert_blob, phone_blob) = (blob_of(CERT_COMMENT), blob_of("bench-0"));

    // OpenSSH's agent with one P-256 key.
    let ssh_sock = ssh_dir.join("agent.sock");
    let ssh_agent = Proc::start(
        {
            let mut c = Command::new("ssh-agent");
            c.arg("-D").arg("-a").arg(&ssh_sock);
            c
        },
        &ssh_dir,
    );
    let deadline = Instant::now() + WAIT;
    while UnixStream::connect(&ssh_sock).is_err() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    ssh_keys(&ssh_dir, &ssh_sock, 0..1);
    let ssh_ids = wait_identities(&ssh_sock, "its key", WAIT, |ids| ids.len() == 1);
    let ssh_blob = ssh_ids[0].key_blob.clone();

    // Idle: nothing has touched either agent for half a second.
    std::thread::sleep(Duration::from_millis(500));
    let vmux_idle = rss_kib(agent.pid());
    let ssh_idle = rss_kib(ssh_agent.pid());
    eprintln!("set-up took {:.1?}; measuring", started.elapsed());

    let mut rows = Vec::new();
    let list = list_frame();
    let vmux_sign = sign_frame(&cert_blob, &ssh_blob);
    let ssh_sign = sign_frame(&ssh_blob, &ssh_blob);
    let sock = |vmux: bool| -> &Path { if vmux { &vmux_sock } else { &ssh_sock } };
    let sign = |vmux: bool| -> &[u8] { if vmux { &vmux_sign } else { &ssh_sign } };
    let signed = &|r: &_| is_p256_signature(r);
    let one_key = &|r: &_| is_list(r, 1);

    rows.push(compare(
        "list identities, 1 key (vmux: 1 signer key + the certificate)",
        n,
        &|v, n| sequential(sock(v), &list, n, one_key),
    ));
    rows.push(compare(
        "sign 211 B, session-cert key (vmux, signed in the agent) vs P-256 key (ssh-agent), 1 connection",
        n,
        &|v, n| sequential(sock(v), sign(v), n, signed),
    ));
    let per_8 = n / 4;
    rows.push(compare(
        &format!("sign, 8 concurrent connections × {per_8}"),
        per_8,
        &|v, n| concurrent(sock(v), sign(v), 8, n, signed),
    ));
    // Memory under load: sampled every 10 ms through this case.
    let per_64 = (n / 32).max(MIN_PER_64) / compare::ROUNDS * compare::ROUNDS;
    let sampler = Sampler::start(
        vec![agent.pid(), ssh_agent.pid()],
        Duration::from_millis(10),
    );
    rows.push(compare(
        &format!("sign, 64 concurrent connections × {per_64}"),
        per_64,
        &|v, n| concurrent(sock(v), sign(v), 64, n, signed),
    ));
    let samples = sampler.finish();
    let peak = |i: usize| samples.iter().map(|(_, s)| s[i]).max().unwrap();
    let (vmux_loaded, ssh_loaded) = (peak(0), peak(1));

    // Signing on an idle agent, the forwarded sign (whose agents sit idle
    // through each approval), then the link cases it is made of.
    rows.push(forward::after_idle(
        &vmux_sock,
        &vmux_sign,
        &ssh_sock,
        &ssh_sign,
        forward_n,
        Duration::from_millis(100),
    ));
    rows.extend(forward::forwarded(
        &signer,
        &vmux_sock,
        // A login by the very key asked for: the signer refuses data that
        // names another key.
        &sign_frame(&phone_blob, &phone_blob),
        &ssh_sock,
        &ssh_sign,
        forward_n,
    ));
    let link_n = (n / 4).max(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rig = cases::LinkRig::new().await;
        let (s, w) = rig.first_contact(link_n).await;
        rows.push(Row::new(
            "link: first-contact handshake, Noise XX + hellos + pairing commit/reveal, to both sides holding the code",
            Stats::of(s, w),
            None,
        ));
        rig.pair().await;
        let (s, w) = rig.pinned(link_n).await;
        rows.push(Row::new(
            "link: pinned handshake, Noise XX + key check + hellos (what a reconnect does)",
            Stats::of(s, w),
            None,
        ));
        let (s, w) = rig.round_trips(n).await;
        rows.push(Row::new(
            "link: envelope round trip on a session, signRequest out, signResponse back",
            Stats::of(s, w),
            None,
        ));
    });
    drop(runtime);
    let (s, w) = cases::codec(n);
    rows.push(Row::new(
        "link: signRequest CBOR encode + decode, no I/O",
        Stats::of(s, w),
        None,
    ));

    rows.extend(reconnect::reconnect(&mut signer, &vmux_sock, reconnect_n));
    // Still usable after all those restarts.
    let mut check = client::Client::connect(&vmux_sock).unwrap();
    check
        .round_trip(&sign_frame(&phone_blob, &phone_blob))
        .unwrap();
    assert!(is_p256_signature(&check.response()));
    signer.next_window(WAIT);

    let no_discovery = match discovery::rows(discovery_n) {
        Ok(found) => {
            rows.extend(found);
            None
        }
        Err(why) => Some(why),
    };

    // 100 keys on each side: 99 more on the signer (read fresh by it on the
    // next key-list request), pulled by `vmux refresh`.
    let t = Instant::now();
    create_identities(&signer_home, (1..100).map(|i| format!("bench-{i}")));
    let created = t.elapsed();
    run(Command::new(VMUX)
        .arg("refresh")
        .env("VMUX_HOME", &agent_home)
        .env("SSH_AUTH_SOCK", &vmux_sock)
        .env("VMUX_LOG", "warn"));
    wait_identities(&vmux_sock, "100 keys", WAIT, |ids| ids.len() == 101);
    ssh_keys(&ssh_dir, &ssh_sock, 1..100);
    wait_identities(&ssh_sock, "100 keys", WAIT, |ids| ids.len() == 100);
    let hundred = &|r: &_| is_list(r, 100);
    rows.push(compare(
        "list identities, 100 keys (vmux: 100 signer keys + the certificate)",
        n,
        &|v, n| sequential(sock(v), &list, n, hundred),
    ));
    let vmux_after = rss_kib(agent.pid());
    let ssh_after = rss_kib(ssh_agent.pid());

    println!(
        "\nvmux vs OpenSSH ssh-agent ({}), ECDSA P-256, N={n}, {} alternating rounds after a 10 % warm-up, {} cores\n",
        ssh_version(),
        compare::ROUNDS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Row::header();
    for row in &rows {
        row.print();
    }
    if let Some(why) = &no_discovery {
        println!("\ncold discovery not measured: no network namespace ({why})");
    }

    println!("\n| memory and size | vmux | ssh-agent | ratio vmux/ssh-agent |");
    println!("|---|---|---|---|");
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    println!(
        "| agent VmRSS, idle | {} | {} | {:.2} |",
        mib(vmux_idle),
        mib(ssh_idle),
        ratio(vmux_idle, ssh_idle)
    );
    println!(
        "| agent VmRSS, peak under 64 connections (sampled every 10 ms) | {} | {} | {:.2} |",
        mib(vmux_loaded),
        mib(ssh_loaded),
        ratio(vmux_loaded, ssh_loaded)
    );
    println!(
        "| agent VmRSS at the end of the run | {} | {} | {:.2} |",
        mib(vmux_after),
        mib(ssh_after),
        ratio(vmux_after, ssh_after)
    );
    let (vmux_size, stripped) = binary_size(Path::new(VMUX));
    let ssh_path = which("ssh-agent");
    let ssh_size = std::fs::metadata(&ssh_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "| binary size ({}; ssh-agent: {}, dynamically linked against libcrypto) | {:.1} MiB{} | {:.1} MiB | — |",
        VMUX,
        ssh_path.display(),
        vmux_size as f64 / (1024.0 * 1024.0),
        if stripped {
            ", stripped"
        } else {
            ", NOT stripped"
        },
        ssh_size as f64 / (1024.0 * 1024.0),
    );
    println!(
        "\n(creating 99 encrypted signer identities took {created:.1?}; whole run {:.1?})",
        started.elapsed()
    );
    drop(ssh_agent);
    drop(agent);
    drop(signer);
}

/// Fewest requests per connection in the 64-connection case.
const MIN_PER_64: usize = 4 * compare::ROUNDS;

/// The file's size and whether it has no symbol table left.
fn binary_size(path: &Path) -> (u64, bool) {
    let bytes = std::fs::read(path).unwrap();
    // `strip` removes .symtab and renames nothing else into it: its name
    // left in the section-name table means symbols are still there.
    let stripped = !bytes.windows(8).any(|w| w == b".symtab\0");
    (bytes.len() as u64, stripped)
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(program))
}

fn ssh_version() -> String {
    Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}
