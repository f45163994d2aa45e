//! `vmux hostkeys`: the hosts the signer knows by name. A login whose
//! destination the signer verified is shown by the name given here.

use std::path::PathBuf;

use vmux_link::clock::{Clock, SystemClock, format_utc};
use vmux_link::home::Home;
use vmux_proto::text::escape;
use vmux_signer::hostkeys::{self, Added, HostKeys, Source};

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Name host keys from an OpenSSH known_hosts file or `ssh-keyscan`
    /// output (plain names only: hashed names cannot be read back).
    Import {
        /// e.g. ~/.ssh/known_hosts, or `-` for standard input.
        file: PathBuf,
    },
    /// Name a host key: NAME for the key in PUBKEYFILE (e.g.
    /// /etc/ssh/ssh_host_ed25519_key.pub from the host).
    Add {
        /// The host's name, as the sheet will show it.
        name: String,
        /// An OpenSSH public key file (`TYPE BASE64 [comment]`).
        pubkeyfile: PathBuf,
    },
    /// List the named host keys.
    List,
    /// Forget every key named NAME.
    Remove {
        /// The host's name.
        name: String,
    },
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let now = SystemClock.now_ms();
    match command {
        Command::Import { file } => {
            let text = read(&file)?;
            let report = HostKeys::update(&home, |list| list.import(&text, now))?;
            outln!(
                "Imported from {}: {} new, {} already known, {} replaced.",
                file.display(),
                report.added,
                report.already,
                report.replaced
            )?;
            let skipped = [
                (
                    report.hashed,
                    "hashed names (cannot be read back; name them with `vmux hostkeys add`)",
                ),
                (
                    report.patterns,
                    "wildcard or negated patterns (they name no one host)",
                ),
                (report.marked, "@revoked or @cert-authority lines"),
                (report.unreadable, "lines that are not known_hosts lines"),
            ];
            for (n, what) in skipped {
                if n > 0 {
                    outln!("Skipped {n} {what}.")?;
                }
            }
            for (line, name, why) in &report.refused {
                outln!("Refused line {line}: host name \"{name}\" {why}.")?;
            }
        }
        Command::Add { name, pubkeyfile } => {
            let text = read(&pubkeyfile)?;
            let key = hostkeys::read_public_key(&text)
                .map_err(|e| format!("{}: {e}", pubkeyfile.display()))?;
            let added = HostKeys::update(&home, |list| list.add(&name, &key, Source::Added, now))?;
            let fingerprint = hostkeys::fingerprint(&key);
            outln!(
                "{} \"{name}\" {} ({fingerprint}).",
                match added {
                    Added::New => "Named",
                    Added::AlreadyKnown => "Already named",
                    Added::Replaced => "Replaced the key of",
                },
                key.algorithm().as_str()
            )?;
        }
        Command::List => {
            let list = HostKeys::load(&home)?;
            if list.list().is_empty() {
                outln!(
                    "No named host keys in {}. Add some with `vmux hostkeys import ~/.ssh/known_hosts`.",
                    hostkeys::path(&home).display()
                )?;
            }
            for h in list.list() {
                outln!(
                    "{:<24} {:<20} {}  {} {}",
                    escape(&h.name),
                    h.key.algorithm().as_str(),
                    h.fingerprint(),
                    h.source.word(),
                    format_utc(h.since_ms)
                )?;
            }
        }
        Command::Remove { name } => {
            let removed = HostKeys::update(&home, |list| Ok(list.remove(&name)))?;
            if removed == 0 {
                return Err(format!(
                    "no host key is named \"{}\"; see `vmux hostkeys list`",
                    escape(&name)
                )
                .into());
            }
            outln!("Forgot {removed} key(s) named \"{name}\".")?;
        }
    }
    Ok(())
}

/// A file (or standard input for `-`), at most the size a known_hosts
/// file may be.
fn read(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let max = hostkeys::MAX_IMPORT_LEN;
    let mut bytes = Vec::new();
    let too_large = || {
        format!(
            "{} is larger than {} MiB; that is not a known_hosts or key file",
            path.display(),
            max >> 20
        )
    };
    if path.as_os_str() == "-" {
        std::io::stdin().take(max + 1).read_to_end(&mut bytes)?;
    } else {
        bytes = match vmux_state::read_capped(path, max) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(format!("cannot read {}: not found", path.display()).into()),
            Err(vmux_state::Error::TooLarge { .. }) => return Err(too_large().into()),
            Err(e) => return Err(format!("cannot read {e}").into()),
        };
    }
    if bytes.len() as u64 > max {
        return Err(too_large().into());
    }
    String::from_utf8(bytes).map_err(|_| format!("{} is not text (UTF-8)", path.display()).into())
}
