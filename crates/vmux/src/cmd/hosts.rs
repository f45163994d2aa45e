//! `vmux hosts`: names for destinations of `vmux ssh`.

use vmux_link::home::Home;
use vmux_ssh::{SavedHosts, Target};

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Save a destination under a name: `vmux ssh NAME` then connects to it.
    Add {
        /// Letters, digits, '.', '_' and '-'.
        name: String,
        /// `[user@]host[:port]`.
        destination: String,
    },
    /// List saved hosts.
    List,
    /// Forget a saved host.
    Remove { name: String },
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let mut hosts = SavedHosts::load(&home)?;
    match command {
        Command::Add { name, destination } => {
            let target = Target::parse(&destination)?;
            hosts.add(&name, target.clone())?;
            outln!("Saved {name} → {target}; connect with `vmux ssh {name}`.")?;
        }
        Command::List => {
            if hosts.list().is_empty() {
                outln!("No saved hosts; add one with `vmux hosts add NAME [user@]host[:port]`.")?;
            }
            for (name, target) in hosts.list() {
                outln!("{name:<20} {target}")?;
            }
        }
        Command::Remove { name } => {
            if !hosts.remove(&name)? {
                return Err(
                    format!("no saved host named \"{name}\"; see `vmux hosts list`").into(),
                );
            }
            outln!("Forgot {name}.")?;
        }
    }
    Ok(())
}
