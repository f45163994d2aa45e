//! `vmux log`: the agent's request log, readably.

use vmux_agent::request_log;
use vmux_link::clock::format_utc;
use vmux_link::home::Home;
use vmux_proto::envelope::{ContextQuality, Purpose};

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the raw JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result {
    let home = Home::from_env()?;
    let path = home.file(request_log::LOG_FILE);
    if args.json {
        match std::fs::read_to_string(&path) {
            Ok(text) => print!("{text}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display()).into()),
        }
        return Ok(());
    }
    let (entries, bad) =
        request_log::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if entries.is_empty() {
        println!("No sign requests logged yet ({})", path.display());
    }
    for e in &entries {
        let c = &e.context;
        let purpose = match (c.purpose, &c.namespace) {
            (Some(Purpose::Sshsig), Some(ns)) => format!("sshsig {ns}"),
            (Some(Purpose::Sshsig), None) => "sshsig".to_owned(),
            (Some(Purpose::SshUserauth), _) => "login".to_owned(),
            _ => "unknown purpose".to_owned(),
        };
        let mut dest = match (&c.user, &c.host) {
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
        // Comments and users come from elsewhere: no control characters
        // reach the terminal.
        let clean = |s: &str| s.chars().filter(|ch| !ch.is_control()).collect::<String>();
        // The signer's reason for a refusal, when it gave one.
        let why = e
            .message
            .as_deref()
            .map(|m| format!(": {}", clean(m)))
            .unwrap_or_default();
        println!(
            "{}  {:<14} {} ({})  {}{}  {} ms{why}",
            format_utc(e.time_milliseconds),
            e.outcome,
            clean(&e.key_comment),
            e.key_fingerprint,
            purpose,
            clean(&dest),
            e.latency_ms
        );
    }
    if bad > 0 {
        println!(
            "({bad} line(s) of {} did not parse and were skipped)",
            path.display()
        );
    }
    Ok(())
}
