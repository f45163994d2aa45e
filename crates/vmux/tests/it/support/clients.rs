//! OpenSSH's clients (`ssh-add`, `ssh-keygen`) run against an agent's
//! socket, and what they said.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `program ARGS` talking to the agent at `sock`, with `env` on top. No
/// askpass unless `env` sets one: a client that would prompt fails instead.
pub fn openssh(program: &str, sock: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .env("SSH_AUTH_SOCK", sock)
        .env_remove("DISPLAY")
        .env_remove("SSH_ASKPASS")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    c
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
        std::thread::sleep(Duration::from_millis(10));
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
