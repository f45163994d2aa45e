//! `vmux peers`: the devices this one has paired with.

use vmux_link::clock::format_utc;
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, TrustStore};
use vmux_proto::text::escape;

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List paired devices.
    List,
    /// Forget a paired device (by name, device id or fingerprint). A running
    /// signer or agent drops its sessions with it within 2 seconds. On a
    /// signer, asks whether to revoke the certificates its CA issued to it.
    Remove {
        /// Name, device id or `SHA256:` fingerprint.
        which: String,
        /// Revoke the device's certificates too, without asking.
        #[arg(long)]
        revoke: bool,
    },
    /// Change the name a paired device is shown by (on sheets, in logs and
    /// in certificates), whatever it calls itself.
    Rename {
        /// Name, device id or `SHA256:` fingerprint.
        which: String,
        /// The new name.
        name: String,
    },
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let mut trust = TrustStore::load(&home)?;
    match command {
        Command::List => {
            if trust.peers().is_empty() {
                outln!("No paired devices.")?;
            }
            for p in trust.peers() {
                let role = match p.role {
                    PeerRole::Signer => "signer",
                    PeerRole::Requester => "device",
                };
                // Written by whoever paired, perhaps by an older build.
                outln!(
                    "{role:<7} {:<24} {}  paired {}  last seen {}",
                    escape(&p.name),
                    escape(&p.fingerprint),
                    format_utc(p.first_paired),
                    format_utc(p.last_seen)
                )?;
            }
        }
        Command::Remove { which, revoke } => {
            let removed: Vec<_> = trust
                .peers()
                .iter()
                .filter(|p| p.matches(&which))
                .cloned()
                .collect();
            if removed.is_empty() {
                return Err(no_match(&which));
            }
            // Asked first: a person who stops at the question has changed
            // nothing.
            let revoking = super::ca::ask_before_removing(&home, &removed, revoke)?;
            match trust.remove(&which)? {
                0 => return Err(no_match(&which)),
                n => outln!("Forgot {n} device(s).")?,
            }
            super::ca::revoke_removed(&home, revoking)?;
        }
        Command::Rename { which, name } => match trust.rename(&which, &name)? {
            0 => return Err(no_match(&which)),
            1 => outln!("Renamed \"{}\" to \"{}\".", escape(&which), escape(&name))?,
            n => {
                return Err(format!(
                    "{n} paired devices match \"{}\"; name one by its device id or fingerprint (see `vmux peers list`)",
                    escape(&which)
                )
                .into());
            }
        },
    }
    Ok(())
}

fn no_match(which: &str) -> Box<dyn std::error::Error> {
    format!(
        "no paired device matches \"{}\"; see `vmux peers list`",
        escape(which)
    )
    .into()
}
