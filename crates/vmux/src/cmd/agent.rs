//! `vmux agent`: the ssh-agent stand-in, in the foreground.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vmux_agent::cert::DEFAULT_VALIDITY_SECS;
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
    /// Session certificate validity to ask the signer for, in seconds (its
    /// policy may shorten it); 0 asks for no certificate.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_VALIDITY_SECS)]
    cert_validity: u64,
}

pub async fn run(args: Args) -> Result {
    let home = Home::from_env()?;
    let socket = match args.socket {
        Some(p) => p,
        None => vmux_agent::socket::default_path()?,
    };
    let running = vmux_agent::start(
        Config {
            home,
            socket,
            signer: args.signer,
            sign_timeout: Duration::from_secs(args.sign_timeout.max(1)),
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
