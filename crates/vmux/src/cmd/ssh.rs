//! `vmux ssh`: log in with the signer's keys, no agent and no key files.

use std::process::ExitCode;

use vmux_link::home::Home;
use vmux_ssh::{NO_STATUS, Options, Run, SavedHosts, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signer's address, instead of the one it was last reached at.
    #[arg(long, value_name = "HOST:PORT")]
    signer: Option<String>,
    /// Port to connect to on the remote host.
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<u16>,
    /// User to log in as.
    #[arg(short = 'l', value_name = "USER")]
    login: Option<String>,
    /// `[user@]host[:port]`, or a name saved with `vmux hosts add`.
    destination: String,
    /// Command to run instead of a login shell (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the session; the remote exit status becomes ours, and our own
/// failures exit 255, as OpenSSH's do.
pub async fn run(args: Args) -> ExitCode {
    match session(args).await {
        Ok(status) => ExitCode::from(status),
        // The reader of the remote output left (`vmux ssh … | head`).
        Err(e) if crate::out::is_broken_pipe(&*e) => ExitCode::from(141),
        Err(e) => {
            crate::fail(&e.to_string());
            ExitCode::from(NO_STATUS)
        }
    }
}

async fn session(args: Args) -> super::Result<u8> {
    // Where `vmux up` ran, its agent's.
    let home = super::up::agent_home(Home::from_env()?)?;
    let saved = SavedHosts::load(&home)?;
    let mut target = match saved.get(&args.destination) {
        Some(saved) => saved.clone(),
        None => Target::parse(&args.destination)?,
    };
    if let Some(port) = args.port {
        target.port = port;
    }
    if let Some(user) = args.login {
        target.user = Some(user);
    }
    let local_user = vmux_ssh::terminal::local_user()
        .ok_or("cannot tell who you are; give the login name as user@host or with -l")?;
    let run = match args.command.is_empty() {
        true => Run::Shell,
        // As OpenSSH: the words joined by spaces, for the remote shell.
        false => Run::Command(args.command.join(" ")),
    };
    let status = vmux_ssh::run(Options {
        home,
        saved,
        target,
        local_user,
        signer: args.signer,
        run,
    })
    .await?;
    Ok(status)
}
