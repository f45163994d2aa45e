//! `vmux cert request`: the running agent asks the signer for a new
//! session certificate now.

use std::path::PathBuf;

use vmux_agent::control;

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Ask the signer for a new session certificate now and wait for the
    /// approval (up to about a minute).
    Request(Args),
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's socket (default: $SSH_AUTH_SOCK, else the agent's default path).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

pub async fn run(command: Command) -> Result {
    let Command::Request(args) = command;
    let path = vmux_agent::socket::client_path(args.socket)?;
    // Status first, so a socket that is no vmux agent is named as such. A
    // locked agent refuses the request and `control::call` says why; only
    // the wait line is left out, as nobody is asked.
    if !control::call(&path, control::STATUS).await?.locked {
        outln!("Waiting for approval on the signer…")?;
    }
    let status = control::call(&path, control::CERT_REQUEST).await?;
    if let Some(code) = &status.certificate_refused {
        // The agent's words, with what to do; a revocation is not worth
        // asking again, so nothing here says to.
        let esc = |s: &str| vmux_proto::text::escape(s).into_owned();
        return Err(match &status.last_refusal {
            Some(r) => format!("{} ({}); {}", esc(&r.reason), esc(code), esc(&r.next_step)),
            None => format!("the signer issued no certificate ({})", esc(code)),
        }
        .into());
    }
    // The agent socket's answer is text from another process: escaped.
    outln!("{}", vmux_proto::text::escape(&status.certificate))?;
    Ok(())
}
