//! A real OpenSSH server on 127.0.0.1 with a throwaway configuration, and
//! the client options that talk to it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd; killed on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sshd {
    /// Starts sshd in `dir`, accepting the keys in `authorized_keys` and,
    /// when given, certificates from `trusted_ca`.
    pub fn start(dir: &Path, authorized_keys: &str, trusted_ca: Option<&str>) -> Sshd {
        Self::start_with(dir, authorized_keys, trusted_ca, "")
    }

    /// [`Sshd::start`] with more `sshd_config` lines (e.g. `RevokedKeys PATH\n`).
    pub fn start_with(
        dir: &Path,
        authorized_keys: &str,
        trusted_ca: Option<&str>,
        more_config: &str,
    ) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        // Privilege separation wants this directory to exist.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key)
                .status()
                .unwrap();
            assert!(status.success());
        }
        std::fs::write(dir.join("authorized_keys"), authorized_keys).unwrap();
        let ca_line = match trusted_ca {
            Some(ca) => {
                std::fs::write(dir.join("trusted_ca.pub"), ca).unwrap();
                format!(
                    "TrustedUserCAKeys {}\n",
                    dir.join("trusted_ca.pub").display()
                )
            }
            None => String::new(),
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n{ca_line}\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowAgentForwarding yes\n\
             LogLevel VERBOSE\nSubsystem sftp /usr/lib/openssh/sftp-server\n{more_config}",
            host_key.display(),
            dir.join("sshd.pid").display(),
            dir.join("authorized_keys").display(),
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sshd not installed (apt-get install openssh-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sshd {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// `ssh` to this server as the current user, through the agent at `sock`.
    pub fn ssh(&self, sock: &Path, extra: &[&str], command: &str) -> Output {
        self.command(sock, extra, command).output().unwrap()
    }

    /// `ssh EXTRA… me@127.0.0.1 REMOTE` to this server through the agent
    /// at `sock`, stdin closed, ready to run.
    pub fn command(&self, sock: &Path, extra: &[&str], remote: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args(self.client_options())
            .args(extra)
            .arg(format!("{}@127.0.0.1", whoami()))
            .arg(remote)
            .env("SSH_AUTH_SOCK", sock)
            .stdin(Stdio::null());
        ssh
    }

    /// Options that make a client trust this server's key and use only the agent.
    pub fn client_options(&self) -> Vec<String> {
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-p".into(),
            self.port.to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            format!(
                "UserKnownHostsFile={}",
                self.dir.join("known_hosts").display()
            ),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "IdentityFile=/dev/null".into(),
            "-o".into(),
            "ConnectTimeout=10".into(),
        ]
    }

    /// This server's host public key, `ssh-ed25519 AAAA…`.
    pub fn host_key(&self) -> String {
        let key = std::fs::read_to_string(self.dir.join("host_ed25519.pub")).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        key.join(" ")
    }

    /// This server's line for a `known_hosts` file.
    pub fn known_hosts_line(&self) -> String {
        let key = std::fs::read_to_string(self.dir.join("host_ed25519.pub")).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "))
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
