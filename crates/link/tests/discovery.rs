//! Signer discovery over real mDNS, inside a private network namespace.
//!
//! No test traffic may leave the machine. The round-trip test therefore
//! never runs mDNS in the namespace it was started in. It re-executes this
//! test binary (filtered to itself) under `unshare --net`, which gives the
//! child a fresh network namespace holding only a `lo` that is down. The
//! child brings `lo` up, checks through `/proc/self/net/dev` that `lo` really
//! is its only interface (and refuses to go on otherwise), and only then
//! advertises and browses, restricted to loopback on top of that. The parent
//! prints the child's output and fails if the child failed.
//!
//! Needs `unshare` (util-linux) and `ip` (iproute2), and either root or
//! unprivileged user namespaces (then `unshare --user --map-root-user` is
//! used). Without them the test prints why and passes, unless
//! `VMUX_REQUIRE_NETNS=1` is set, which turns that into a failure.

// Tests fail by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use vmux_link::Fingerprint;
use vmux_link::discovery::{self, FoundSigner, PROTOCOL_MAJOR, SERVICE_TYPE, Scope};

/// Set in the child that runs inside the namespace.
const IN_NETNS: &str = "VMUX_DISCOVERY_IN_NETNS";
/// Set (by CI) to fail instead of skip when no namespace can be made.
const REQUIRE_NETNS: &str = "VMUX_REQUIRE_NETNS";

#[test]
fn scope_follows_the_listen_address() {
    let scope = |s: &str| Scope::for_listen_addr(&s.parse::<SocketAddr>().unwrap());
    assert_eq!(scope("127.0.0.1:0"), Scope::Loopback);
    assert_eq!(scope("127.0.0.1:7777"), Scope::Loopback);
    assert_eq!(scope("[::ffff:127.0.0.1]:7777"), Scope::Loopback);
    assert_eq!(scope("0.0.0.0:7777"), Scope::All);
    assert_eq!(scope("[::]:7777"), Scope::All);
    assert_eq!(
        scope("[::1]:7777"),
        Scope::Addr(IpAddr::V6(Ipv6Addr::LOCALHOST))
    );
    assert_eq!(
        scope("127.0.0.2:7777"),
        Scope::Addr(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
    );
    assert_eq!(
        scope("192.168.1.20:7777"),
        Scope::Addr(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)))
    );
    assert_eq!(
        scope("[fe80::1%2]:7777"),
        Scope::Addr("fe80::1".parse().unwrap())
    );
}

/// The name of the test below, as the test harness filters it.
const ROUND_TRIP: &str = "advertise_and_browse_in_a_private_network_namespace";

#[test]
fn advertise_and_browse_in_a_private_network_namespace() {
    if std::env::var_os(IN_NETNS).is_some() {
        in_namespace();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let child_args = [
        exe,
        "--exact",
        ROUND_TRIP,
        "--nocapture",
        "--test-threads=1",
    ];

    // As root a plain network namespace will do; otherwise try a user
    // namespace in which we are root.
    let mut attempts = Vec::new();
    for prefix in [
        &["--net", "--"][..],
        &["--user", "--map-root-user", "--net", "--"][..],
    ] {
        let out = match Command::new("unshare")
            .args(prefix)
            .args(child_args)
            .env(IN_NETNS, "1")
            .output()
        {
            Ok(out) => out,
            Err(e) => return skip(&format!("cannot run `unshare` ({e}); install util-linux")),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `unshare` itself failing (exit 1 and its own message) is not a test
        // failure; the test harness exits with 101 when a test fails.
        if !out.status.success() && out.status.code() != Some(101) && stderr.starts_with("unshare:")
        {
            attempts.push(format!("unshare {}: {}", prefix.join(" "), stderr.trim()));
            continue;
        }
        report(prefix, &out);
        assert!(
            out.status.success(),
            "the test failed inside the network namespace: {}",
            out.status
        );
        assert!(
            stdout.contains("test result: ok. 1 passed"),
            "the child did not run the round trip"
        );
        if stdout.contains("SKIPPED:") {
            // The child found no `ip`: it said why; apply the same policy.
            skip("see the child's output above");
        }
        return;
    }
    skip(&format!(
        "cannot create a network namespace:\n  {}",
        attempts.join("\n  ")
    ));
}

fn report(prefix: &[&str], out: &Output) {
    println!(
        "--- child under `unshare {}` exited with {} ---",
        prefix.join(" "),
        out.status
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
}

fn skip(why: &str) {
    assert!(
        std::env::var_os(REQUIRE_NETNS).is_none(),
        "{REQUIRE_NETNS} is set, but: {why}"
    );
    println!("SKIPPED: mDNS round trip not run: {why}");
}

/// Runs a command that sets up the namespace; `false` if `ip` is missing.
fn ip(args: &[&str]) -> bool {
    match Command::new("ip").args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("ip {}: {e}", args.join(" ")),
    }
}

/// The interfaces of the network namespace this process is in (unlike
/// `/sys/class/net`, `/proc/self/net` follows the caller's namespace).
fn interfaces() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .collect()
}

fn in_namespace() {
    // Refuse to go anywhere near mDNS unless this is an empty namespace.
    assert_eq!(
        interfaces(),
        ["lo"],
        "not in a private network namespace; refusing to run mDNS"
    );
    // `lo` starts down. It stays without the MULTICAST flag and without a
    // multicast route, as on a host: mdns-sd sends with IP_MULTICAST_IF set
    // to 127.0.0.1 and the kernel loops the datagrams back, so discovery on
    // loopback must work like that.
    if !ip(&["link", "set", "lo", "up"]) {
        return skip("no `ip` command; install iproute2");
    }
    println!("namespace interfaces: {:?}", interfaces());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(round_trip());
}

async fn round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap();
    let scope = Scope::for_listen_addr(&local);
    assert_eq!(scope, Scope::Loopback);

    let fp = Fingerprint::of(b"the test signer's static key");
    let other_fp = Fingerprint::of(b"a signer from the future");

    let advertisement = discovery::advertise("Test Signer", local.port(), &fp, scope).unwrap();
    assert_eq!(
        advertisement.fullname(),
        format!("Test Signer.{SERVICE_TYPE}")
    );
    // A signer speaking a future protocol is returned (the caller decides);
    // a record without a fingerprint is not.
    let future_txt = [
        ("name", "Future Signer"),
        ("fp", other_fp.as_str()),
        ("v", "2"),
    ];
    let future = raw_signer("Future Signer", 40001, &future_txt);
    // Scope::All is safe here: this namespace has no interface but `lo`.
    let all_fp = Fingerprint::of(b"a signer on every interface");
    let all_port = 40003;
    let everywhere = discovery::advertise("All Signer", all_port, &all_fp, Scope::All).unwrap();
    let broken = raw_signer(
        "Broken Signer",
        40002,
        &[("name", "Broken Signer"), ("v", "1")],
    );

    // Cold start of both ends: the advertisement first probes for its name
    // (~750 ms), then announces.
    let (found, cold) = timed(discovery::browse(
        Scope::Loopback,
        std::slice::from_ref(&fp),
        Duration::from_secs(10),
    ))
    .await;
    println!(
        "cold discovery, browse started with the advertisement: {} ms",
        cold.as_millis()
    );
    assert!(
        cold < Duration::from_secs(5),
        "a preferred signer should end the browse early, took {cold:?}"
    );
    check(first(&found), "Test Signer", &fp, PROTOCOL_MAJOR, local);

    // Without a preferred match, the browse runs to its deadline and returns
    // every signer seen, by name.
    let wait = Duration::from_secs(2);
    let (found, took) = timed(discovery::browse(Scope::Loopback, &[], wait)).await;
    println!(
        "browse to the deadline: {} ms, found {found:?}",
        took.as_millis()
    );
    assert!(took >= wait, "returned before the deadline: {took:?}");
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["All Signer", "Future Signer", "Test Signer"]);
    let all_v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, all_port));
    assert!(found[0].addresses.contains(&all_v4), "{:?}", found[0]);
    check(
        &found[1],
        "Future Signer",
        &other_fp,
        2,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 40001)),
    );
    check(&found[2], "Test Signer", &fp, PROTOCOL_MAJOR, local);

    // A fresh browser against settled advertisements (what `vmux pair`
    // meets). mDNS answers a record at most once a second (RFC 6762 §6), so
    // first let the last answers to the browse above age out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (found, warm) = timed(discovery::browse(
        Scope::Loopback,
        std::slice::from_ref(&fp),
        Duration::from_secs(10),
    ))
    .await;
    println!(
        "cold discovery, advertisement already up: {} ms",
        warm.as_millis()
    );
    assert!(warm < Duration::from_secs(1), "took {warm:?}");
    check(first(&found), "Test Signer", &fp, PROTOCOL_MAJOR, local);

    // Withdrawing sends goodbyes: a browser that knew the signer forgets it
    // (one second later: RFC 6762 §10.1 turns a goodbye into a 1 s TTL).
    let watcher = loopback_daemon();
    let events = watcher.browse(SERVICE_TYPE).unwrap();
    let fullname = advertisement.fullname().to_lowercase();
    tokio::time::timeout(Duration::from_secs(3), wait_for(&events, &fullname, false))
        .await
        .expect("the watcher never saw the signer");
    let start = Instant::now();
    advertisement.withdraw().await;
    let withdrawn = start.elapsed();
    assert!(
        withdrawn < Duration::from_millis(500),
        "withdrawing took {withdrawn:?}"
    );
    tokio::time::timeout(Duration::from_secs(2), wait_for(&events, &fullname, true))
        .await
        .expect("no goodbye after withdrawing");
    let forgotten = start.elapsed();
    println!(
        "withdrawn in {} ms, forgotten after {} ms",
        withdrawn.as_millis(),
        forgotten.as_millis()
    );

    // Browsing on every interface (just `lo` here) finds the signer that
    // advertises on every interface, with the interface's own addresses.
    let (found, took) = timed(discovery::browse(
        Scope::All,
        std::slice::from_ref(&all_fp),
        Duration::from_secs(5),
    ))
    .await;
    println!(
        "Scope::All browse: {} ms, found {found:?}",
        took.as_millis()
    );
    let all = first(&found);
    assert_eq!(
        (all.name.as_str(), &all.fingerprint, all.version),
        ("All Signer", &all_fp, PROTOCOL_MAJOR)
    );
    assert!(all.addresses.contains(&all_v4), "{all:?}");
    everywhere.withdraw().await;

    for daemon in [watcher, future, broken] {
        daemon.shutdown().unwrap().recv_async().await.unwrap();
    }
    drop(listener);
}

async fn timed<T>(f: impl Future<Output = vmux_link::Result<T>>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await.unwrap();
    (out, start.elapsed())
}

fn first(found: &[FoundSigner]) -> &FoundSigner {
    found.first().expect("no signer found")
}

fn check(found: &FoundSigner, name: &str, fp: &Fingerprint, version: u32, addr: SocketAddr) {
    assert_eq!(found.name, name);
    assert_eq!(&found.fingerprint, fp);
    assert_eq!(found.version, version);
    assert_eq!(found.addresses, [addr], "{found:?}");
}

/// A record as some other implementation might publish it, loopback only.
fn raw_signer(instance: &str, port: u16, txt: &[(&str, &str)]) -> ServiceDaemon {
    let daemon = loopback_daemon();
    let host = format!("{}.local.", instance.replace(' ', "-").to_lowercase());
    let info = ServiceInfo::new(SERVICE_TYPE, instance, &host, "127.0.0.1", port, txt).unwrap();
    daemon.register(info).unwrap();
    daemon
}

/// A bare mdns-sd daemon, loopback only.
fn loopback_daemon() -> ServiceDaemon {
    let daemon = ServiceDaemon::new().unwrap();
    daemon.disable_interface(IfKind::All).unwrap();
    daemon.enable_interface(IfKind::LoopbackV4).unwrap();
    daemon
}

/// Waits for `fullname` to be resolved (or, with `removed`, withdrawn).
async fn wait_for(events: &mdns_sd::Receiver<ServiceEvent>, fullname: &str, removed: bool) {
    loop {
        let name = match events.recv_async().await.unwrap() {
            ServiceEvent::ServiceResolved(s) if !removed => s.fullname,
            ServiceEvent::ServiceRemoved(_, name) if removed => name,
            _ => continue,
        };
        if name.eq_ignore_ascii_case(fullname) {
            return;
        }
    }
}
