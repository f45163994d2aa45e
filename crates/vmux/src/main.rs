//! `vmux`: keep SSH keys on one trusted device, sign from every other.
//!
//! A thin CLI: each subcommand parses its flags here and calls into the
//! library crates; one file per subcommand under `cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod out;

mod cmd;
#[cfg(test)]
mod contrib;

/// The environment `vmux --help` lists.
const ENVIRONMENT: &str = "\
Environment:
  VMUX_HOME        the state directory (default: $XDG_STATE_HOME/vmux, else
                   ~/.local/state/vmux; on macOS ~/Library/Application
                   Support/vmux)
  VMUX_LOG         which log lines to show, as a tracing filter (default:
                   warn,vmux=info; e.g. debug, or vmux_agent=debug)
  VMUX_PASSPHRASE  a passphrase or PIN for commands whose stdin is not a
                   terminal (scripts); on a terminal it is always asked";

#[derive(Parser, Debug)]
#[command(
    name = "vmux",
    // The version, and the commit it was built from when built from git.
    version = env!("VMUX_VERSION"),
    about = "Keep SSH keys on one trusted device; sign from every other.",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One-machine quickstart: a signer and an agent, paired, approvals here.
    Up(cmd::up::Args),
    /// Run a signer in the foreground: it holds the keys and asks before signing.
    Signer(cmd::signer::Args),
    /// Run the agent in the foreground: an ssh-agent that forwards each signature to the signer.
    Agent(cmd::agent::Args),
    /// Show what the running agent is connected to and which keys it offers.
    Status(cmd::status::Args),
    /// Make the running agent fetch the signer's key list now.
    Refresh(cmd::refresh::Args),
    /// The agent's state as a tray icon with its menu (Linux desktops).
    Tray(cmd::tray::Args),
    /// The agent's session certificate.
    #[command(subcommand)]
    Cert(cmd::cert::Command),
    /// Show the agent's log of sign requests.
    Log(cmd::log::Args),
    /// Pair this device with a signer (both sides show the same code).
    Pair(cmd::pair::Args),
    /// List or forget paired devices.
    #[command(subcommand)]
    Peers(cmd::peers::Command),
    /// Manage the signer's identities (SSH keys).
    #[command(subcommand)]
    Key(cmd::key::Command),
    /// Hosts the signer knows by name (its sheets name verified host keys from this list).
    #[command(subcommand)]
    Hostkeys(cmd::hostkeys::Command),
    /// The signer's certificate authority: its public key and policy.
    #[command(subcommand)]
    Ca(cmd::ca::Command),
    /// Log in to a server with the signer's keys (an SSH client; no agent needed).
    Ssh(cmd::ssh::Args),
    /// Saved destinations for `vmux ssh`.
    #[command(subcommand)]
    Hosts(cmd::hosts::Command),
    /// Print the shell completion script (bash, zsh or fish).
    Completions(cmd::completions::Args),
    /// Write the manual pages, one per subcommand, into a directory.
    Man(cmd::man::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A full-screen sheet owns the terminal: log lines go to a file it names.
    let full_screen = match &cli.command {
        Command::Up(args) => args.full_screen(),
        Command::Signer(args) => args.full_screen(),
        _ => false,
    };
    let log_file = match &cli.command {
        Command::Agent(args) => args.log_file(),
        _ if full_screen => cmd::logging::path().map(Some),
        _ => Ok(None),
    };
    let log_file = match log_file {
        Ok(file) => file,
        Err(e) => return fail(&e.to_string()),
    };
    cmd::logging::init(log_file.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            // Its exit status is the remote command's.
            Command::Ssh(args) => return Ok(cmd::ssh::run(args).await),
            Command::Up(args) => cmd::up::run(args).await,
            Command::Signer(args) => cmd::signer::run(args).await,
            Command::Agent(args) => cmd::agent::run(args).await,
            Command::Status(args) => cmd::status::run(args).await,
            Command::Refresh(args) => cmd::refresh::run(args).await,
            Command::Tray(args) => cmd::tray::run(args).await,
            Command::Cert(command) => cmd::cert::run(command).await,
            Command::Log(args) => cmd::log::run(args),
            Command::Pair(args) => cmd::pair::run(args).await,
            Command::Peers(command) => cmd::peers::run(command),
            Command::Key(command) => cmd::key::run(command),
            Command::Hostkeys(command) => cmd::hostkeys::run(command),
            Command::Ca(command) => cmd::ca::run(command),
            Command::Hosts(command) => cmd::hosts::run(command),
            Command::Completions(args) => cmd::completions::run::<Cli>(args),
            Command::Man(args) => cmd::man::run::<Cli>(args),
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        // The reader left (`vmux … | head`): nothing to say, and nowhere.
        Err(e) if out::is_broken_pipe(&*e) => ExitCode::from(141),
        Err(e) => fail(&e.to_string()),
    }
}

/// Says what went wrong. Errors quote what they are about (names, paths,
/// a peer's words); whatever was not escaped on the way is defused here, so
/// no error can drive the terminal.
pub(crate) fn fail(message: &str) -> ExitCode {
    errln!("vmux: {}", vmux_proto::text::defuse(message));
    ExitCode::FAILURE
}
