//! A vmux process under test: its output read as it comes, its input typed,
//! optionally through a real pseudo-terminal.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const VMUX: &str = env!("CARGO_BIN_EXE_vmux");

/// A running process whose output (stdout and stderr) is read as it comes.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    chunks: mpsc::Receiver<String>,
    pub transcript: String,
    /// Where the next `expect` starts looking.
    cursor: usize,
}

impl Proc {
    pub fn spawn(home: &Path, args: &[&str]) -> Proc {
        let mut command = Command::new(VMUX);
        command.args(args);
        Self::start(command, home)
    }

    /// [`Proc::spawn_in_pty`] with extra environment variables.
    pub fn spawn_in_pty_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::pty(home, args, env)
    }

    /// Runs `vmux ARGS` with a pseudo-terminal as its terminal (through
    /// util-linux `script`), as a person at a terminal would.
    pub fn spawn_in_pty(home: &Path, args: &[&str]) -> Proc {
        Self::pty(home, args, &[])
    }

    fn pty(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let quoted: Vec<String> = std::iter::once(VMUX)
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect();
        let mut command = Command::new("script");
        // script's pty starts 0x0 when its stdin is a pipe; give it a size.
        let shell = format!("stty cols 120 rows 40; exec {}", quoted.join(" "));
        command.args(["-qfec", &shell, "/dev/null"]);
        command.envs(env.iter().copied());
        Self::start(command, home)
    }

    /// Runs any `command` this way (with `VMUX_HOME` set to `home`).
    pub fn start(mut command: Command, home: &Path) -> Proc {
        let mut child = command
            .env("VMUX_HOME", home)
            .env("VMUX_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, chunks) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            // Chunks, not lines: the plain UI's prompts end without a newline.
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            });
        }
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            chunks,
            transcript: String::new(),
            cursor: 0,
        }
    }

    /// Waits up to `within` for output containing `needle` after the last
    /// match; returns the line it is on.
    pub fn expect(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.transcript[self.cursor..]
                .find(needle)
                .map(|i| i + self.cursor)
            {
                let start = self.transcript[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = self.transcript[at..]
                    .find('\n')
                    .map_or(self.transcript.len(), |i| i + at);
                self.cursor = at + needle.len();
                return self.transcript[start..end].to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.transcript.push_str(&chunk),
                Err(_) => panic!(
                    "no {needle:?} within {within:?}; output so far:\n{}",
                    self.transcript
                ),
            }
        }
    }

    /// Waits up to `within` for `first` after the last match, then for
    /// `last` after it; returns the output from the start of `first`'s line
    /// to the end of `last`'s (a whole sheet, say).
    pub fn expect_span(&mut self, first: &str, last: &str, within: Duration) -> String {
        self.expect(first, within);
        let at = self.cursor - first.len();
        let start = self.transcript[..at].rfind('\n').map_or(0, |i| i + 1);
        self.expect(last, within);
        let end = self.transcript[self.cursor..]
            .find('\n')
            .map_or(self.transcript.len(), |i| i + self.cursor);
        self.transcript[start..end].to_owned()
    }

    /// Waits up to `within` until `needle` has appeared anywhere in the
    /// output, before or after the last match (for lines whose order
    /// against others is not fixed); the cursor stays.
    pub fn expect_seen(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.transcript.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.transcript.push_str(&chunk),
                Err(_) => panic!(
                    "no {needle:?} within {within:?}; output so far:\n{}",
                    self.transcript
                ),
            }
        }
    }

    /// Waits up to `within` for any of `needles` after the last match;
    /// returns which one appeared first, or `None`.
    pub fn wait_any(&mut self, needles: &[&str], within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        loop {
            let rest = &self.transcript[self.cursor..];
            let first = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| rest.find(n).map(|at| (at, i, n.len())))
                .min();
            if let Some((at, i, len)) = first {
                self.cursor += at + len;
                return Some(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.transcript.push_str(&chunk),
                Err(_) => return None,
            }
        }
    }

    /// Types `keys` without a newline (a full-screen UI reads keys, not lines).
    pub fn type_raw(&mut self, keys: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(keys.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Proc {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vmux signer` named "phone" on 127.0.0.1 (any port), plain UI, not
/// advertised, with `extra` arguments; and the address it listens on.
pub fn start_signer(home: &Path, extra: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "signer",
        "--listen",
        "127.0.0.1:0",
        "--name",
        "phone",
        "--ui",
        "plain",
        "--no-advertise",
    ];
    args.extend_from_slice(extra);
    let mut signer = Proc::spawn(home, &args);
    let line = signer.expect("listening on", Duration::from_secs(20));
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    (signer, addr)
}
