//! `vmux agent`: the ssh-agent stand-in, in the foreground.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vmux_agent::cert::DEFAULT_VALIDITY_SECS;
use vmux_agent::link::DEFAULT_SIGNER_WAIT;
use vmux_agent::upstream::Upstream;
use vmux_agent::{CertConfig, Config, DEFAULT_SIGN_TIMEOUT};
use vmux_link::clock::SystemClock;
use vmux_link::home::Home;

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Socket path (default: ~/.ssh/vmux-agent.sock, or $VMUX_HOME/agent.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The signer's address, instead of the one it was last reached at.
    #[arg(long, value_name = "HOST:PORT")]
    signer: Option<String>,
    /// Longest wait for a forwarded signature, approval included.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SIGN_TIMEOUT.as_secs())]
    sign_timeout: u64,
    /// Longest wait for a signer that is not reachable and left no wake
    /// endpoint, before a signature fails.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SIGNER_WAIT.as_secs())]
    signer_wait: u64,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Session certificate validity to ask the signer for, in seconds (its
    /// policy may shorten it); 0 asks for no certificate.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_VALIDITY_SECS)]
    cert_validity: u64,
    /// Log to the terminal even when started in the background (`vmux
    /// agent &`); otherwise a background agent logs to its log file.
    #[arg(long)]
    log_stderr: bool,
}

impl Args {
    /// The file to log to instead of the terminal: started in the
    /// background of a terminal (`vmux agent &`), its lines would be drawn
    /// over whatever the shell shows next. Says where, once.
    pub fn log_file(&self) -> Result<Option<PathBuf>> {
        if self.log_stderr || !in_background() {
            return Ok(None);
        }
        let path = super::logging::agent_path()?;
        errln!(
            "vmux agent: started in the background, so it logs to {} (--log-stderr keeps the log here)",
            path.display()
        );
        Ok(Some(path))
    }
}

/// Whether stderr is a terminal whose foreground is another process group
/// (a shell job started with `&`, or stopped and sent on with `bg`).
fn in_background() -> bool {
    let stderr = std::io::stderr();
    if !rustix::termios::isatty(&stderr) {
        return false;
    }
    rustix::termios::tcgetpgrp(&stderr).is_ok_and(|fg| fg != rustix::process::getpgrp())
}

pub async fn run(args: Args) -> Result {
    let home = Home::from_env()?;
    let socket = match args.socket {
        Some(p) => p,
        None => vmux_agent::socket::default_path()?,
    };
    let socket_for_upstream = socket.clone();
    let running = vmux_agent::start(
        Config {
            home,
            socket,
            signer: args.signer,
            sign_timeout: Duration::from_secs(args.sign_timeout.max(1)),
            signer_wait: Duration::from_secs(args.signer_wait.max(1)),
            upstream: args.upstream.resolve(&socket_for_upstream)?,
        },
        CertConfig {
            validity_secs: args.cert_validity,
            clock: Arc::new(SystemClock),
        },
    )?;
    // The same lines as `ssh-agent -s`, so `eval "$(vmux agent)"`-style
    // wrappers and people alike know what to export.
    let path = running.socket_path().display().to_string();
    let mut out = std::io::stdout().lock();
    writeln!(out, "SSH_AUTH_SOCK={path}; export SSH_AUTH_SOCK;")?;
    writeln!(out, "echo Agent pid {};", std::process::id())?;
    out.flush()?;
    drop(out);
    running.serve().await?;
    Ok(())
}

/// `--upstream [SOCKET]` and `--upstream-writable`, for `vmux agent` and
/// `vmux up`.
#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// Also offer the keys of another ssh-agent at SOCKET (default: the
    /// SSH_AUTH_SOCK in the environment, when it is not this agent's).
    /// Its signatures need no approval on the signer.
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, default_missing_value = "")]
    upstream: Option<String>,
    /// Let `ssh-add` add, remove and lock keys in the upstream agent
    /// (refused otherwise; vmux itself never holds a private key).
    #[arg(long, requires = "upstream")]
    upstream_writable: bool,
}

impl UpstreamArgs {
    /// The upstream to use, given this agent's own socket `own`.
    pub fn resolve(&self, own: &std::path::Path) -> Result<Option<Upstream>> {
        let Some(path) = self.upstream.clone() else {
            return Ok(None);
        };
        let path = if path.is_empty() {
            let from_env = std::env::var_os("SSH_AUTH_SOCK")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .ok_or("--upstream without a socket takes SSH_AUTH_SOCK, which is not set; give --upstream SOCKET")?;
            if from_env == own {
                return Err(format!(
                    "SSH_AUTH_SOCK is this agent's own socket ({}); give --upstream the socket of the agent from before",
                    own.display()
                )
                .into());
            }
            from_env
        } else {
            PathBuf::from(path)
        };
        Ok(Some(Upstream {
            path,
            writable: self.upstream_writable,
        }))
    }
}
