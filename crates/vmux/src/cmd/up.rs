//! `vmux up`: the one-machine quickstart. A signer and an agent in one
//! process, paired over loopback, approvals in this terminal.
//!
//! The pairing needs no code: both devices are made here, by this user, in
//! this process, so there is no one in the middle to compare codes against.
//! Every signature still needs an Approve and the passphrase on the sheet.
//!
//! The screen keeps a panel of what to do next (the `authorized_keys` line
//! of each identity, the CA line for `TrustedUserCAKeys`, the `export`
//! line), also written to `next-steps.txt` in the state directory to copy
//! from; log lines go to a file it names, never onto the screen.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use vmux_agent::{CertConfig, Config as AgentConfig, DEFAULT_SIGN_TIMEOUT};
use vmux_keys::ca::Ca;
use vmux_keys::{KeyType, Keyring};
use vmux_link::clock::{Clock, SystemClock};
use vmux_link::device::Device;
use vmux_link::home::{Home, write_private};
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_proto::text::escape;
use vmux_signer::approval::Approvals;
use vmux_signer::ui::guide::{Guide, Step};
use vmux_signer::{Config, Signer};

use super::Result;
use super::key::prompt;
use super::signer::Ui;

/// The demo identity made on first run.
const DEMO: &str = "demo";

/// The copy of the next-steps panel in the state directory.
const NEXT_STEPS: &str = "next-steps.txt";

/// Where `up` keeps its agent's state, inside the state directory: the
/// agent is a second device beside the signer, with its own key and trust.
const AGENT_DIR: &str = "agent";

/// The agent's state directory for commands that read it (`vmux log`,
/// `vmux ssh`): `up`'s agent's when `home` is where `vmux up` ran, so
/// they find it with the `VMUX_HOME` the person used; else `home`.
pub fn agent_home(home: Home) -> vmux_link::Result<Home> {
    let agent = home.file(AGENT_DIR);
    if agent.join(vmux_link::device::DEVICE_FILE.name()).is_file() {
        return Ok(Home::at(agent)?);
    }
    Ok(home)
}

/// How often to look for the CA key while there is none yet (the agent's
/// first certificate request makes it).
const CA_POLL: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Approval front end.
    #[arg(long, value_enum, default_value_t)]
    ui: Ui,
    #[command(flatten)]
    upstream: super::agent::UpstreamArgs,
}

impl Args {
    /// Whether the full-screen sheet owns the terminal.
    pub fn full_screen(&self) -> bool {
        self.ui.full_screen()
    }
}

pub async fn run(args: Args) -> Result {
    // The signer keeps the usual state dir (so `vmux key`, `vmux ca` and
    // `vmux signer log` see it); the agent is a second device beside it.
    let signer_home = Home::from_env()?;
    let mut owner = super::signer::own_home(&signer_home)?;
    let agent_home = Home::at(signer_home.file(AGENT_DIR))?;
    let keyring = demo_identity(&signer_home)?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    owner.record(Some(&address))?;
    let signer_device = pair_here(&signer_home, &agent_home, &address)?;

    let socket = vmux_agent::socket::default_path()?;
    let upstream = args.upstream.resolve(&socket)?;
    // The agent asks for a session certificate as it connects: its sheet
    // is the first thing the person sees.
    // `vmux ssh` logs in as the paired device, from its state directory.
    let client_home = agent_home.root().display().to_string();
    let agent = vmux_agent::start(
        AgentConfig {
            home: agent_home,
            socket,
            signer: Some(address.clone()),
            sign_timeout: DEFAULT_SIGN_TIMEOUT,
            signer_wait: vmux_agent::link::DEFAULT_SIGNER_WAIT,
            upstream,
        },
        CertConfig::default(),
    )?;
    let export = format!("export SSH_AUTH_SOCK={}", agent.socket_path().display());
    outln!("Signer and agent running; approvals appear here. Ctrl-C stops both.")?;
    outln!("In another terminal:\n  {export}")?;
    outln!("or, without the agent:\n  VMUX_HOME={client_home} vmux ssh user@host")?;
    outln!(
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
        agent.socket_path().display()
    )?;

    let (approvals, commands) = Approvals::new();
    let next = NextSteps {
        identities: keyring
            .list()
            .iter()
            .filter(|i| i.enabled)
            .map(|i| (i.name.clone(), i.authorized_keys_line()))
            .collect(),
        export,
        client_home,
        file: signer_home.file(NEXT_STEPS),
        log: args.full_screen().then(super::logging::path).transpose()?,
    };
    next.keep(&approvals, &signer_home);
    let window = approvals.pairing_window();
    let config = Config {
        pairing_timeout: Duration::from_secs(120),
        ..Config::default()
    };
    let signer = Signer::new(
        signer_device,
        signer_home,
        approvals,
        Arc::new(SystemClock),
        config,
    )?;
    let ui = args.ui.spawn(commands, window)?;
    // Whichever stops first stops all; dropping the agent removes its socket.
    tokio::select! {
        served = signer.serve(listener) => served?,
        served = agent.serve() => served?,
        shown = ui => shown??,
        _ = tokio::signal::ctrl_c() => {}
    }
    outln!("Stopped.")?;
    Ok(())
}

/// The keyring, with the demo identity made first when it is empty.
fn demo_identity(home: &Home) -> Result<Keyring> {
    let mut keyring = Keyring::load(home)?;
    if keyring.list().is_empty() {
        outln!("No identity yet: making \"{DEMO}\" (ecdsa-sha2-nistp256).")?;
        let passphrase = prompt::secret(
            "Passphrase for the demo key (asked again at each signature): ",
            true,
        )?;
        let id = keyring.create_software(DEMO, KeyType::Ecdsa, &passphrase)?;
        outln!(
            "For ~/.ssh/authorized_keys on your servers:\n  {}",
            id.authorized_keys_line()
        )?;
    }
    Ok(keyring)
}

/// What the panel says; shown again once the CA exists.
struct NextSteps {
    /// Name and `authorized_keys` line of each enabled identity.
    identities: Vec<(String, String)>,
    export: String,
    client_home: String,
    /// Where the panel is copied to.
    file: PathBuf,
    /// The log file, when logs go to one.
    log: Option<PathBuf>,
}

impl NextSteps {
    /// Puts the panel on screen, and again once the CA exists.
    fn keep(self, approvals: &Approvals, home: &Home) {
        self.show(approvals, home);
        if matches!(ca_public_line(home), Ok(None)) {
            let (approvals, home) = (approvals.clone(), home.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CA_POLL);
                // Until the CA is made, or cannot be read: polling would not mend that.
                while matches!(ca_public_line(&home), Ok(None)) {
                    tick.tick().await;
                }
                self.show(&approvals, &home);
            });
        }
    }

    /// Puts the panel on screen and in [`NEXT_STEPS`].
    fn show(&self, approvals: &Approvals, home: &Home) {
        let guide = self.guide(home);
        // The screen shows it either way; say so there if the copy failed.
        let mut shown = guide.clone();
        if let Err(e) = write_private(&self.file, guide.text().as_bytes()) {
            shown.steps.push(Step {
                what: format!("(could not copy these to {}: {e})", self.file.display()),
                line: None,
            });
        }
        approvals.guide(shown);
    }

    fn guide(&self, home: &Home) -> Guide {
        let mut steps: Vec<Step> = self
            .identities
            .iter()
            .map(|(name, line)| Step {
                what: format!("For ~/.ssh/authorized_keys on your servers (\"{name}\"):"),
                line: Some(line.clone()),
            })
            .collect();
        match ca_public_line(home) {
            Ok(Some(line)) => {
                steps.push(Step {
                    what: "TrustedUserCAKeys line for sshd (/etc/ssh/vmux-ca.pub in the README):"
                        .into(),
                    line: Some(line),
                });
                steps.push(Step {
                    what: "A session certificate when you want one (approved here):".into(),
                    line: Some("vmux cert request".into()),
                });
            }
            Err(e) => steps.push(Step {
                what: format!(
                    "No session certificates until the CA can be read: {}",
                    escape(&e)
                ),
                line: None,
            }),
            Ok(None) => steps.push(Step {
                what: "No CA yet for session certificates: `vmux ca init`, or approve a \
                       `vmux cert request` here, which makes one; its TrustedUserCAKeys line \
                       then shows here."
                    .into(),
                line: None,
            }),
        }
        steps.push(Step {
            what: "In another terminal, to use the agent:".into(),
            line: Some(self.export.clone()),
        });
        steps.push(Step {
            what: "Or, without the agent:".into(),
            line: Some(format!("VMUX_HOME={} vmux ssh user@host", self.client_home)),
        });
        let mut copied = format!("These lines are also in {}", self.file.display());
        if let Some(log) = &self.log {
            copied.push_str(&format!("; log lines go to {}", log.display()));
        }
        steps.push(Step {
            what: copied,
            line: None,
        });
        Guide {
            title: "Next steps".into(),
            steps,
            file: Some(self.file.display().to_string()),
        }
    }
}

/// The CA's public key line (no passphrase needed: only the public part is
/// read); `None` while there is no CA; why not, worded for the panel, when
/// it cannot be read.
fn ca_public_line(home: &Home) -> std::result::Result<Option<String>, String> {
    let Some(ca) = Ca::open(home).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let line = ca
        .public_key()
        .to_openssh()
        .map_err(|e| format!("cannot encode the CA public key: {e}"))?;
    Ok(Some(line))
}

/// The signer's device and the agent's, made if new and pinned in each
/// other's trust store (the agent's with the signer at `address`).
fn pair_here(signer_home: &Home, agent_home: &Home, address: &str) -> Result<Device> {
    let signer = Device::load_or_create(signer_home, None)?;
    let agent = Device::load_or_create(agent_home, Some(&format!("{} (vmux up)", signer.name)))?;
    pin_each_other(signer_home, &signer, agent_home, &agent, address)?;
    Ok(signer)
}

/// Pins the two devices in each other's trust store.
fn pin_each_other(
    signer_home: &Home,
    signer: &Device,
    agent_home: &Home,
    agent: &Device,
    address: &str,
) -> Result {
    let now = SystemClock.now_ms();
    let mut trust = TrustStore::load(signer_home)?;
    if trust
        .find(PeerRole::Requester, &agent.keypair.public())
        .is_none()
    {
        // The names pairing would pin: as each sends it in its hello.
        trust.pin(PinnedPeer::new(
            agent.id.clone(),
            agent.wire_name(),
            PeerRole::Requester,
            &agent.keypair.public(),
            now,
        ))?;
    }
    let mut trust = TrustStore::load(agent_home)?;
    let mut record = PinnedPeer::new(
        signer.id.clone(),
        signer.wire_name(),
        PeerRole::Signer,
        &signer.keypair.public(),
        now,
    );
    record.address = Some(address.to_owned());
    trust.pin(record)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A CA that cannot be read is named on the panel, not taken for "no CA
    /// yet", whose advice (`vmux ca init`) would be refused.
    #[test]
    fn a_damaged_ca_is_named_on_the_panel() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home")).unwrap();
        assert_eq!(ca_public_line(&home), Ok(None));
        std::fs::write(vmux_keys::ca::KEY_FILE.path(&home), "not a key").unwrap();
        assert!(ca_public_line(&home).is_err());
        let next = NextSteps {
            identities: Vec::new(),
            export: "export SSH_AUTH_SOCK=/x".into(),
            client_home: "/x".into(),
            file: home.file(NEXT_STEPS),
            log: None,
        };
        let text = next.guide(&home).text();
        assert!(text.contains("is damaged"), "{text}");
        assert!(!text.contains("No CA yet"), "{text}");
    }
}
