//! `vmux signer`: the device that holds the keys.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vmux_link::clock::SystemClock;
use vmux_link::device::Device;
use vmux_link::discovery::{self, Scope};
use vmux_link::home::Home;
use vmux_signer::approval::{self, Approvals, PairingWindow};
use vmux_signer::log::Log;
use vmux_signer::settings::{self, Settings};
use vmux_signer::ui::guide::{Guide, Step};
use vmux_signer::{Config, Signer, ui};

use super::Result;

/// How the signer shows its sheets.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ui {
    /// The full-screen sheet on a terminal, else plain.
    #[default]
    Auto,
    /// The full-screen sheet (needs a terminal).
    Tui,
    /// One line per answer: `a` accept/approve, `d` reject/deny.
    Plain,
    /// Native dialogs from the person's pinentry (`$PINENTRY_PROGRAM`, else
    /// `pinentry` on PATH): for a signer with no terminal, e.g. a user service.
    Pinentry,
}

impl Ui {
    /// Whether to draw the full-screen sheet.
    pub fn full_screen(self) -> bool {
        match self {
            Ui::Tui => true,
            Ui::Plain | Ui::Pinentry => false,
            Ui::Auto => {
                rustix::termios::isatty(std::io::stdin())
                    && rustix::termios::isatty(std::io::stdout())
            }
        }
    }

    /// Starts this front end on the approval `commands`; the person opens
    /// `window` from it.
    pub fn spawn(
        self,
        commands: mpsc::UnboundedReceiver<approval::Command>,
        window: PairingWindow,
    ) -> std::io::Result<JoinHandle<std::io::Result<()>>> {
        Ok(if self == Ui::Pinentry {
            // Found now, so a missing pinentry stops the start, not a request.
            // It has no screen between requests: only `--pair` opens a window.
            let program = ui::pinentry::program()?;
            tokio::spawn(ui::pinentry::run(commands, program, tokio::io::stdout()))
        } else if self.full_screen() {
            tokio::spawn(ui::tui::run(commands, window))
        } else {
            tokio::spawn(ui::plain::run(
                commands,
                window,
                ui::plain::Input::stdin(),
                tokio::io::stdout(),
            ))
        })
    }
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the signer's request log.
    Log {
        /// Raw JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Address to listen on, HOST or HOST:PORT (port 0: any free port).
    /// Without a port: the one used last, else 7390 when free. Only
    /// non-loopback addresses are advertised.
    #[arg(long, value_name = "HOST[:PORT]", default_value = "0.0.0.0")]
    listen: String,
    /// Push endpoint (UnifiedPush / ntfy style, https://) that devices POST
    /// to when they cannot reach this signer; kept in signer.json for later
    /// runs. An empty value forgets it.
    #[arg(long, value_name = "URL")]
    wake_url: Option<String>,
    /// Name shown to paired devices (default: the stored name, else the host name).
    #[arg(long)]
    name: Option<String>,
    /// Approval front end.
    #[arg(long, value_enum, default_value_t)]
    ui: Ui,
    /// Don't advertise on DNS-SD; devices then need `--signer HOST:PORT`.
    #[arg(long)]
    no_advertise: bool,
    /// Seconds a pairing invitation waits for an answer.
    #[arg(long, default_value_t = 120)]
    pairing_timeout: u64,
    /// Accept new devices (`vmux pair`) for the first 5 minutes. Later, press
    /// p on the signer (type p and Enter with --ui plain).
    #[arg(long)]
    pair: bool,
}

impl Args {
    /// Whether this run draws the full-screen sheet.
    pub fn full_screen(&self) -> bool {
        self.command.is_none() && self.run.ui.full_screen()
    }
}

pub async fn run(args: Args) -> Result {
    let home = Home::from_env()?;
    match args.command {
        Some(Command::Log { json }) => log(&home, json),
        None => serve(home, args.run).await,
    }
}

fn log(home: &Home, json: bool) -> Result {
    let path = home.file(vmux_signer::log::LOG_FILE);
    if json {
        let text = Log::read_text(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out!("{}", vmux_proto::text::escape_json(&text))?;
        return Ok(());
    }
    let entries = Log::read(&path)?;
    if entries.is_empty() {
        outln!("No requests yet.")?;
    }
    for e in entries {
        outln!("{}", e.human())?;
    }
    Ok(())
}

/// What a new device runs to pair with a signer listening on `local`: a
/// signer not advertised on the network is found only at its address.
fn pair_command(local: &std::net::SocketAddr, advertised: bool) -> String {
    if advertised {
        return "vmux pair".to_owned();
    }
    if local.ip().is_unspecified() {
        return format!("vmux pair --signer HOST:{}", local.port());
    }
    format!("vmux pair --signer {local}")
}

/// The file the running signer locks and writes its pid and address into.
pub const OWNER_FILE: &str = "signer.pid";

/// Makes this process the one signer of `home`, or says which one is.
pub fn own_home(home: &Home) -> Result<vmux_state::Owner> {
    match vmux_state::Owner::claim(home, OWNER_FILE)? {
        Ok(owner) => Ok(owner),
        Err(holder) => {
            let pid = holder.pid.map_or("unknown".to_owned(), |p| p.to_string());
            let address = holder
                .address
                .as_deref()
                .unwrap_or("an address not yet known");
            Err(format!(
                "another signer (pid {pid}, listening on {address}) already uses the state \
                 directory {}: stop it, or set VMUX_HOME to another directory",
                home.root().display()
            )
            .into())
        }
    }
}

async fn serve(home: Home, args: RunArgs) -> Result {
    // Before anything is read or bound: the owner alone writes signer.json.
    let mut owner = own_home(&home)?;
    let device = Device::load_or_create(&home, args.name.as_deref())?;
    let (host, port) = settings::parse_listen(&args.listen)?;
    let mut settings = Settings::load(&home)?;
    if let Some(url) = args.wake_url {
        if !url.is_empty() {
            vmux_link::wake::check_endpoint(&url)?;
        }
        settings.wake_url = Some(url).filter(|u| !u.is_empty());
    }
    let listener: TcpListener = settings::listen(host, port, &mut settings)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; choose another with --listen HOST:PORT",
                args.listen
            )
        })?;
    let local = listener.local_addr()?;
    owner.record(Some(&local.to_string()))?;
    // Remembered for the next run: the same port, the same endpoint.
    if let Err(e) = settings.save(&home) {
        tracing::warn!("{e}; the next run may listen on another port");
    }
    if let Some(url) = settings.wake_url() {
        outln!("Wake endpoint: {}", vmux_link::wake::endpoint_host(url))?;
    }
    outln!(
        "vmux signer \"{}\" listening on {local}",
        vmux_proto::text::escape(&device.name)
    )?;
    outln!("Signer key: {}", device.fingerprint())?;
    // A loopback signer is reachable only from this machine, where
    // `--signer 127.0.0.1:PORT` works; advertising it would still start an
    // mDNS daemon, whose group joins go out on every real interface.
    let advertisement = if args.no_advertise || local.ip().to_canonical().is_loopback() {
        None
    } else {
        Some(discovery::advertise(
            &device.name,
            local.port(),
            &device.fingerprint(),
            Scope::for_listen_addr(&local),
        )?)
    };

    let (approvals, commands) = Approvals::new();
    // The full-screen sheet hides what was printed; repeat it there.
    approvals.banner(format!(
        "Listening on {local}, signer key {}",
        device.fingerprint()
    ));
    if args.ui.full_screen() {
        // Kept on screen, unlike banners that scroll away.
        approvals.guide(Guide {
            title: "Log".into(),
            steps: vec![Step {
                what: "Log lines go to this file, not to the screen:".into(),
                line: Some(super::logging::path()?.display().to_string()),
            }],
            file: None,
        });
    }
    let config = Config {
        pairing_timeout: Duration::from_secs(args.pairing_timeout),
        wake_url: settings.wake_url().map(str::to_owned),
    };
    let window = approvals.pairing_window();
    window.set_command(pair_command(&local, advertisement.is_some()));
    if args.pair {
        window.open();
    }
    let ui = args.ui.spawn(commands, window)?;
    let signer = Signer::new(device, home, approvals, Arc::new(SystemClock), config)?;
    tokio::select! {
        served = signer.serve(listener) => served?,
        shown = ui => { shown??; outln!("Input closed; signer stopped.")?; }
        _ = tokio::signal::ctrl_c() => outln!("Signer stopped.")?,
    }
    if let Some(advertisement) = advertisement {
        advertisement.withdraw().await;
    }
    Ok(())
}
