//! A `vmux signer` in a pseudo-terminal with one software identity, paired
//! with an agent home; agents started however a test needs (through a
//! relay, under faketime, inside a mount namespace), and OpenSSH's clients
//! talking to them.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

use super::process::{Proc, VMUX};

pub const WAIT: Duration = Duration::from_secs(20);
pub const PASS: &str = "correct horse battery";

pub struct Paired {
    pub dir: tempfile::TempDir,
    pub signer_home: PathBuf,
    pub agent_home: PathBuf,
    /// Where the signer listens; a restarted signer listens there again.
    pub addr: String,
    pub signer: Option<Proc>,
    /// The identity's `authorized_keys` line, in `work.pub`.
    pub pubkey: PathBuf,
}

impl Paired {
    /// A signer "phone" holding "work" (ecdsa, passphrase [`PASS`]),
    /// paired with the agent home as "laptop" at `127.0.0.1:PORT`. No
    /// agent runs yet.
    pub fn start() -> Paired {
        let dir = tempfile::tempdir().unwrap();
        let signer_home = dir.path().join("signer");
        let agent_home = dir.path().join("agent");
        let mut keyring = Keyring::load(&Home::at(signer_home.clone()).unwrap()).unwrap();
        let id = keyring
            .create_software("work", KeyType::Ecdsa, &Zeroizing::new(PASS.to_owned()))
            .unwrap();
        let pubkey = dir.path().join("work.pub");
        std::fs::write(
            &pubkey,
            format!("{}\n", id.public().unwrap().to_openssh().unwrap()),
        )
        .unwrap();
        // A fixed port, so that a restarted signer is where the agent
        // last found it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut paired = Paired {
            dir,
            signer_home,
            agent_home,
            addr: format!("127.0.0.1:{port}"),
            signer: None,
            pubkey,
        };
        paired.start_signer();
        let mut pair = Proc::spawn(
            &paired.agent_home,
            &["pair", "--signer", &paired.addr, "--name", "laptop"],
        );
        paired.signer().expect("wants to pair", WAIT);
        paired.signer().type_line("a");
        pair.expect("Paired with phone", WAIT);
        assert!(pair.wait_exit(WAIT).success());
        paired
    }

    /// Starts the signer on [`Paired::addr`] (plain UI in a pty); returns
    /// once it listens.
    pub fn start_signer(&mut self) {
        let mut signer = Proc::spawn_in_pty(
            &self.signer_home,
            &[
                "signer", "--listen", &self.addr, "--name", "phone", "--ui", "plain",
            ],
        );
        signer.expect("listening on", WAIT);
        self.signer = Some(signer);
    }

    /// Kills the signer and waits until its port refuses connections.
    pub fn kill_signer(&mut self) {
        drop(self.signer.take());
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(&self.addr).is_ok() {
            assert!(Instant::now() < deadline, "the signer still listens");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signer(&mut self) -> &mut Proc {
        self.signer.as_mut().unwrap()
    }

    /// The agent's socket: outside its home, so an agent whose home is a
    /// mount of its own is still reachable.
    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("run").join("agent.sock")
    }

    /// Starts `wrapper… vmux agent --socket SOCK --cert-validity 0 extra…`
    /// (no session certificate: these tests are about forwarded signing)
    /// and waits until its socket answers.
    pub fn spawn_agent(&self, wrapper: &[&str], extra: &[&str]) -> Proc {
        let sock = self.sock();
        let mut args: Vec<&str> = wrapper.to_vec();
        args.extend([
            VMUX,
            "agent",
            "--socket",
            sock.to_str().unwrap(),
            "--cert-validity",
            "0",
        ]);
        args.extend_from_slice(extra);
        let mut command = Command::new(args[0]);
        command.args(&args[1..]);
        let mut agent = Proc::start(command, &self.agent_home);
        // Not by expecting the export line: stdout and stderr reach the
        // transcript by separate threads, and a log line that overtook the
        // export line would then sit before the cursor, unseen by `expect`.
        let deadline = Instant::now() + WAIT;
        while UnixStream::connect(&sock).is_err() {
            if Instant::now() > deadline {
                // Fails, showing what the agent said.
                agent.expect("export SSH_AUTH_SOCK;", Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// Runs `vmux ARGS` against the agent.
    pub fn vmux(&self, args: &[&str]) -> Output {
        Command::new(VMUX)
            .args(args)
            .env("VMUX_HOME", &self.agent_home)
            .env("SSH_AUTH_SOCK", self.sock())
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap()
    }

    /// Waits until the agent is connected to the signer and offers its key.
    pub fn wait_connected(&self) -> String {
        self.wait_status("Connected to phone");
        self.wait_status("work  SHA256:")
    }

    /// Polls `vmux status` until its output contains `needle`.
    pub fn wait_status(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.vmux(&["status"]);
            let text = text(&out);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "status never showed {needle:?}; last:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ssh_add(&self, args: &[&str]) -> Output {
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", self.sock())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `ssh-keygen -Y sign` of `msg` (written to the file `name`)
    /// with the identity, through the agent.
    pub fn start_sign(&self, name: &str, msg: &[u8]) -> (Child, PathBuf) {
        let file = self.dir.path().join(name);
        std::fs::write(&file, msg).unwrap();
        let child = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(&self.pubkey)
            .arg(&file)
            .env("SSH_AUTH_SOCK", self.sock())
            .env_remove("DISPLAY")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, file)
    }

    /// Approves the next sheet on the signer and types the passphrase.
    pub fn approve(&mut self) {
        self.signer().expect("SSH Sign Request", WAIT);
        self.signer().type_line("a");
        self.signer().expect("Passphrase for", WAIT);
        self.signer().type_line(PASS);
    }

    /// A signature through the agent, approved on the signer, that
    /// `ssh-keygen -Y verify` accepts.
    pub fn sign_approved(&mut self, name: &str) {
        let (mut child, file) = self.start_sign(name, format!("{name}\n").as_bytes());
        self.approve();
        let (ok, err) = wait_child(&mut child, WAIT);
        assert!(ok, "{name}: {err}");
        assert!(
            self.verifies(&file),
            "{name}: the signature does not verify"
        );
    }

    pub fn verifies(&self, file: &Path) -> bool {
        let allowed = self.dir.path().join("allowed");
        let line = std::fs::read_to_string(&self.pubkey).unwrap();
        std::fs::write(&allowed, format!("me {line}")).unwrap();
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-I", "me", "-n", "file", "-f"])
            .arg(&allowed)
            .arg("-s")
            .arg(file.with_extension("sig"))
            .stdin(std::fs::File::open(file).unwrap())
            .output()
            .unwrap()
            .status
            .success()
    }

    /// The agent's request log as it is on disk here.
    pub fn request_log(&self) -> String {
        std::fs::read_to_string(self.agent_home.join("agent-log.jsonl")).unwrap_or_default()
    }
}

/// Waits for `child` to exit; whether it succeeded, and its stderr.
pub fn wait_child(child: &mut Child, within: Duration) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
