//! `vmux agent` against OpenSSH's `ssh-agent`, side by side in one run, on
//! the same machine and the same key type (ECDSA P-256), over their Unix
//! sockets: list identities with 1 and with 100 keys, and sign with the
//! session-certificate key (local signing, no signer round trip) on one
//! and on 8 concurrent connections.
//!
//! Run: `cargo bench -p vmux --bench agent` (`VMUX_BENCH_N` changes the
//! sequential sample count, default 2000; the concurrent case uses N/4 per
//! connection). Sets up in temporary directories a `vmux signer` (this
//! process answers its plain UI), a paired `vmux agent` holding an approved
//! session certificate, and an `ssh-agent -D`; all are killed at the end.
//!
//! A forwarded sign over the link is not measured here: it needs a person's
//! approval on the signer (the link round trip alone is in the link bench).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use vmux_proto::agent::{Identity, Request, Response, SignFlags, SignRequest, frame_len};
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(30);
const PASS: &str = "correct horse battery";
const CERT_COMMENT: &str = "vmux-session-cert";
/// Chunks each side's samples are taken in, alternating between the two
/// agents, so drift in a shared VM hits both alike.
const ROUNDS: usize = 4;

// ---------------------------------------------------------------- processes

#[path = "../tests/support/process.rs"]
mod process;

use process::{Proc, VMUX};

/// Resident memory of `pid` in KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
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

// ------------------------------------------------------------------- client

/// A blocking agent-protocol client on one connection.
struct Client {
    stream: UnixStream,
    body: Vec<u8>,
}

impl Client {
    fn connect(sock: &Path) -> Client {
        Client {
            stream: UnixStream::connect(sock).unwrap(),
            body: Vec::with_capacity(64 * 1024),
        }
    }

    /// Writes `frame` and reads the whole answer's body into `self.body`;
    /// this is the timed part.
    fn round_trip(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).unwrap();
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).unwrap();
        let len = frame_len(header).unwrap();
        self.body.resize(len, 0);
        self.stream.read_exact(&mut self.body).unwrap();
    }

    fn call(&mut self, request: &Request) -> Response {
        self.round_trip(&request.to_frame().unwrap());
        Response::decode(&self.body).unwrap()
    }

    fn identities(&mut self) -> Vec<Identity> {
        match self.call(&Request::RequestIdentities) {
            Response::IdentitiesAnswer(ids) => ids,
            other => panic!("list answered {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ samples

/// One run's per-request latencies and its wall time.
type Run = (Vec<Duration>, Duration);

struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
    /// Requests per second over the wall time of the run.
    throughput: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>, wall: Duration) -> Stats {
        samples.sort();
        let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            n: samples.len(),
            p50: pick(0.50),
            p99: pick(0.99),
            throughput: samples.len() as f64 / wall.as_secs_f64(),
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

struct Row {
    case: String,
    vmux: Stats,
    ssh: Stats,
}

impl Row {
    fn print(&self) {
        let p50_ratio = self.vmux.p50.as_secs_f64() / self.ssh.p50.as_secs_f64();
        let tput_ratio = self.vmux.throughput / self.ssh.throughput;
        println!(
            "| {} | {} | {} / {} | {} / {} | {:.0}/s / {:.0}/s | {p50_ratio:.2} | {tput_ratio:.2} |",
            self.case,
            self.vmux.n,
            us(self.vmux.p50),
            us(self.ssh.p50),
            us(self.vmux.p99),
            us(self.ssh.p99),
            self.vmux.throughput,
            self.ssh.throughput,
        );
    }
}

/// Runs `frame` `n` times on one connection to `sock`, checking the first
/// answer with `check`; returns the samples and the wall time.
fn sequential(sock: &Path, frame: &[u8], n: usize, check: &dyn Fn(Response)) -> Run {
    let mut client = Client::connect(sock);
    client.round_trip(frame);
    check(Response::decode(&client.body).unwrap());
    let mut samples = Vec::with_capacity(n);
    let wall = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        client.round_trip(frame);
        samples.push(t.elapsed());
    }
    let wall = wall.elapsed();
    check(Response::decode(&client.body).unwrap());
    (samples, wall)
}

/// `threads` connections at once, `n` requests each.
fn concurrent(
    sock: &Path,
    frame: &[u8],
    threads: usize,
    n: usize,
    check: &(dyn Fn(Response) + Sync),
) -> Run {
    let barrier = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut client = Client::connect(sock);
                    client.round_trip(frame);
                    check(Response::decode(&client.body).unwrap());
                    let mut samples = Vec::with_capacity(n);
                    barrier.wait();
                    for _ in 0..n {
                        let t = Instant::now();
                        client.round_trip(frame);
                        samples.push(t.elapsed());
                    }
                    check(Response::decode(&client.body).unwrap());
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

/// Both agents, alternating in [`ROUNDS`] chunks; `measure(sock, n)` is
/// one chunk.
fn compare(
    case: &str,
    vmux: &Path,
    ssh: &Path,
    n: usize,
    measure: &dyn Fn(&Path, usize) -> Run,
) -> Row {
    // Warm-up: connection set-up, caches, CPU frequency.
    measure(vmux, (n / 10).max(1));
    measure(ssh, (n / 10).max(1));
    let (mut vs, mut vw, mut ss, mut sw) = (Vec::new(), Duration::ZERO, Vec::new(), Duration::ZERO);
    for _ in 0..ROUNDS {
        let (s, w) = measure(vmux, n / ROUNDS);
        vs.extend(s);
        vw += w;
        let (s, w) = measure(ssh, n / ROUNDS);
        ss.extend(s);
        sw += w;
    }
    let row = Row {
        case: case.to_owned(),
        vmux: Stats::of(vs, vw),
        ssh: Stats::of(ss, sw),
    };
    row.print();
    row
}

// -------------------------------------------------------------------- setup

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s);
}

/// What ssh asks an agent to sign for a public-key login (RFC 4252 §7):
/// a 32-byte session id, user, service, method, algorithm and the
/// 104-byte P-256 key blob; 211 bytes for user "bench".
fn userauth_blob(key_blob: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    put_string(&mut data, &[0x5a; 32]);
    data.push(50);
    put_string(&mut data, b"bench");
    put_string(&mut data, b"ssh-connection");
    put_string(&mut data, b"publickey");
    data.push(1);
    put_string(&mut data, b"ecdsa-sha2-nistp256");
    put_string(&mut data, key_blob);
    data
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

/// Polls the agent at `sock` until its identities satisfy `done`.
fn wait_identities(sock: &Path, what: &str, done: impl Fn(&[Identity]) -> bool) -> Vec<Identity> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(stream) = UnixStream::connect(sock) {
            let mut client = Client {
                stream,
                body: Vec::new(),
            };
            let ids = client.identities();
            if done(&ids) {
                return ids;
            }
        }
        assert!(Instant::now() < deadline, "the agent never listed {what}");
        std::thread::sleep(Duration::from_millis(50));
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
    // `cargo bench` passes `--bench`; filters are not supported.
    let n: usize = std::env::var("VMUX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let signer_home = dir.path().join("signer");
    let agent_home = dir.path().join("agent");
    let ssh_dir = dir.path().join("ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();

    // The signer, with one identity, answered by us on its plain UI.
    create_identities(&signer_home, std::iter::once("bench-0".to_owned()));
    let mut signer = Proc::spawn(
        &signer_home,
        &[
            "signer",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "bench",
            "--ui",
            "plain",
            "--no-advertise",
        ],
    );
    let line = signer.expect("listening on", WAIT);
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    let mut pair = Proc::spawn(
        &agent_home,
        &["pair", "--signer", &addr, "--name", "bench-agent"],
    );
    signer.expect("wants to pair", WAIT);
    signer.type_line("a");
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
    signer.expect("Session certificate for", WAIT);
    signer.type_line("a");
    let ids = wait_identities(&vmux_sock, "its session certificate", |ids| {
        ids.iter().any(|i| i.comment == CERT_COMMENT)
    });
    let cert_blob = ids
        .iter()
        .find(|i| i.comment == CERT_COMMENT)
        .unwrap()
        .key_blob
        .clone();
    assert_eq!(ids.len(), 2, "expected the phone key and the certificate");

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
    let ssh_ids = wait_identities(&ssh_sock, "its key", |ids| ids.len() == 1);
    let ssh_blob = ssh_ids[0].key_blob.clone();

    std::thread::sleep(Duration::from_millis(500));
    let vmux_idle = rss_kib(agent.pid());
    let ssh_idle = rss_kib(ssh_agent.pid());
    let setup = started.elapsed();

    println!(
        "\nvmux agent vs OpenSSH ssh-agent ({}), ECDSA P-256, N={n} (+10% warm-up), \
         {ROUNDS} alternating rounds; set-up took {setup:.1?}\n",
        ssh_version()
    );
    println!(
        "| case | n per agent | p50 vmux / ssh-agent | p99 vmux / ssh-agent | throughput vmux / ssh-agent | p50 ratio vmux/ssh-agent | throughput ratio vmux/ssh-agent |"
    );
    println!("|---|---|---|---|---|---|---|");

    let list = Request::RequestIdentities.to_frame().unwrap();
    let list_check = |want: usize| {
        move |r: Response| match r {
            Response::IdentitiesAnswer(ids) => assert!(ids.len() >= want, "{} keys", ids.len()),
            other => panic!("list answered {other:?}"),
        }
    };
    let sign_check = |r: Response| match r {
        Response::SignResponse { signature } => assert!(signature.len() > 64),
        other => panic!("sign answered {other:?}"),
    };
    let sign_frame = |blob: &[u8]| {
        Request::SignRequest(SignRequest {
            key_blob: blob.to_vec(),
            data: userauth_blob(&ssh_blob),
            flags: SignFlags::NONE,
        })
        .to_frame()
        .unwrap()
    };
    let vmux_sign = sign_frame(&cert_blob);
    let ssh_sign = sign_frame(&ssh_blob);
    let frame_for = |sock: &Path| -> &[u8] {
        if sock == vmux_sock {
            &vmux_sign
        } else {
            &ssh_sign
        }
    };

    compare(
        "list identities, 1 key (vmux: 1 signer key + the certificate)",
        &vmux_sock,
        &ssh_sock,
        n,
        &|sock, n| sequential(sock, &list, n, &list_check(1)),
    );
    compare(
        "sign 211 B, session-cert key (vmux) vs P-256 key (ssh-agent), 1 connection",
        &vmux_sock,
        &ssh_sock,
        n,
        &|sock, n| sequential(sock, frame_for(sock), n, &sign_check),
    );
    let per_thread = n / 4;
    compare(
        &format!("sign, 8 concurrent connections × {per_thread}"),
        &vmux_sock,
        &ssh_sock,
        per_thread,
        &|sock, n| concurrent(sock, frame_for(sock), 8, n, &sign_check),
    );

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
    wait_identities(&vmux_sock, "100 keys", |ids| ids.len() == 101);
    ssh_keys(&ssh_dir, &ssh_sock, 1..100);
    wait_identities(&ssh_sock, "100 keys", |ids| ids.len() == 100);
    compare(
        "list identities, 100 keys (vmux: 100 signer keys + the certificate)",
        &vmux_sock,
        &ssh_sock,
        n,
        &|sock, n| sequential(sock, &list, n, &list_check(100)),
    );

    let vmux_loaded = rss_kib(agent.pid());
    let ssh_loaded = rss_kib(ssh_agent.pid());
    println!(
        "\nresident memory (VmRSS): vmux agent {vmux_idle} KiB idle, {vmux_loaded} KiB after the load; \
         ssh-agent {ssh_idle} KiB idle, {ssh_loaded} KiB after the load"
    );
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/vmux");
    match std::fs::metadata(&release) {
        Ok(meta) => println!(
            "target/release/vmux: {:.1} MiB ({} bytes; the release profile strips symbols)",
            meta.len() as f64 / (1024.0 * 1024.0),
            meta.len()
        ),
        Err(_) => println!("target/release/vmux: not built"),
    }
    println!(
        "(creating 99 encrypted signer identities took {created:.1?}; whole run {:.1?})",
        started.elapsed()
    );
    drop(ssh_agent);
    drop(agent);
    drop(signer);
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
