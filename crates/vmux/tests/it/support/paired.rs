//! A `vmux signer` "phone" in a pseudo-terminal (plain UI) holding
//! software identities, and a device home paired with it: where the
//! end-to-end tests whose person approves on the signer start. Each test
//! runs its agent (or `vmux ssh`) as it needs; OpenSSH's clients talk to it.

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vmux_keys::ca::Ca;
use vmux_keys::{KeyType, Keyring};
use vmux_link::home::Home;
use zeroize::Zeroizing;

use super::clients::{openssh, text, wait_child};
use super::process::{Proc, VMUX};
use super::sheet;

pub const WAIT: Duration = Duration::from_secs(20);
/// Every software identity's passphrase, and the CA's.
pub const PASS: &str = "correct horse battery";

/// Makes identities in the signer home it is given.
type MakeIdentities<'a> = Box<dyn FnOnce(&Path) + 'a>;

/// What [`Setup::start`] sets up; [`Paired::setup`] has the defaults.
pub struct Setup<'a> {
    identities: Vec<(&'a str, KeyType)>,
    authorized: Option<&'a [&'a str]>,
    more: Option<MakeIdentities<'a>>,
    listen: String,
    device: &'a str,
    signer_env: Vec<(String, String)>,
    signer_args: Vec<String>,
    socket_outside_home: bool,
    ui: &'a str,
    ca: bool,
}

impl<'a> Setup<'a> {
    /// The software identities to create, in order, passphrase [`PASS`]
    /// (instead of the one "work", ecdsa).
    pub fn identities(mut self, identities: &[(&'a str, KeyType)]) -> Self {
        self.identities = identities.to_vec();
        self
    }

    /// Only these identities go in [`Paired::pubkey`] (default: all).
    pub fn authorized(mut self, names: &'a [&'a str]) -> Self {
        self.authorized = Some(names);
        self
    }

    /// Runs `make` on the signer's home after the software identities are
    /// made: for identities of other kinds.
    pub fn more_identities(mut self, make: impl FnOnce(&Path) + 'a) -> Self {
        self.more = Some(Box::new(make));
        self
    }

    /// The signer's `--listen` (default `127.0.0.1:0`); the device pairs
    /// with 127.0.0.1 at the port it listens on.
    pub fn listen(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.listen);
        self
    }

    /// Listens on a free port picked now, so that a restarted signer is
    /// where the device last found it.
    pub fn fixed_port(self) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.listen(&format!("127.0.0.1:{port}"))
    }

    /// The paired device's name (default "laptop").
    pub fn device(mut self, name: &'a str) -> Self {
        self.device = name;
        self
    }

    /// The signer's `--ui` (default `plain`).
    pub fn ui(mut self, ui: &'a str) -> Self {
        self.ui = ui;
        self
    }

    /// An environment variable for the signer (and its restarts).
    pub fn signer_env(mut self, key: &str, value: &str) -> Self {
        self.signer_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// More `vmux signer` arguments (kept for its restarts).
    pub fn signer_args(mut self, args: &[&str]) -> Self {
        self.signer_args
            .extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// The agent's socket outside the device home, so that an agent whose
    /// home is a mount of its own is still reachable (default: the
    /// agent's default, `agent.sock` in its home).
    pub fn socket_outside_home(mut self) -> Self {
        self.socket_outside_home = true;
        self
    }

    /// No CA key on the signer (default: one, encrypted with [`PASS`]):
    /// the first certificate approved makes it, or the test does.
    pub fn without_ca(mut self) -> Self {
        self.ca = false;
        self
    }

    /// Makes the identities, starts the signer and pairs the device home
    /// with it. No agent runs yet.
    pub fn start(self) -> Paired {
        let dir = tempfile::tempdir().unwrap();
        let signer_home = dir.path().join("signer");
        let device_home = dir.path().join("device");
        let mut keyring = Keyring::load(&Home::at(signer_home.clone()).unwrap()).unwrap();
        for (name, kind) in &self.identities {
            keyring
                .create_software(name, *kind, &Zeroizing::new(PASS.to_owned()))
                .unwrap();
        }
        if self.ca {
            Ca::init(
                &Home::at(signer_home.clone()).unwrap(),
                &Zeroizing::new(PASS.to_owned()),
            )
            .unwrap();
        }
        if let Some(more) = self.more {
            more(&signer_home);
        }
        let keyring = Keyring::load(&Home::at(signer_home.clone()).unwrap()).unwrap();
        let lines: String = keyring
            .list()
            .iter()
            .filter(|id| {
                self.authorized
                    .is_none_or(|names| names.contains(&id.name.as_str()))
            })
            .map(|id| format!("{}\n", id.public().unwrap().to_openssh().unwrap()))
            .collect();
        let pubkey = dir.path().join("authorized.pub");
        std::fs::write(&pubkey, lines).unwrap();
        let sock = if self.socket_outside_home {
            dir.path().join("run").join("agent.sock")
        } else {
            device_home.join("agent.sock")
        };

        let mut paired = Paired {
            signer: None,
            signer_home,
            device_home,
            listen: self.listen,
            addr: String::new(),
            signer_env: self.signer_env,
            ui: self.ui.to_owned(),
            signer_args: self.signer_args,
            pubkey,
            sock,
            dir,
        };
        // Pairing needs a window the person opened; restarts open none.
        paired.start_signer_with(&["--pair"]);
        let home = paired.device_home.clone();
        paired.pair(&home, self.device);
        paired
    }
}

pub struct Paired {
    // First, so that it is stopped before its home goes.
    pub signer: Option<Proc>,
    pub signer_home: PathBuf,
    pub device_home: PathBuf,
    /// The signer's `--listen`, again on a restart.
    listen: String,
    /// Where the device reaches the signer.
    pub addr: String,
    signer_env: Vec<(String, String)>,
    ui: String,
    signer_args: Vec<String>,
    /// The `authorized_keys` lines of the identities (of those named in
    /// [`Setup::authorized`]), in the signer's order.
    pub pubkey: PathBuf,
    sock: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Paired {
    /// One identity, "work" (ecdsa), on a signer listening at
    /// `127.0.0.1:0`, paired as "laptop".
    pub fn setup<'a>() -> Setup<'a> {
        Setup {
            identities: vec![("work", KeyType::Ecdsa)],
            authorized: None,
            more: None,
            listen: "127.0.0.1:0".to_owned(),
            device: "laptop",
            signer_env: Vec::new(),
            signer_args: Vec::new(),
            socket_outside_home: false,
            ui: "plain",
            ca: true,
        }
    }

    /// Starts the signer (in a pty, plain UI unless set) on its home and listen
    /// address, accepting no new devices; returns once it listens.
    pub fn start_signer(&mut self) {
        self.start_signer_with(&[]);
    }

    /// [`Paired::start_signer`] with `extra` arguments.
    pub fn start_signer_with(&mut self, extra: &[&str]) {
        let env: Vec<(&str, &str)> = self
            .signer_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut args = vec![
            "signer",
            "--listen",
            &self.listen,
            "--name",
            "phone",
            "--ui",
            &self.ui,
        ];
        args.extend(self.signer_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let mut signer = Proc::spawn_in_pty_env(&self.signer_home, &args, &env);
        let line = signer.expect("listening on", WAIT);
        let port = line.trim().rsplit(':').next().unwrap();
        self.addr = format!("127.0.0.1:{port}");
        self.signer = Some(signer);
    }

    /// Pairs the device home `home`, named `name`, with the signer.
    pub fn pair(&mut self, home: &Path, name: &str) {
        let mut pair = Proc::spawn(home, &["pair", "--signer", &self.addr, "--name", name]);
        self.signer().expect("wants to pair", WAIT);
        self.signer().type_line("a");
        pair.expect("Paired with phone", WAIT);
        assert!(pair.wait_exit(WAIT).success());
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

    /// The agent's socket.
    pub fn sock(&self) -> PathBuf {
        self.sock.clone()
    }

    /// Starts `wrapper… vmux agent --socket SOCK --cert-validity 0 extra…`
    /// (no session certificate: for tests about forwarded signing) and
    /// waits until its socket answers.
    pub fn spawn_agent(&self, wrapper: &[&str], extra: &[&str]) -> Proc {
        let mut args = vec!["--cert-validity", "0"];
        args.extend_from_slice(extra);
        agent_at(wrapper, &self.device_home, &self.sock(), &args)
    }

    /// Starts `vmux agent` in device home `home` (socket `agent.sock`
    /// there), which asks for a session certificate on connecting; waits
    /// until its socket answers.
    pub fn spawn_agent_in(&self, home: &Path) -> Proc {
        agent_at(&[], home, &home.join("agent.sock"), &[])
    }

    /// Runs `vmux ARGS` against the agent.
    pub fn vmux(&self, args: &[&str]) -> Output {
        Command::new(VMUX)
            .args(args)
            .env("VMUX_HOME", &self.device_home)
            .env("SSH_AUTH_SOCK", self.sock())
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap()
    }

    /// Waits until the agent is connected to the signer and offers "work".
    pub fn wait_connected(&self) -> String {
        self.wait_status("Connected to phone");
        self.wait_status("work  SHA256:")
    }

    /// Polls `vmux status` until its output contains `needle`.
    pub fn wait_status(&self, needle: &str) -> String {
        wait_status_in(&self.device_home, &self.sock(), needle)
    }

    pub fn ssh_add(&self, args: &[&str]) -> Output {
        openssh("ssh-add", &self.sock(), args, &[])
            .output()
            .unwrap()
    }

    /// Starts `ssh-keygen -Y sign` of `msg` (written to the file `name`)
    /// with the first identity in [`Paired::pubkey`], through the agent.
    pub fn start_sign(&self, name: &str, msg: &[u8]) -> (Child, PathBuf) {
        let file = self.dir.path().join(name);
        std::fs::write(&file, msg).unwrap();
        // ssh-keygen asks before overwriting a signature; nobody would answer.
        let _ = std::fs::remove_file(file.with_extension("sig"));
        let child = openssh(
            "ssh-keygen",
            &self.sock(),
            &["-Y", "sign", "-n", "file", "-f"],
            &[],
        )
        .arg(&self.pubkey)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        (child, file)
    }

    /// Approves the next sign-request sheet on the signer with PASS.
    pub fn approve(&mut self) {
        sheet::approve_next(self.signer(), PASS);
    }

    /// Approves the next certificate sheet on the signer and types the CA
    /// passphrase.
    pub fn approve_certificate(&mut self) {
        self.signer().expect("Session certificate for", WAIT);
        self.signer().type_line("a");
        self.signer().expect("Passphrase for the CA key", WAIT);
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

    /// Whether `ssh-keygen -Y verify` accepts `file`'s signature (in
    /// `file.sig`) by the first identity in [`Paired::pubkey`].
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
        std::fs::read_to_string(self.device_home.join("agent-log.jsonl")).unwrap_or_default()
    }
}

/// `wrapper… vmux agent --socket SOCK extra…` in `home`, once its socket answers.
pub fn agent_at(wrapper: &[&str], home: &Path, sock: &Path, extra: &[&str]) -> Proc {
    let mut args: Vec<&str> = wrapper.to_vec();
    args.extend([VMUX, "agent", "--socket", sock.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let mut command = Command::new(args[0]);
    command.args(&args[1..]);
    let mut agent = Proc::start(command, home);
    // Not by expecting the export line: stdout and stderr reach the
    // transcript by separate threads, and a log line that overtook the
    // export line would then sit before the cursor, unseen by `expect`.
    let deadline = Instant::now() + WAIT;
    while UnixStream::connect(sock).is_err() {
        if Instant::now() > deadline {
            // Fails, showing what the agent said.
            agent.expect("export SSH_AUTH_SOCK;", Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    agent
}

/// Polls `vmux status` of the agent at `sock` (device home `home`) until
/// its output contains `needle`.
pub fn wait_status_in(home: &Path, sock: &Path, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new(VMUX)
            .arg("status")
            .env("VMUX_HOME", home)
            .env("SSH_AUTH_SOCK", sock)
            .env("VMUX_LOG", "warn")
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        if status.contains(needle) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {needle:?}; last:\n{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
