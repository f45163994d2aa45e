//! Floods against the real `vmux signer` (issue 21.3), loopback only and
//! bounded: one paired device opening a thousand sessions under a 1024
//! descriptor limit, strangers exhausting its descriptors, and strangers
//! from eight addresses holding every handshake slot they can. The signer
//! keeps running and its paired devices are served.
//!
//! The measured numbers are printed (`--nocapture`). To measure another
//! build, point `VMUX_FLOODS_BIN` at its binary.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::session::{self, Session};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::envelope::{Envelope, ErrorCode, KeyListRequest, Role};

use crate::support::process::{Proc, VMUX};

const WAIT: Duration = Duration::from_secs(20);
/// `MAX_SESSIONS_PER_DEVICE` in crates/signer/src/server/sessions.rs.
const SESSIONS_PER_DEVICE: usize = 8;

/// A signer home "phone" and device homes paired with it, as `vmux pair`
/// leaves them.
struct Rig {
    _dir: tempfile::TempDir,
    signer_home: PathBuf,
    devices: Vec<(Arc<Device>, PathBuf)>,
}

fn rig(devices: &[&str]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let signer_home = dir.path().join("signer");
    let home = Home::at(signer_home.clone()).unwrap();
    let signer = Device::load_or_create(&home, Some("phone")).unwrap();
    let mut signer_trust = TrustStore::load(&home).unwrap();
    let now = 1_700_000_000_000;
    let devices = devices
        .iter()
        .map(|name| {
            let path = dir.path().join(name);
            let home = Home::at(path.clone()).unwrap();
            let device = Device::load_or_create(&home, Some(name)).unwrap();
            TrustStore::load(&home)
                .unwrap()
                .pin(PinnedPeer::new(
                    signer.id.clone(),
                    signer.name.clone(),
                    PeerRole::Signer,
                    &signer.keypair.public(),
                    now,
                ))
                .unwrap();
            signer_trust
                .pin(PinnedPeer::new(
                    device.id.clone(),
                    device.name.clone(),
                    PeerRole::Requester,
                    &device.keypair.public(),
                    now,
                ))
                .unwrap();
            (Arc::new(device), path)
        })
        .collect();
    Rig {
        _dir: dir,
        signer_home,
        devices,
    }
}

fn vmux_bin() -> String {
    std::env::var("VMUX_FLOODS_BIN").unwrap_or_else(|_| VMUX.to_owned())
}

/// `vmux signer` on 127.0.0.1, under `prlimit --nofile=N:N` when given;
/// and its address.
fn start_signer(home: &Path, nofile: Option<usize>) -> (Proc, String) {
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(vmux_bin());
            c
        }
        None => Command::new(vmux_bin()),
    };
    command.args([
        "signer",
        "--listen",
        "127.0.0.1:0",
        "--name",
        "phone",
        "--ui",
        "plain",
        "--no-advertise",
    ]);
    let mut signer = Proc::start(command, home);
    let line = signer.expect("listening on", WAIT);
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    (signer, addr)
}

fn running(signer: &mut Proc) -> bool {
    signer.exited().is_none()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// Lets this test process hold a thousand sockets and more.
fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A session of `device` with the signer at `addr`, as the agent opens one.
async fn connect(device: &Device, home: &Path, addr: &str) -> vmux_link::Result<Session> {
    let mut trust = TrustStore::load(&Home::at(home.to_path_buf())?)?;
    session::connect(addr, device, Role::Agent, &mut trust, 1_700_000_000_000).await
}

/// Whether `session` answers a key list request.
async fn lists_keys(session: &mut Session) -> bool {
    if session
        .send(Envelope::KeyListRequest(KeyListRequest {}))
        .await
        .is_err()
    {
        return false;
    }
    loop {
        match tokio::time::timeout(WAIT, session.recv()).await {
            Ok(Ok(Envelope::KeyList(_))) => return true,
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
}

/// One device opens 1,100 sessions, 4 at a time, and keeps every one it
/// gets, under `prlimit --nofile=1024`: it gets its 8, the rest are
/// refused (`signerBusy`, or dropped when more than 8 of its handshakes
/// are in progress at once); the signer keeps running, its descriptors
/// stay few, and a second device is served.
#[test]
fn one_device_cannot_take_the_signers_descriptors() {
    raise_open_files();
    let rig = rig(&["laptop", "desktop"]);
    let (mut signer, addr) = start_signer(&rig.signer_home, Some(1024));
    let (laptop, laptop_home) = &rig.devices[0];
    let (desktop, desktop_home) = &rig.devices[1];
    let rt = runtime();
    let started = Instant::now();
    let (mut held, busy, other) = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(4));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..1100 {
            let (gate, device, home, addr) = (
                Arc::clone(&gate),
                Arc::clone(laptop),
                laptop_home.clone(),
                addr.clone(),
            );
            tasks.spawn(async move {
                let _turn = gate.acquire().await.unwrap();
                connect(&device, &home, &addr).await
            });
        }
        let (mut held, mut busy, mut other) = (Vec::new(), 0, Vec::<String>::new());
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(session) => held.push(session),
                Err(vmux_link::Error::Peer {
                    code: ErrorCode::SignerBusy,
                    message,
                }) => {
                    assert!(message.contains("8 sessions"), "{message}");
                    busy += 1;
                }
                Err(e) => other.push(e.to_string()),
            }
        }
        (held, busy, other)
    });
    let took = started.elapsed();
    let fds = open_fds(signer.pid());
    eprintln!(
        "1100 sessions from one device under nofile=1024 in {took:?}: {} held, {busy} refused \
         signerBusy, {} other ({:?}); signer holds {fds} descriptors",
        held.len(),
        other.len(),
        other.first()
    );
    assert!(
        running(&mut signer),
        "the signer exited:\n{}",
        signer.transcript
    );
    assert_eq!(held.len(), SESSIONS_PER_DEVICE, "{other:?}");
    assert_eq!(busy + other.len(), 1100 - SESSIONS_PER_DEVICE);
    assert!(busy >= 1000, "{busy} refused signerBusy; others: {other:?}");
    assert!(fds < 200, "the signer holds {fds} descriptors");
    rt.block_on(async {
        // Its own sessions still work, and another device gets in.
        assert!(lists_keys(&mut held[0]).await);
        let mut other = connect(desktop, desktop_home, &addr).await.unwrap();
        assert!(lists_keys(&mut other).await);
    });
    // One ends: the device may open another.
    held.pop();
    let deadline = Instant::now() + WAIT;
    rt.block_on(async {
        loop {
            match connect(laptop, laptop_home, &addr).await {
                Ok(mut s) => break assert!(lists_keys(&mut s).await),
                Err(e) => assert!(Instant::now() < deadline, "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(running(&mut signer));
}

/// A silent TCP connection from `from` to `addr`, held until dropped.
async fn silent(from: IpAddr, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// The `n`th attacker connection's address: 127.0.0.2 to .9.
fn attacker(n: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + u8::try_from(n % 8).unwrap()])
}

/// The same across eight /24s: 127.0.1.2 to 127.0.8.9.
fn attacker_in_networks(n: usize) -> IpAddr {
    let network = 1 + u8::try_from(n / 8 % 8).unwrap();
    IpAddr::from([127, 0, network, 2 + u8::try_from(n % 8).unwrap()])
}

/// Strangers from 64 addresses in eight /24s hold 64 silent connections
/// (every stranger's slot) against a
/// signer allowed 64 descriptors: `accept` fails with EMFILE, the signer
/// says so once and keeps running; once they leave, a device is served.
#[test]
fn out_of_descriptors_the_signer_waits_and_goes_on() {
    let rig = rig(&["laptop"]);
    let (mut signer, addr) = start_signer(&rig.signer_home, Some(64));
    let (laptop, laptop_home) = &rig.devices[0];
    let target: SocketAddr = addr.parse().unwrap();
    let base = open_fds(signer.pid());
    let rt = runtime();
    let held: Vec<_> = rt.block_on(async {
        let mut held = Vec::new();
        for n in 0..64 {
            held.push(silent(attacker_in_networks(n), target).await.unwrap());
        }
        held
    });
    signer.expect("cannot accept connections", WAIT);
    eprintln!(
        "EMFILE: the signer had {base} descriptors idle, {} with 64 strangers connected",
        open_fds(signer.pid())
    );
    assert!(running(&mut signer), "{}", signer.transcript);
    drop(held);
    rt.block_on(async {
        let mut session = tokio::time::timeout(WAIT, connect(laptop, laptop_home, &addr))
            .await
            .unwrap()
            .unwrap();
        assert!(lists_keys(&mut session).await);
    });
    signer.expect("accepting connections again", WAIT);
    assert!(running(&mut signer));
}

/// The stranger flood of issue 21: from 127.0.0.2 to .9, eight silent
/// connections each, every one back at once when the signer drops it. A
/// paired device on 127.0.0.1 (the same /24) opens 60 sessions, each a
/// handshake and a key list within 2 s; at least 95% complete.
#[test]
fn strangers_from_eight_addresses_do_not_lock_out_a_paired_device() {
    raise_open_files();
    let rig = rig(&["laptop"]);
    let (mut signer, addr) = start_signer(&rig.signer_home, None);
    let (laptop, laptop_home) = &rig.devices[0];
    let target: SocketAddr = addr.parse().unwrap();
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicUsize::new(0));
    let (completed, took) = rt.block_on(async {
        let mut flood = tokio::task::JoinSet::new();
        for n in 0..64 {
            let (stop, connects) = (Arc::clone(&stop), Arc::clone(&connects));
            flood.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut stream) = silent(attacker(n), target).await else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    connects.fetch_add(1, Ordering::Relaxed);
                    // Silent until the signer drops it (or the test ends).
                    let mut byte = [0u8; 1];
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await;
                }
            });
        }
        // The flood holds its slots before the device starts.
        let deadline = Instant::now() + WAIT;
        while connects.load(Ordering::Relaxed) < 64 {
            assert!(Instant::now() < deadline, "the flood did not connect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        let mut completed = 0;
        for _ in 0..60 {
            let attempt = tokio::time::timeout(Duration::from_secs(2), async {
                let mut session = connect(laptop, laptop_home, &addr).await.ok()?;
                lists_keys(&mut session).await.then_some(())
            });
            if let Ok(Some(())) = attempt.await {
                completed += 1;
            }
        }
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        flood.abort_all();
        (completed, took)
    });
    let connects = connects.load(Ordering::Relaxed);
    eprintln!(
        "stranger flood from 8 addresses ({connects} connects): the paired device completed \
         {completed} of 60 sessions in {took:?}"
    );
    assert!(running(&mut signer), "{}", signer.transcript);
    assert!(completed >= 57, "only {completed} of 60 sessions completed");
}
