#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Drives the full-screen UI through a real pseudo-terminal.
//!
//! The test binary re-runs itself under util-linux `script` (which gives the
//! child a pty); in the child, `child_scenario` runs `ui::tui::run` against a
//! scripted request sequence and writes what the requests got to a file. The
//! parent watches the screen output and types like a person would.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::time::timeout;
use vmux_signer::approval::{Approvals, Destination, Sheet};
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::reading::{Forwarded, Host, Purpose, Reading};
use vmux_signer::ui::tui;

/// Set in the child: where it writes its results.
const CHILD_OUT: &str = "VMUX_TUI_TEST_OUT";

fn sign(device: &str) -> Sheet {
    Sheet::Sign {
        device: device.to_owned(),
        claimed: None,
        destination: Box::new(Destination::describe(
            &Reading {
                purpose: Purpose::Login { user: "ci".into() },
                host: Host::ByRequester {
                    key: ssh_key::PublicKey::from_openssh("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH").unwrap().to_bytes().unwrap(),
                    name: Some("build.example.org".into()),
                },
                through: Vec::new(),
                forwarded: Forwarded::No,
            },
            &HostKeys::default(),
            device,
        )),
        key: "work-key".into(),
    }
}

/// Not a test by itself: the body of the child the pty test starts.
#[test]
fn child_scenario() {
    let Ok(out) = std::env::var(CHILD_OUT) else {
        return;
    };
    let size = rustix::termios::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(std::io::stdout(), size).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut log = rt.block_on(async {
        let (approvals, rx) = Approvals::new();
        let window = approvals.pairing_window();
        let ui = tokio::spawn(tui::run(rx, window.clone()));
        let mut log = String::new();
        let mut first = approvals.turn().await;
        // Queued behind the first: its sheet must say "1 more waiting".
        let queued = approvals.clone();
        let second = tokio::spawn(async move { queued.turn().await });
        log += &format!("first={:?}\n", first.ask(sign("laptop")).await);
        drop(first);
        let mut turn = second.await.unwrap();
        log += &format!("second={:?}\n", turn.ask(sign("headset")).await);
        log += &format!("third={:?}\n", turn.ask(sign("desktop")).await);
        let secret = turn.secret("Passphrase for work-key").await;
        log += &format!(
            "secret={}\n",
            secret.as_deref().map(|s| s.as_str()).unwrap_or("<none>")
        );
        let policy = vmux_keys::ca::Policy {
            principals: vec!["alice".into()],
            ..vmux_keys::ca::Policy::default_for_this_user()
        };
        let grant = policy
            .grant("tablet", "tablet-id", 3600, 1_800_000_000)
            .unwrap();
        let cert = Sheet::Certificate {
            device_key: None,
            grant,
            claimed: None,
            new_ca: false,
        };
        let withdrawn = timeout(Duration::from_millis(600), turn.ask(cert))
            .await
            .is_err();
        log += &format!("withdrawn={withdrawn}\n");
        // A prompt withdrawn while its passphrase is half typed, then a
        // sheet: the rest of that typing must not answer it.
        let half = timeout(
            Duration::from_millis(2500),
            turn.secret("Passphrase for other-key"),
        )
        .await
        .is_err();
        let after = timeout(Duration::from_millis(2000), turn.ask(sign("after"))).await;
        log += &format!("half_withdrawn={half}\nafter={after:?}\n");
        drop(turn);
        // `p` between sheets opens the pairing window, but only once the
        // keyboard is quiet: the parent types `p`s across the withdrawal
        // and on for 0.5 s, pauses 0.7 s, then `p`.
        let idle = std::time::Instant::now();
        let deadline = idle + Duration::from_secs(10);
        while !window.is_open() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log += &format!("pairing_open={}\n", window.is_open());
        log += &format!(
            "pairing_held_back={}\n",
            idle.elapsed() >= Duration::from_millis(1000)
        );
        drop(approvals);
        log += &format!("ui={:?}\n", ui.await.unwrap());
        log
    });
    let modes = rustix::termios::tcgetattr(std::io::stdin())
        .unwrap()
        .local_modes;
    let cooked =
        modes.contains(rustix::termios::LocalModes::ICANON | rustix::termios::LocalModes::ECHO);
    log += &format!("cooked={cooked}\n");
    std::fs::write(out, log).unwrap();
    // Exit before the harness prints, so the screen output ends with ours.
    std::process::exit(0);
}

/// The child's terminal output, collected by a reader thread.
struct Screen {
    child: Child,
    raw: Arc<Mutex<Vec<u8>>>,
    /// Set once `script` closed its output: nothing more can appear.
    eof: Arc<AtomicBool>,
    at: usize,
}

/// A failed assertion must not leave the child waiting for keys forever.
impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Screen {
    /// The output as text: escape sequences dropped, cursor moves and runs of
    /// blanks made one space (ratatui skips unchanged cells by moving).
    fn text(&self) -> String {
        let raw = self.raw.lock().unwrap().clone();
        let raw = String::from_utf8_lossy(&raw);
        let mut out = String::new();
        let mut chars = raw.chars().peekable();
        let mut blank = false;
        let mut push = |out: &mut String, c: char| {
            if c.is_whitespace() {
                if !blank {
                    out.push(' ');
                }
                blank = true;
            } else {
                out.push(c);
                blank = false;
            }
        };
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                push(&mut out, if c.is_control() { ' ' } else { c });
                continue;
            }
            match chars.next() {
                Some('[') => loop {
                    match chars.next() {
                        Some(f @ '\x40'..='\x7e') => {
                            if f == 'H' {
                                push(&mut out, ' ');
                            }
                            break;
                        }
                        Some(_) => {}
                        // An unfinished sequence: stop, more is coming.
                        None => return out,
                    }
                },
                Some(_) => {}
                None => return out,
            }
        }
        out
    }

    /// Waits until every needle shows up after the current position; moves
    /// the position past the first one.
    fn wait_for(&mut self, needles: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ended = self.eof.load(Ordering::SeqCst);
            let text = self.text();
            let rest = text.get(self.at..).unwrap_or("");
            if needles.iter().all(|n| rest.contains(n)) {
                let first = rest.find(needles[0]).unwrap();
                self.at += first + needles[0].len();
                return;
            }
            if ended || Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "never saw {needles:?}; screen after position {}:\n{rest}",
                    self.at
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether `needle` appeared after the current position yet.
    fn shows(&self, needle: &str) -> bool {
        self.text()
            .get(self.at..)
            .is_some_and(|rest| rest.contains(needle))
    }

    fn press(&mut self, keys: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(keys.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

#[test]
fn sheet_and_secret_through_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("answers");
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "'{}' --exact child_scenario --nocapture --test-threads=1",
        exe.display()
    );
    let spawned = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env(CHILD_OUT, &out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`script` not found: install util-linux's `script` (Debian package bsdutils)")
        }
        Err(e) => panic!("starting `script`: {e}"),
    };
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let eof = Arc::new(AtomicBool::new(false));
    let (sink, done) = (Arc::clone(&raw), Arc::clone(&eof));
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        done.store(true, Ordering::SeqCst);
    });
    let mut screen = Screen {
        child,
        raw,
        eof,
        at: 0,
    };
    let started = Instant::now();

    // First sheet: the words, the live queue count, then `a` approves. The
    // second `a` is typeahead: it must not answer the next sheet.
    screen.wait_for(&[
        "SSH Sign Request",
        "From Device laptop",
        "Destination build.example.org",
        "1 more waiting",
    ]);
    screen.wait_for(&["Enter choose"]);
    screen.press("aa");

    // Second sheet: `a` typed as it appears (before the key hint shows) is
    // ignored; then Enter on the default focus denies.
    screen.wait_for(&["From Device headset"]);
    let early = !screen.shows("Enter choose");
    // Not seeing the sheet before it armed means 300 ms passed unobserved.
    assert!(
        early,
        "the key hint showed with the sheet: keys were not held back (or this machine stalled)"
    );
    screen.press("a");
    screen.wait_for(&["Enter choose"]);
    screen.press("\r");

    // Third sheet: Tab moves the focus to Approve.
    screen.wait_for(&["From Device desktop"]);
    screen.wait_for(&["Enter choose"]);
    screen.press("\t\r");

    // The secret: masked, Backspace edits, Enter submits.
    screen.wait_for(&["User verification", "Passphrase for work-key"]);
    screen.wait_for(&["Enter submit"]);
    screen.press("hunter22\x7f\r");

    // A sheet withdrawn while shown is dismissed with a banner.
    screen.wait_for(&["Session certificate request"]);
    screen.wait_for(&["Withdrawn before an answer"]);

    // Half a passphrase, then the prompt goes and a sheet comes; the rest,
    // typed on as a person would (it ends in "a" and Enter), reaches no one.
    screen.wait_for(&["Passphrase for other-key"]);
    screen.wait_for(&["Enter submit"]);
    screen.press("hunt");
    screen.wait_for(&["From Device after"]);
    // At a typist's pace, so the "a" comes well after the sheet appeared:
    // only the quiet rule holds it back, not the sheet being new.
    for key in ["e", "r", "2", "a", "\r"] {
        screen.press(key);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Between sheets, `p` opens the pairing window, but not while typing
    // runs on from the sheet that just went: `p`s typed across the moment
    // it goes, each within 300 ms of the last, are dropped; the one after a
    // pause counts.
    let deadline = Instant::now() + Duration::from_secs(10);
    // (The idle screen's "Waiting for requests" is drawn only once the
    // sheet has gone.)
    while !screen.shows("Waiting for requests") {
        assert!(Instant::now() < deadline, "the sheet was never withdrawn");
        screen.press("p");
        std::thread::sleep(Duration::from_millis(50));
    }
    screen.wait_for(&["Waiting for requests"]);
    for _ in 0..10 {
        screen.press("p");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !screen.shows("Accepting new devices"),
        "run-on typing opened a pairing window"
    );
    std::thread::sleep(Duration::from_millis(700));
    screen.press("p");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = screen.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the UI did not exit:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(screen.child.stdin.take());
    reader.join().unwrap();
    assert!(
        status.success(),
        "child failed: {status}\n{}",
        screen.text()
    );

    let answers = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        answers,
        "first=Ok(Approve)\nsecond=Ok(Deny)\nthird=Ok(Approve)\nsecret=hunter2\nwithdrawn=true\n\
         half_withdrawn=true\nafter=Err(Elapsed(()))\npairing_open=true\npairing_held_back=true\n\
         ui=Ok(())\ncooked=true\n"
    );
    let raw = screen.raw.lock().unwrap().clone();
    // One bullet per key typed (ratatui draws only the new one each time).
    assert!(
        screen.text().matches('•').count() >= 8,
        "the secret is shown masked"
    );
    assert!(
        !String::from_utf8_lossy(&raw).contains("hunter"),
        "the secret is never echoed"
    );
    assert!(
        raw.ends_with(b"\x1b[?1049l"),
        "the alternate screen is left last"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// Set in the child started without a terminal.
const CHILD_NO_TTY: &str = "VMUX_TUI_TEST_NO_TTY";

/// Not a test by itself: runs the UI with stdout on a pipe.
#[test]
fn child_without_tty() {
    if std::env::var_os(CHILD_NO_TTY).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (approvals, rx) = Approvals::new();
    let err = rt
        .block_on(tui::run(rx, approvals.pairing_window()))
        .unwrap_err();
    println!("error: {err}");
}

#[test]
fn refuses_without_a_terminal() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_without_tty",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_NO_TTY, "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("use --ui plain"), "{out}");
    assert!(!out.contains("\x1b["), "nothing was drawn: {out:?}");
}
