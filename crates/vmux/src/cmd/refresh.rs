//! `vmux refresh`: the running agent fetches the signer's key list now.

use std::path::PathBuf;

use vmux_agent::control;

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's socket (default: $SSH_AUTH_SOCK, else the agent's default path).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result {
    let path = vmux_agent::socket::client_path(args.socket)?;
    // Status first: a plain ssh-agent would refuse the refresh too, and
    // "signer unreachable" would then be the wrong advice.
    control::call(&path, control::STATUS).await?;
    let status = control::call(&path, control::REFRESH).await?;
    outln!("Refreshed: {} key(s)", status.keys.len())?;
    for line in status.lines() {
        outln!("{line}")?;
    }
    Ok(())
}
