//! `vmux ca`: the signer's certificate authority and its policy.

use vmux_keys::ca::{Ca, Policy};
use vmux_link::home::Home;

use super::Result;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the CA public key: the line for sshd's `TrustedUserCAKeys` file
    /// (makes the CA on first use).
    Show,
    /// Show the certificate policy, or change it with flags.
    Policy(PolicyArgs),
}

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// Longest validity granted, e.g. 30m, 8h, 90s, 1d (at most 7d).
    #[arg(long, value_parser = parse_duration)]
    max_validity: Option<u64>,
    /// Login names written into certificates, comma-separated.
    #[arg(long, value_delimiter = ',')]
    principals: Option<Vec<String>>,
    /// Whether this signer offers certificates at all. Each one still needs
    /// approval on the sheet; "on" is not an auto-approve.
    #[arg(long, value_enum)]
    auto_issue: Option<OnOff>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OnOff {
    On,
    Off,
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let mut ca = Ca::open(&home)?;
    match command {
        Command::Show => {
            println!("{}", ca.public_key().to_openssh()?);
            eprintln!(
                "Servers that should accept vmux certificates list this line in their TrustedUserCAKeys file."
            );
        }
        Command::Policy(args) => {
            let PolicyArgs {
                max_validity,
                principals,
                auto_issue,
            } = args;
            let changed = max_validity.is_some() || principals.is_some() || auto_issue.is_some();
            if changed {
                let mut policy = ca.policy().clone();
                if let Some(secs) = max_validity {
                    policy.max_validity_secs = secs;
                }
                if let Some(names) = principals {
                    let names: Vec<String> = names
                        .iter()
                        .map(|n| n.trim().to_owned())
                        .filter(|n| !n.is_empty())
                        .collect();
                    if names.is_empty() {
                        return Err(
                            "give at least one principal (login name), e.g. --principals alice"
                                .into(),
                        );
                    }
                    policy.principals = names;
                }
                if let Some(on) = auto_issue {
                    policy.auto_issue = matches!(on, OnOff::On);
                }
                ca.set_policy(policy)?;
                println!("Policy saved.");
            }
            print_policy(ca.policy());
        }
    }
    Ok(())
}

fn print_policy(policy: &Policy) {
    println!(
        "Max validity: {}",
        format_duration(policy.max_validity_secs)
    );
    let principals = if policy.principals.is_empty() {
        "(none: no certificate can be issued)".to_owned()
    } else {
        policy.principals.join(",")
    };
    println!("Principals:   {principals}");
    let auto = if policy.auto_issue {
        "on (certificates offered; each one still needs approval on the sheet)"
    } else {
        "off (no certificates)"
    };
    println!("Auto-issue:   {auto}");
}

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// `30m`, `8h`, `90s`, `1d`, or bare seconds.
fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let bad = || format!("\"{text}\" is not a duration; write e.g. 30m, 8h, 90s or 1d");
    let (digits, scale) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let scale = UNITS
                .iter()
                .find(|(u, _)| *u == unit.to_ascii_lowercase())
                .ok_or_else(bad)?
                .1;
            (text.get(..at).unwrap_or_default(), scale)
        }
        _ => (text, 1),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale).ok_or_else(bad)
}

/// The largest unit that states `secs` exactly: 28800 → `8h`.
fn format_duration(secs: u64) -> String {
    for (unit, scale) in UNITS {
        if secs >= scale && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("8h").unwrap(), 28_800);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1d").unwrap(), 86_400);
        assert_eq!(parse_duration("120").unwrap(), 120);
        assert!(parse_duration("8x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(28_800), "8h");
        assert_eq!(format_duration(5_400), "90m");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(172_800), "2d");
    }
}
