//! `vmux key policy NAME`: where and what an identity may sign, enforced by
//! the signer before it shows a sheet.

use vmux_keys::Keyring;
use vmux_link::home::Home;
use vmux_signer::policy::{self, Policies, Policy, Rule};

use crate::cmd::Result;

const POLICY_HELP: &str = "\
--hosts takes names (with * and ? wildcards) from `vmux hostkeys list`, those
imported or added, not those learned on a sheet (a requester's claim); a login
matches only when the signer itself verified its destination's host key.
--purposes takes `login` (SSH logins), SSHSIG namespaces (`git`, `file`, …, or
'*' for any) and `unknown` (data that is neither). By default an identity signs
logins and every SSHSIG namespace, but no unknown data.";

#[derive(clap::Args, Debug)]
#[command(after_help = POLICY_HELP)]
pub struct Args {
    /// Identity name.
    name: String,
    /// Hosts logins may go to, e.g. prod-db,web-*.
    #[arg(long, value_name = "PATTERN,…")]
    hosts: Option<String>,
    /// What may be signed, e.g. login,git.
    #[arg(long, value_name = "PURPOSE,…")]
    purposes: Option<String>,
    /// Requests through a forwarded agent (`ssh -A`).
    #[arg(long, value_enum)]
    forwarded: Option<RuleArg>,
    /// Logins whose destination the signer could not verify itself.
    #[arg(long, value_enum)]
    unverified: Option<RuleArg>,
    /// Back to the defaults (then the other flags apply).
    #[arg(long)]
    reset: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RuleArg {
    Allow,
    Deny,
}

impl From<RuleArg> for Rule {
    fn from(r: RuleArg) -> Rule {
        match r {
            RuleArg::Allow => Rule::Allow,
            RuleArg::Deny => Rule::Deny,
        }
    }
}

pub fn run(home: &Home, ring: &Keyring, args: Args) -> Result {
    let identity = ring.get(&args.name)?;
    let fingerprint = identity.fingerprint.to_string();
    let mut p = if args.reset {
        Policy::default()
    } else {
        Policies::load(home)?.for_key(&fingerprint)
    };
    let changes = args.reset
        || args.hosts.is_some()
        || args.purposes.is_some()
        || args.forwarded.is_some()
        || args.unverified.is_some();
    if let Some(hosts) = &args.hosts {
        p.hosts = Some(policy::parse_list(hosts)?);
    }
    if let Some(purposes) = &args.purposes {
        p.purposes = Some(policy::parse_list(purposes)?);
    }
    if let Some(rule) = args.forwarded {
        p.forwarded = rule.into();
    }
    if let Some(rule) = args.unverified {
        p.unverified = rule.into();
    }
    if changes {
        Policies::set(home, &fingerprint, p.clone())?;
        outln!("Policy of \"{}\" set:", identity.name)?;
    } else {
        outln!("Policy of \"{}\":", identity.name)?;
    }
    outln!("  {}", p.describe())?;
    Ok(())
}
