#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! No sheet is ever shown in part: the full-screen UI in a real terminal
//! (a tmux session of a fixed size) with the longest sign sheet the wire
//! allows, at 80×24 and 40×12. The screen shows the too-small notice and
//! none of the sheet, and `a` answers nothing; a sheet that fits is shown
//! whole with its buttons, and one that fits only after the terminal is
//! enlarged takes keys only then.
//!
//! The test binary runs itself in tmux: in that child, `child_too_small`
//! runs `ui::tui::run` and writes what each request got to a file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio::time::timeout;
use vmux_proto::envelope::limits::{MAX_BINDINGS, MAX_DEVICE_NAME_LEN, MAX_TEXT_LEN};
use vmux_signer::approval::{Approvals, Destination, Sheet};
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::reading::{Forwarded, Hop, Host, Purpose, Reading};
use vmux_signer::ui::tui;

/// Set in the child: where it writes its results.
const CHILD_OUT: &str = "VMUX_TOO_SMALL_OUT";
/// How long the child leaves each too-big sheet up.
const PENDING: Duration = Duration::from_secs(3);

fn key() -> Vec<u8> {
    ssh_key::PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH",
    )
    .unwrap()
    .to_bytes()
    .unwrap()
}

fn sheet(device: &str, reading: &Reading, key_name: &str) -> Sheet {
    Sheet::Sign {
        device: device.to_owned(),
        claimed: None,
        destination: Box::new(Destination::describe(reading, &HostKeys::default(), device)),
        key: key_name.to_owned(),
    }
}

/// Every name at its cap, every binding a forwarding hop.
fn longest() -> Sheet {
    let reading = Reading {
        purpose: Purpose::Login {
            user: "u".repeat(256),
        },
        host: Host::Verified {
            key: key(),
            claimed_name: Some("h".repeat(MAX_TEXT_LEN)),
        },
        through: (0..MAX_BINDINGS - 1)
            .map(|_| Hop {
                key: key(),
                claimed_name: Some("j".repeat(MAX_TEXT_LEN)),
            })
            .collect(),
        forwarded: Forwarded::Bound,
    };
    sheet(
        &"d".repeat(MAX_DEVICE_NAME_LEN),
        &reading,
        &"k".repeat(MAX_DEVICE_NAME_LEN),
    )
}

fn usual(device: &str) -> Sheet {
    let reading = Reading {
        purpose: Purpose::Login {
            user: "root".into(),
        },
        host: Host::Verified {
            key: key(),
            claimed_name: Some("prod-db".into()),
        },
        through: Vec::new(),
        forwarded: Forwarded::No,
    };
    sheet(device, &reading, "work")
}

/// Not a test by itself: the UI the tmux test drives.
#[test]
fn child_too_small() {
    let Ok(out) = std::env::var(CHILD_OUT) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = rt.block_on(async {
        let (approvals, rx) = Approvals::new();
        let ui = tokio::spawn(tui::run(rx, approvals.pairing_window()));
        let mut log = String::new();
        let mut turn = approvals.turn().await;
        // The longest sheet: up for PENDING, while the parent presses `a`.
        let expires = Instant::now() + PENDING;
        let answer = timeout(PENDING, turn.ask_until(longest(), expires)).await;
        log += &format!(
            "longest={}\n",
            answer.map_or("pending".into(), |a| format!("{a:?}"))
        );
        turn.banner("Next: a usual sheet");
        // A usual sheet: whole at 80×24; at 40×12 only once enlarged.
        let expires = Instant::now() + Duration::from_secs(20);
        let answer = timeout(
            Duration::from_secs(20),
            turn.ask_until(usual("laptop"), expires),
        )
        .await;
        log += &format!(
            "usual={}\n",
            answer.map_or("pending".into(), |a| format!("{a:?}"))
        );
        // Esc at the passphrase prompt cancels, and leaves a line.
        let secret = timeout(
            Duration::from_secs(20),
            turn.secret("Passphrase for \"work\""),
        )
        .await;
        log += &format!(
            "secret={}\n",
            secret.map_or("pending".into(), |s| format!("{:?}", s.is_ok()))
        );
        // Up until the parent has read the screen.
        let done = std::path::PathBuf::from(format!("{out}.done"));
        let until = Instant::now() + Duration::from_secs(10);
        while !done.exists() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(turn);
        drop(approvals);
        log += &format!("ui={:?}\n", ui.await.unwrap());
        log
    });
    std::fs::write(out, log).unwrap();
    std::process::exit(0);
}

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is not installed (apt-get install tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn press(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-l", keys]).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn start(dir: &Path, out: &Path, size: (u16, u16)) -> Tmux {
    let tmux = Tmux {
        socket: dir.join("tmux.sock"),
    };
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "exec env {CHILD_OUT}='{}' TERM=xterm-256color '{}' --exact child_too_small --nocapture --test-threads=1",
        out.display(),
        exe.display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        &size.0.to_string(),
        "-y",
        &size.1.to_string(),
        &cmd,
    ]);
    assert!(started.status.success(), "{started:?}");
    tmux
}

/// The whole screen as one line, borders and runs of blanks made one
/// space: the notice wraps on a narrow screen.
fn flat(screen: &str) -> String {
    screen
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn results(out: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(out)
            && text.contains("ui=")
        {
            return text;
        }
        assert!(Instant::now() < deadline, "the child never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn the_longest_sheet_is_never_shown_in_part(size: (u16, u16)) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("answers");
    let tmux = start(dir.path(), &out, size);
    let screen = tmux.wait_for("SSH Sign Request");
    let shown = flat(&screen);
    assert!(
        shown.contains("terminal too small for this request: enlarge it or use --ui plain"),
        "{screen}"
    );
    for part in [
        "From Device",
        "Destination",
        "ddddd",
        "hhhhh",
        "Approve",
        "Deny",
    ] {
        assert!(!screen.contains(part), "{part:?} shown in part:\n{screen}");
    }
    // Well past the quiet wait: `a`, Enter, `y` answer nothing.
    std::thread::sleep(tui::ARM_DELAY * 2);
    for key in ["a", "\r", "y", "A"] {
        tmux.press(key);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The usual sheet next.
    // The usual sheet next (it covers the status line on 80×24).
    let screen = tmux.wait_for(if size.0 < 80 {
        "Next: a usual sheet"
    } else {
        "laptop"
    });
    if size.0 < 80 {
        // Too small for it too: enlarged, it shows whole and takes keys.
        assert!(!screen.contains("Approve"), "{screen}");
        let resized = tmux.run(&["resize-window", "-x", "80", "-y", "24"]);
        assert!(resized.status.success(), "{resized:?}");
    }
    let screen = tmux.wait_for("Enter choose");
    for part in [
        "From Device",
        "laptop",
        "Destination",
        "User",
        "root",
        "Approve",
        "Deny",
    ] {
        assert!(screen.contains(part), "{part:?} missing:\n{screen}");
    }
    // The countdown runs on the sheet.
    let left = |screen: &str| -> u64 {
        let at = screen.find("Expires in ").unwrap() + "Expires in ".len();
        screen[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let first = left(&screen);
    let deadline = Instant::now() + Duration::from_secs(5);
    while left(&tmux.screen()) >= first {
        assert!(
            Instant::now() < deadline,
            "the countdown stood still:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.press("a");
    tmux.wait_for("Enter submit");
    assert!(
        tmux.run(&["send-keys", "Escape"]).status.success(),
        "tmux send-keys"
    );
    let screen = tmux.wait_for("Cancelled at");
    std::fs::write(format!("{}.done", out.display()), "").unwrap();
    assert!(
        flat(&screen).contains("Cancelled at \"Passphrase for \"work\"\""),
        "{screen}"
    );
    let results = results(&out);
    assert_eq!(
        results,
        "longest=pending\nusual=Ok(Approve)\nsecret=false\nui=Ok(())\n",
        "{}",
        tmux.screen()
    );
}

#[test]
fn the_longest_sheet_on_80_by_24() {
    the_longest_sheet_is_never_shown_in_part((80, 24));
}

#[test]
fn the_longest_sheet_on_40_by_12() {
    the_longest_sheet_is_never_shown_in_part((40, 12));
}
