//! `vmux peers`: the devices this one has paired with.

use vmux_link::clock::format_utc;
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, TrustStore};

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List paired devices.
    List,
    /// Forget a paired device (by name, device id or fingerprint). On a
    /// signer, asks whether to revoke the certificates its CA issued to it.
    Remove {
        /// Name, device id or `SHA256:` fingerprint.
        which: String,
        /// Revoke the device's certificates too, without asking.
        #[arg(long)]
        revoke: bool,
    },
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let mut trust = TrustStore::load(&home)?;
    match command {
        Command::List => {
            if trust.peers().is_empty() {
                println!("No paired devices.");
            }
            for p in trust.peers() {
                let role = match p.role {
                    PeerRole::Signer => "signer",
                    PeerRole::Requester => "device",
                };
                println!(
                    "{role:<7} {:<24} {}  paired {}  last seen {}",
                    p.name,
                    p.fingerprint,
                    format_utc(p.first_paired),
                    format_utc(p.last_seen)
                );
            }
        }
        Command::Remove { which, revoke } => {
            let removed: Vec<_> = trust
                .peers()
                .iter()
                .filter(|p| p.name == which || p.device_id == which || p.fingerprint == which)
                .cloned()
                .collect();
            match trust.remove(&which)? {
                0 => {
                    return Err(format!(
                        "no paired device matches \"{which}\"; see `vmux peers list`"
                    )
                    .into());
                }
                n => println!("Forgot {n} device(s)."),
            }
            super::ca::after_peers_removed(&home, &removed, revoke)?;
        }
    }
    Ok(())
}
