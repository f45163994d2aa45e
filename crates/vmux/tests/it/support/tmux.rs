//! A command in a real terminal (a detached tmux session of a fixed size),
//! whose screen is read back as text: what a person sees, after the
//! terminal has applied every escape sequence.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of our own with one session; killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Runs `argv` with `env` in a `width`×`height` terminal; `dir` holds
    /// the server's socket.
    pub fn start(dir: &Path, argv: &[&str], env: &[(&str, &str)], size: (u16, u16)) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let mut shell: Vec<String> = vec!["exec".into(), "env".into()];
        shell.extend(env.iter().map(|(k, v)| quote(&format!("{k}={v}"))));
        shell.extend(argv.iter().map(|a| quote(a)));
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &size.0.to_string(),
            "-y",
            &size.1.to_string(),
            &shell.join(" "),
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is not installed (apt-get install tmux)")
    }

    /// The screen as text, one line per row.
    pub fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with each line the terminal wrapped joined into one
    /// row, as a person's copy from the terminal gets it.
    pub fn screen_joined(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-J"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `needle`; returns the screen.
    pub fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen within {within:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows every one of `needles` at once.
    pub fn wait_for_all(&self, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "not all of {needles:?} on screen within {within:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `keys` as they are.
    pub fn type_raw(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-l", keys]).status.success());
    }

    /// Types `keys`, then Enter.
    pub fn type_line(&self, keys: &str) {
        self.type_raw(keys);
        assert!(self.run(&["send-keys", "Enter"]).status.success());
    }

    /// Presses Ctrl-C.
    pub fn ctrl_c(&self) {
        assert!(self.run(&["send-keys", "C-c"]).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Single-quoted for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
