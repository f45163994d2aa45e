//! `vmux status`: what the running agent is connected to and offers.

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
    let status = control::call(&path, control::STATUS).await?;
    for line in status.lines() {
        outln!("{line}")?;
    }
    Ok(())
}
