//! `vmux up`: the one-machine quickstart. A signer and an agent in one
//! process, paired over loopback, approvals in this terminal.
//!
//! The pairing needs no code: both devices are made here, by this user, in
//! this process, so there is no one in the middle to compare codes against.
//! Every signature still needs an Approve and the passphrase on the sheet.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use vmux_agent::{CertConfig, Config as AgentConfig, DEFAULT_SIGN_TIMEOUT};
use vmux_keys::{KeyType, Keyring};
use vmux_link::clock::{Clock, SystemClock};
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_link::trust::{PeerRole, PinnedPeer, TrustStore};
use vmux_signer::approval::Approvals;
use vmux_signer::{Config, Signer};

use super::Result;
use super::key::prompt;
use super::signer::Ui;

/// The demo identity made on first run.
const DEMO: &str = "demo";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Approval front end.
    #[arg(long, value_enum, default_value_t)]
    ui: Ui,
}

pub async fn run(args: Args) -> Result {
    // The signer keeps the usual state dir (so `vmux key`, `vmux ca` and
    // `vmux signer log` see it); the agent is a second device beside it.
    let signer_home = Home::from_env()?;
    let agent_home = Home::at(signer_home.file("agent"))?;
    let mut keyring = Keyring::load(&signer_home)?;
    if keyring.list().is_empty() {
        println!("No identity yet: making \"{DEMO}\" (ecdsa-sha2-nistp256).");
        let passphrase = prompt::secret(
            "Passphrase for the demo key (asked again at each signature): ",
            true,
        )?;
        let id = keyring.create_software(DEMO, KeyType::Ecdsa, &passphrase)?;
        println!(
            "For ~/.ssh/authorized_keys on your servers:\n  {}",
            id.authorized_keys_line()
        );
    }

    let signer_device = Device::load_or_create(&signer_home, None)?;
    let agent_device = Device::load_or_create(
        &agent_home,
        Some(&format!("{} (vmux up)", signer_device.name)),
    )?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    pin_each_other(
        &signer_home,
        &signer_device,
        &agent_home,
        &agent_device,
        &address,
    )?;

    let socket = vmux_agent::socket::default_path()?;
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
        },
        CertConfig::default(),
    )?;
    let export = format!("export SSH_AUTH_SOCK={}", agent.socket_path().display());
    println!("Signer and agent running; approvals appear here. Ctrl-C stops both.");
    println!("In another terminal:\n  {export}");
    println!("or, without the agent:\n  VMUX_HOME={client_home} vmux ssh user@host");
    println!(
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
        agent.socket_path().display()
    );

    let (approvals, commands) = Approvals::new();
    approvals.banner(format!("In another terminal: {export}"));
    let config = Config {
        pairing_timeout: Duration::from_secs(120),
    };
    let signer = Signer::new(
        signer_device,
        signer_home,
        approvals,
        Arc::new(SystemClock),
        config,
    )?;
    let ui = args.ui.spawn(commands)?;
    // Whichever stops first stops all; dropping the agent removes its socket.
    tokio::select! {
        served = signer.serve(listener) => served?,
        served = agent.serve() => served?,
        shown = ui => shown??,
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("Stopped.");
    Ok(())
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
        trust.pin(PinnedPeer::new(
            agent.id.clone(),
            agent.name.clone(),
            PeerRole::Requester,
            &agent.keypair.public(),
            now,
        ))?;
    }
    let mut trust = TrustStore::load(agent_home)?;
    let mut record = PinnedPeer::new(
        signer.id.clone(),
        signer.name.clone(),
        PeerRole::Signer,
        &signer.keypair.public(),
        now,
    );
    record.address = Some(address.to_owned());
    trust.pin(record)?;
    Ok(())
}
