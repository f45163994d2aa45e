//! `vmux log`: the agent's request log, readably, its rotated files first.
//! What it holds came partly from peers (comments, users, hosts, the
//! signer's reasons) and may predate today's checks: every string is
//! escaped, in `--json` too.

use vmux_agent::request_log;
use vmux_link::clock::format_utc;
use vmux_link::home::Home;
use vmux_link::logfile::{self, Rotation};
use vmux_proto::envelope::{ContextQuality, Purpose};
use vmux_proto::text::{escape, escape_json};

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the raw JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result {
    // Where `vmux up` ran, its agent's.
    let home = super::up::agent_home(Home::from_env()?)?;
    let path = home.file(request_log::LOG_FILE);
    if args.json {
        let text = logfile::read_to_string(&path, Rotation::DEFAULT)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        out!("{}", escape_json(&text))?;
        return Ok(());
    }
    let (entries, bad) =
        request_log::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if entries.is_empty() {
        outln!("No sign requests logged yet ({})", path.display())?;
    }
    for e in &entries {
        let c = &e.context;
        // The words the signer's sheet uses.
        let purpose = match (c.purpose, &c.namespace) {
            (Some(Purpose::Sshsig), Some(ns)) if ns == "git" => "git signature".to_owned(),
            (Some(Purpose::Sshsig), Some(ns)) => {
                format!("file signature (namespace \"{}\")", escape(ns))
            }
            (Some(Purpose::Sshsig), None) => "SSHSIG signature".to_owned(),
            (Some(Purpose::SshUserauth), _) => "SSH login".to_owned(),
            _ => "unknown data".to_owned(),
        };
        let (user, host) = (c.user.as_deref().map(escape), c.host.as_deref().map(escape));
        let mut dest = match (user, host) {
            (Some(u), Some(h)) => format!(" {u}@{h}"),
            (Some(u), None) => format!(" user {u}"),
            (None, Some(h)) => format!(" host {h}"),
            (None, None) => String::new(),
        };
        if !dest.is_empty() && c.context_quality == ContextQuality::Claimed {
            dest.push_str(" (claimed)");
        }
        if c.forwarded {
            dest.push_str(" forwarded");
        }
        // The hosts ssh bound the connection to (their signatures checked
        // here), named by known_hosts.
        if let Some(route) = &e.route {
            dest.push_str(&format!(" via {}", escape(route)));
        }
        // The signer's reason for a refusal, when it gave one.
        let why = e
            .reason
            .as_deref()
            .map(|m| format!(": {}", escape(m)))
            .unwrap_or_default();
        outln!(
            "{}  {:<14} {} ({})  {}{}  {} ms{why}",
            format_utc(e.time),
            e.outcome.as_str(),
            escape(&e.key_comment),
            escape(&e.key_fingerprint),
            purpose,
            dest,
            e.latency_ms
        )?;
    }
    if bad > 0 {
        outln!(
            "({bad} line(s) of {} did not parse and were skipped)",
            path.display()
        )?;
    }
    Ok(())
}
