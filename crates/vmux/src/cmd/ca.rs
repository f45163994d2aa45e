//! `vmux ca`: the signer's certificate authority, its policy, and
//! revocation.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use vmux_keys::ca::issued::{self, IssueRecord};
use vmux_keys::ca::revocation::{self, Revocations};
use vmux_keys::ca::{self, Ca, Policy};
use vmux_link::clock::format_utc;
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::text::escape;

use super::Result;
use super::key::prompt;

const SECRET_HELP: &str = "\
The passphrase (or token PIN) is typed without echo when stdin is a terminal.
Otherwise it is read from the VMUX_PASSPHRASE environment variable if set,
else from the first line of stdin (for scripts and tests).";

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make the CA key: encrypted with its own passphrase, or on a token.
    #[command(after_help = SECRET_HELP)]
    Init(InitArgs),
    /// Print the CA public key: the line for sshd's `TrustedUserCAKeys` file.
    Show,
    /// Encrypt an unencrypted `ca.key` (left by an older vmux) in place.
    #[command(after_help = SECRET_HELP)]
    Protect,
    /// Show the certificate policy, or change it with flags.
    Policy(PolicyArgs),
    /// Revoke certificates: all of a device's, or one by serial or key ID.
    Revoke(RevokeArgs),
    /// Print the path of the revocation list, for sshd's `RevokedKeys`.
    Krl,
    /// List the certificates the CA issued.
    Issued,
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where the CA private key lives.
    #[arg(long, value_enum, default_value_t)]
    store: StoreArg,
    /// PKCS#11 module (shared library), for --store pkcs11.
    #[arg(long, required_if_eq("store", "pkcs11"))]
    module: Option<PathBuf>,
    /// Token label, for --store pkcs11.
    #[arg(long, required_if_eq("store", "pkcs11"))]
    token: Option<String>,
    /// Label of the key objects on the token.
    #[arg(long, default_value = "vmux-ca")]
    key_label: String,
    /// Use a P-256 key pair already on the token instead of generating one.
    #[arg(long, requires = "module")]
    existing: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
enum StoreArg {
    /// An ed25519 key in `ca.key`, encrypted with the CA's own passphrase.
    #[default]
    Software,
    /// A P-256 key on a PKCS#11 token (YubiKey, SoftHSM2, ...); its PIN
    /// approves each certificate.
    Pkcs11,
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
    /// Extensions granted, comma-separated, or `none`: permit-pty,
    /// permit-agent-forwarding, permit-port-forwarding (the default),
    /// permit-X11-forwarding, permit-user-rc.
    #[arg(long, value_delimiter = ',')]
    extensions: Option<Vec<String>>,
    /// Networks the certificates may be used from (the `source-address`
    /// critical option, enforced by sshd), comma-separated CIDRs, or `none`.
    #[arg(long, value_delimiter = ',')]
    source_address: Option<Vec<String>>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OnOff {
    On,
    Off,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true)))]
pub struct RevokeArgs {
    /// Every certificate issued to this device (its name, device id or
    /// `SHA256:` fingerprint), by key ID and by the serials in the issue log.
    #[arg(group = "what")]
    device: Option<String>,
    /// One certificate, by serial (see `vmux ca issued`).
    #[arg(long, group = "what")]
    serial: Vec<u64>,
    /// Every certificate with this key ID.
    #[arg(long, group = "what")]
    key_id: Vec<String>,
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    match command {
        Command::Init(args) => init(&home, args),
        Command::Show => {
            let ca = existing(&home)?;
            outln!("{}", ca.public_key().to_openssh()?)?;
            errln!("CA key: {}", ca.store());
            errln!(
                "Servers that should accept vmux certificates list this line in their TrustedUserCAKeys file."
            );
            if let Some(warning) = ca.unprotected_warning() {
                errln!("Warning: {warning}.");
            }
            Ok(())
        }
        Command::Protect => {
            // Refused before the new passphrase is typed twice for nothing.
            Ca::check_can_protect(&home)?;
            let passphrase = prompt::secret("New passphrase for the CA key: ", true)?;
            let ca = Ca::protect(&home, &passphrase)?;
            outln!(
                "The CA key is now encrypted: {}. Each certificate now asks this passphrase.",
                ca.store()
            )?;
            Ok(())
        }
        Command::Policy(args) => policy(&home, args),
        Command::Revoke(args) => revoke(&home, args),
        Command::Krl => {
            let path = revocation::ensure_krl(&home, now())?;
            outln!("{}", path.display())?;
            errln!("In sshd_config: RevokedKeys {}", path.display());
            Ok(())
        }
        Command::Issued => list_issued(&home),
    }
}

fn existing(home: &Home) -> Result<Ca> {
    Ca::open(home)?.ok_or_else(|| {
        "there is no CA yet: make one with `vmux ca init` (approving a first certificate request on the signer also makes one)".into()
    })
}

fn init(home: &Home, args: InitArgs) -> Result {
    let InitArgs {
        store,
        module,
        token,
        key_label,
        existing,
    } = args;
    // Refused before a new passphrase or PIN is typed for nothing.
    Ca::check_can_init(home)?;
    let ca = match (store, module, token) {
        (StoreArg::Software, None, None) if !existing => {
            let passphrase = prompt::secret("New passphrase for the CA key: ", true)?;
            Ca::init(home, &passphrase)?
        }
        (StoreArg::Software, ..) => {
            return Err("--module, --token and --existing go with --store pkcs11".into());
        }
        (StoreArg::Pkcs11, Some(module), Some(token)) => {
            let pin = if existing {
                None
            } else {
                Some(prompt::secret(
                    &format!("PIN of token \"{token}\": "),
                    false,
                )?)
            };
            Ca::init_on_token(home, &module, &token, &key_label, pin.as_ref())?
        }
        (StoreArg::Pkcs11, ..) => {
            return Err("--store pkcs11 needs --module PATH and --token LABEL".into());
        }
    };
    outln!("{}", ca.public_key().to_openssh()?)?;
    errln!("Made the CA: {}.", ca.store());
    errln!(
        "Servers that should accept vmux certificates list the line above in their TrustedUserCAKeys file."
    );
    Ok(())
}

fn policy(home: &Home, args: PolicyArgs) -> Result {
    let PolicyArgs {
        max_validity,
        principals,
        auto_issue,
        extensions,
        source_address,
    } = args;
    let mut policy = Policy::load(home)?;
    let before = policy.clone();
    if let Some(secs) = max_validity {
        policy.max_validity_secs = secs;
    }
    if let Some(names) = principals {
        let names = listed(names);
        if names.is_empty() {
            return Err("give at least one principal (login name), e.g. --principals alice".into());
        }
        policy.principals = names;
    }
    if let Some(on) = auto_issue {
        policy.auto_issue = matches!(on, OnOff::On);
    }
    if let Some(names) = extensions {
        policy.extensions = none_or(listed(names));
    }
    if let Some(networks) = source_address {
        policy.source_addresses = none_or(listed(networks))
            .iter()
            .map(|n| ca::canonical_cidr(n))
            .collect::<vmux_keys::Result<_>>()?;
    }
    if policy != before {
        policy.save(home)?;
        outln!("Policy saved.")?;
    }
    print_policy(&policy)?;
    Ok(())
}

fn listed(items: Vec<String>) -> Vec<String> {
    items
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

/// `none` alone means an empty list.
fn none_or(items: Vec<String>) -> Vec<String> {
    if items.len() == 1 && items.first().is_some_and(|i| i == "none") {
        Vec::new()
    } else {
        items
    }
}

fn print_policy(policy: &Policy) -> std::io::Result<()> {
    outln!(
        "Max validity: {}",
        format_duration(policy.max_validity_secs)
    )?;
    let principals = if policy.principals.is_empty() {
        "(none: no certificate can be issued)".to_owned()
    } else {
        policy.principals.join(",")
    };
    outln!("Principals:   {principals}")?;
    let auto = if policy.auto_issue {
        "on (certificates offered; each one still needs approval on the sheet)"
    } else {
        "off (no certificates)"
    };
    outln!("Auto-issue:   {auto}")?;
    let extensions = if policy.extensions.is_empty() {
        "none".to_owned()
    } else {
        policy.extensions.join(",")
    };
    outln!("Extensions:   {extensions}")?;
    let sources = if policy.source_addresses.is_empty() {
        "any (no source-address option)".to_owned()
    } else {
        policy.source_addresses.join(",")
    };
    outln!("Source:       {sources}")
}

fn revoke(home: &Home, args: RevokeArgs) -> Result {
    let RevokeArgs {
        device,
        serial,
        key_id,
    } = args;
    let ca = existing(home)?;
    let (log, _) = issued::read(home)?;
    let mut serials: BTreeSet<u64> = serial.into_iter().collect();
    let mut key_ids: BTreeSet<String> = key_id.into_iter().collect();
    let mut what = Vec::new();
    if let Some(device) = device {
        let peers = TrustStore::load(home)?;
        let matching: Vec<&PinnedPeer> = peers
            .peers()
            .iter()
            .filter(|p| p.role == PeerRole::Requester && p.matches(&device))
            .collect();
        let by_name = matching.iter().all(|p| p.name == device);
        let of_device = certificates_of(&log, by_name.then_some(device.as_str()), &matching);
        if of_device.serials.is_empty() && matching.is_empty() {
            return Err(format!(
                "the CA issued nothing to \"{device}\" and no paired device matches it; see `vmux ca issued` and `vmux peers list`"
            )
            .into());
        }
        what.push(format!(
            "{} certificate(s) of \"{device}\"",
            of_device.serials.len()
        ));
        serials.extend(of_device.serials);
        key_ids.extend(of_device.key_ids);
    }
    for s in &serials {
        if !log.iter().any(|r| r.serial == *s) {
            errln!("Note: serial {s} is not in the issue log; revoked anyway.");
        }
    }
    let (added, revocations) = Revocations::update(home, now(), |r| {
        r.revoke(
            ca.public_key(),
            serials.iter().copied(),
            key_ids.iter().cloned(),
        )
    })?;
    let path = revocation::krl_path(home);
    if !what.is_empty() {
        outln!("Revoked {}.", what.join(", "))?;
    }
    // Key IDs from the issue log (device names) or the command line.
    outln!(
        "{added} new revocation(s): serials {}, key IDs {}.",
        joined(serials.iter().map(u64::to_string)),
        joined(key_ids.iter().map(|k| escape(k).into_owned())),
    )?;
    outln!(
        "Wrote the KRL, version {}, to {}; sshd refuses these certificates with `RevokedKeys {}`.",
        revocations.krl_version(),
        path.display(),
        path.display()
    )?;
    Ok(())
}

/// What `vmux ca revoke DEVICE` revokes.
#[derive(Debug)]
struct OfDevice {
    serials: BTreeSet<u64>,
    key_ids: BTreeSet<String>,
}

/// The serials and key IDs of every certificate issued under the name
/// `name` (as the issue log has it), or to one of `peers` by the device id
/// in its key ID: exact even when two devices share a name, and whatever
/// name the device had then (`vmux peers rename` changes only later ones).
fn certificates_of(log: &[IssueRecord], name: Option<&str>, peers: &[&PinnedPeer]) -> OfDevice {
    let mut key_ids: BTreeSet<String> = peers
        .iter()
        .map(|p| ca::key_id(&p.name, &p.device_id))
        .collect();
    let mut serials = BTreeSet::new();
    for record in log {
        let of_peer = peers
            .iter()
            .any(|p| ca::key_id_is_of(&record.key_id, &p.device_id));
        if of_peer || name == Some(record.device.as_str()) {
            serials.insert(record.serial);
            key_ids.insert(record.key_id.clone());
        }
    }
    OfDevice { serials, key_ids }
}

/// What `vmux peers remove` revokes once the devices are forgotten: each
/// device's name and certificates.
#[derive(Debug, Default)]
pub struct Revoking(Vec<(String, OfDevice)>);

/// Before `vmux peers remove` changes anything: which of the devices
/// `removing` to revoke the certificates of. All when `revoke_now`, else
/// the person is asked on a terminal, else told how.
pub fn ask_before_removing(
    home: &Home,
    removing: &[PinnedPeer],
    revoke_now: bool,
) -> Result<Revoking> {
    let mut revoking = Revoking::default();
    if Ca::open(home)?.is_none() {
        return Ok(revoking);
    }
    let (log, _) = issued::read(home)?;
    for peer in removing.iter().filter(|p| p.role == PeerRole::Requester) {
        let of_device = certificates_of(&log, None, &[peer]);
        if of_device.serials.is_empty() && !revoke_now {
            continue;
        }
        // The name the device paired with, or one given it by hand.
        let name = escape(&peer.name).into_owned();
        let count = of_device.serials.len();
        let revoke_it = revoke_now
            || std::io::stdin().is_terminal()
                && ask_yes(&format!(
                    "The CA issued {count} certificate(s) to \"{name}\". Revoke them too? [y/N] "
                ))?;
        if revoke_it {
            revoking.0.push((name, of_device));
        } else if !std::io::stdin().is_terminal() {
            outln!(
                "The CA issued {count} certificate(s) to \"{name}\"; they stay valid until they expire unless you run `vmux ca revoke {name}`."
            )?;
        }
    }
    Ok(revoking)
}

/// After `vmux peers remove` forgot the devices: revokes what
/// [`ask_before_removing`] chose.
pub fn revoke_removed(home: &Home, revoking: Revoking) -> Result {
    let Some(ca) = Ca::open(home)? else {
        return Ok(());
    };
    for (name, of_device) in revoking.0 {
        let count = of_device.serials.len();
        let (_, revocations) = Revocations::update(home, now(), |r| {
            r.revoke(ca.public_key(), of_device.serials, of_device.key_ids)
        })?;
        let path = revocation::krl_path(home);
        outln!(
            "Revoked {count} certificate(s) of \"{name}\" and its key ID; KRL version {} at {}.",
            revocations.krl_version(),
            path.display()
        )?;
    }
    Ok(())
}

fn ask_yes(question: &str) -> Result<bool> {
    use std::io::{BufRead, Write};
    err!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn list_issued(home: &Home) -> Result {
    let (log, unreadable) = issued::read(home)?;
    if unreadable > 0 {
        errln!(
            "Warning: {unreadable} line(s) of {} could not be read.",
            issued::ISSUED_FILE.path(home).display()
        );
    }
    if log.is_empty() {
        outln!("No certificates issued yet.")?;
        return Ok(());
    }
    let ca = Ca::open(home)?;
    let revocations = Revocations::load(home)?;
    for r in log {
        let revoked = ca.as_ref().is_some_and(|ca| {
            revocations.serial_revoked(ca.public_key(), r.serial)
                || revocations.key_id_revoked(ca.public_key(), &r.key_id)
        });
        // The log is a file, edited by hand at times: its text is escaped.
        outln!(
            "{}  serial {:<20} {:<16} {}  valid until {}{}  key ID {}",
            format_utc(r.time.saturating_mul(1000)),
            r.serial,
            escape(&r.device),
            escape(&r.principals.join(",")),
            format_utc(r.valid_before.saturating_mul(1000)),
            if revoked { "  REVOKED" } else { "" },
            escape(&r.key_id),
        )?;
    }
    Ok(())
}

fn joined(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

    fn issued(serial: u64, key_id: &str, device: &str) -> IssueRecord {
        IssueRecord {
            time: 1,
            serial,
            key_id: key_id.to_owned(),
            device: device.to_owned(),
            principals: vec!["alice".to_owned()],
            valid_after: 1,
            valid_before: 2,
        }
    }

    /// A rename changes the name in a device's key IDs, not its device id:
    /// revoking it by the new name also finds what it got under the old
    /// one, and nothing of another device.
    #[test]
    fn a_renamed_device_is_revoked_with_what_it_got_under_its_old_name() {
        let log = [
            issued(1, "vmux:laptop:dev-1", "laptop"),
            issued(2, "vmux:desk:dev-2", "desk"),
            issued(3, "vmux:work:dev-1", "work"),
            issued(4, "vmux:x:dev-1:y", "x"),
        ];
        let renamed = PinnedPeer::new(
            "dev-1".to_owned(),
            "work".to_owned(),
            PeerRole::Requester,
            &[7; vmux_link::noise::KEY_LEN],
            0,
        );
        let of = certificates_of(&log, Some("work"), &[&renamed]);
        assert_eq!(of.serials, BTreeSet::from([1, 3]));
        assert_eq!(
            of.key_ids,
            BTreeSet::from(["vmux:laptop:dev-1".to_owned(), "vmux:work:dev-1".to_owned()])
        );
    }
}
