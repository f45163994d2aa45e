//! The agent shares the signer fairly (issue 21.4): a host reached with
//! `ssh -A` floods the forwarded socket with sign requests; the agent lets
//! 8 of them wait on the signer and refuses the rest at once, logged
//! `refusedBusy`; the person's own login still raises its sheet and logs
//! in. Real `ssh -A` to a real sshd on 127.0.0.1, real `ssh-keygen -Y sign`
//! on the "remote" side.

use std::time::{Duration, Instant};

use crate::support::clients::text;
use crate::support::paired::{PASS, Paired, WAIT};
use crate::support::sheet;
use crate::support::sshd::{Sshd, whoami};

/// Sign requests the flood sends at once.
const FLOOD: usize = 40;
/// `quota::MAX_FORWARDED_WAITING`.
const FORWARDED_WAITING: usize = 8;

/// The agent log's `refusedBusy` entries.
fn refused_busy(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["outcome"] == "refusedBusy")
        .collect()
}

#[test]
fn a_forwarded_flood_is_refused_at_once_and_the_own_login_gets_its_sheet() {
    let mut paired = Paired::setup().start();
    let _agent = paired.spawn_agent(&[], &[]);
    paired.wait_connected();
    let keys = std::fs::read_to_string(&paired.pubkey).unwrap();
    let a = Sshd::start(&paired.dir.path().join("a"), &keys, None);
    let flood_dir = paired.dir.path().join("flood");
    std::fs::create_dir_all(&flood_dir).unwrap();
    for i in 0..FLOOD {
        std::fs::write(flood_dir.join(format!("data{i}")), format!("{i}\n")).unwrap();
    }
    // On "a", through the forwarded agent: FLOOD signatures at once.
    let remote = format!(
        "cd {dir} && for i in $(seq 0 {last}); do \
         ssh-keygen -Y sign -n file -f {pubkey} data$i </dev/null >/dev/null 2>&1 & done; \
         wait; echo flood-done",
        dir = flood_dir.display(),
        last = FLOOD - 1,
        pubkey = paired.pubkey.display(),
    );
    let mut flood = a.command(&paired.sock(), &["-A"], &remote);
    let flood = std::thread::spawn(move || flood.output().unwrap());
    // The login to "a" itself is the person's: approved.
    sheet::approve_next(paired.signer(), PASS);

    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let log = paired.request_log();
        let refused = refused_busy(&log).len();
        if refused >= FLOOD - FORWARDED_WAITING {
            break refused;
        }
        assert!(
            Instant::now() < deadline,
            "{refused} refusedBusy in the agent log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = paired.request_log();
    let refusals = refused_busy(&log);
    let slowest = refusals
        .iter()
        .map(|e| e["latencyMs"].as_u64().unwrap())
        .max()
        .unwrap();
    for entry in &refusals {
        // Never sent to the signer.
        assert!(entry.get("requestID").is_none(), "{entry}");
    }
    // Answered at once, not after the sign timeout or a signer's answer.
    assert!(slowest < 1000, "a refusal took {slowest} ms");
    eprintln!(
        "forwarded flood of {FLOOD}: {refused} refused (refusedBusy) within {slowest} ms each"
    );
    assert_eq!(refused, FLOOD - FORWARDED_WAITING);

    // The person's own login, while 8 forwarded requests wait on sheets.
    let mut login = a.command(&paired.sock(), &[], "echo own-login-ok");
    let started = Instant::now();
    let login = std::thread::spawn(move || login.output().unwrap());
    let mut forwarded_sheets = 0;
    loop {
        let shown = sheet::next_sign_sheet(paired.signer());
        if shown.contains("forwarded") {
            forwarded_sheets += 1;
            assert!(
                forwarded_sheets <= FORWARDED_WAITING,
                "more forwarded sheets than the agent lets wait:\n{shown}"
            );
            sheet::deny_shown(paired.signer());
            continue;
        }
        assert!(
            shown.contains("SSH login") && shown.contains(&whoami()),
            "{shown}"
        );
        sheet::approve_shown(paired.signer(), PASS);
        break;
    }
    let out = login.join().unwrap();
    assert!(out.status.success(), "the own login failed: {}", text(&out));
    assert!(text(&out).contains("own-login-ok"));
    eprintln!(
        "own login through the flood: logged in after {:?}, {forwarded_sheets} forwarded sheets \
         denied before its own",
        started.elapsed()
    );
    // The rest of the flood's sheets are denied; its ssh ends.
    while !flood.is_finished() {
        if paired
            .signer()
            .wait_any(&["SSH Sign Request"], Duration::from_millis(500))
            .is_some()
        {
            paired.signer().expect("[a] approve", WAIT);
            sheet::deny_shown(paired.signer());
        }
    }
    let out = flood.join().unwrap();
    assert!(text(&out).contains("flood-done"), "{}", text(&out));
}
