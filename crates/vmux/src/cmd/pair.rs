//! `vmux pair`: first contact with a signer.

use std::time::Duration;

use vmux_link::clock::{Clock, SystemClock};
use vmux_link::device::Device;
use vmux_link::discovery::{self, Scope};
use vmux_link::home::Home;
use vmux_link::session;
use vmux_link::trust::TrustStore;
use vmux_proto::envelope::{ErrorCode, Role};
use vmux_proto::text::escape;

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signer's address; without it, signers are looked for on the local network.
    #[arg(long, value_name = "HOST:PORT")]
    signer: Option<String>,
    /// Name the signer's person will see (default: the stored name, else the host name).
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(args: Args) -> Result {
    let home = Home::from_env()?;
    let device = Device::load_or_create(&home, args.name.as_deref())?;
    let mut trust = TrustStore::load(&home)?;
    let address = match args.signer {
        Some(a) => a,
        None => discover().await?,
    };
    // Already paired with this signer: nothing to do, and no code to show.
    if let Ok(session) = session::connect(
        &address,
        &device,
        Role::Agent,
        &mut trust,
        SystemClock.now_ms(),
    )
    .await
    {
        outln!("Already paired with {}", escape(&session.peer().name))?;
        return Ok(());
    }
    let pending = match session::start_pairing(&address, &device, Role::Agent).await {
        Ok(pending) => pending,
        // Word for word: it says what to do, and the code adds nothing.
        Err(vmux_link::Error::Peer {
            code: ErrorCode::PairingInvalid,
            message,
        }) if message == session::PAIRING_CLOSED => return Err(message.into()),
        Err(e) => return Err(e.into()),
    };
    // The signer's name was checked at decode (no control characters);
    // escaped all the same, as everything a peer chose.
    let name = escape(&pending.signer().name).into_owned();
    outln!("Pairing code: {}", pending.code())?;
    outln!(
        "Accept on the signer \"{name}\" only if it shows the same code (signer key {}).",
        pending.signer().fingerprint()
    )?;
    let _session = pending.finish(&mut trust, SystemClock.now_ms()).await?;
    outln!("Paired with {name}")?;
    Ok(())
}

async fn discover() -> Result<String> {
    outln!("Looking for signers on the local network…")?;
    let found = discovery::browse(Scope::All, &[], Duration::from_secs(5)).await?;
    let (usable, other): (Vec<_>, Vec<_>) = found
        .iter()
        .partition(|s| s.version == discovery::PROTOCOL_MAJOR);
    for s in &other {
        outln!(
            "Skipping signer \"{}\": it speaks protocol version {}",
            escape(&s.name),
            s.version
        )?;
    }
    match usable.as_slice() {
        [] => Err(
            "no signer found on the local network; start `vmux signer` or give --signer HOST:PORT"
                .into(),
        ),
        [signer] => {
            let Some(address) = signer.addresses.first() else {
                return Err(format!(
                    "signer \"{}\" advertised no address; give --signer HOST:PORT",
                    escape(&signer.name)
                )
                .into());
            };
            outln!(
                "Found signer \"{}\" at {address} (key {})",
                escape(&signer.name),
                signer.fingerprint
            )?;
            Ok(address.to_string())
        }
        several => {
            // Names are chosen by whoever advertises: shown escaped, with
            // the key fingerprint that the pairing code will then vouch for.
            outln!("Found several signers:")?;
            for (i, s) in several.iter().enumerate() {
                let address = s
                    .addresses
                    .first()
                    .map_or("no address".to_owned(), ToString::to_string);
                outln!(
                    "  {}) \"{}\" at {address} (key {})",
                    i + 1,
                    escape(&s.name),
                    s.fingerprint
                )?;
            }
            if !rustix::termios::isatty(std::io::stdin()) {
                return Err("several signers answered; choose one with --signer HOST:PORT".into());
            }
            let chosen = choose(several.len())?;
            let signer = several
                .get(chosen)
                .ok_or("no such signer; choose one with --signer HOST:PORT")?;
            signer
                .addresses
                .first()
                .map(ToString::to_string)
                .ok_or_else(|| {
                    format!(
                        "signer \"{}\" advertised no address; give --signer HOST:PORT",
                        escape(&signer.name)
                    )
                    .into()
                })
        }
    }
}

/// Asks which of `count` signers to pair with; its index.
fn choose(count: usize) -> Result<usize> {
    use std::io::Write;
    loop {
        out!("Pair with which one? [1-{count}] ")?;
        std::io::stdout().flush()?;
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 {
            return Err("no answer; choose a signer with --signer HOST:PORT".into());
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=count).contains(&n) => return Ok(n - 1),
            _ => outln!("Type a number from 1 to {count}.")?,
        }
    }
}
