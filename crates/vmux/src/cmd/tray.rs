//! `vmux tray`: the agent's state as a tray icon and its menu (a
//! StatusNotifierItem on Linux and other freedesktop desktops; on macOS the
//! menu-bar item is not built yet), with the seeds' actions. It reads the running agent through the same `…@vmux`
//! extensions `vmux status` uses: no second control socket.

mod desktop;
// Shown by sni.rs; menubar.rs does not show them yet.
#[cfg_attr(target_os = "macos", allow(dead_code))]
mod icon;
#[cfg_attr(target_os = "macos", allow(dead_code))]
mod menu;
#[cfg(target_os = "macos")]
mod menubar;
#[cfg(not(target_os = "macos"))]
mod sni;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use vmux_agent::control;
use vmux_agent::request_log;
use vmux_link::home::Home;
use vmux_proto::text::escape;

use self::menu::{Action, Menu};
use super::Result;

/// How often the agent is asked: the menu follows it within this, and
/// well within the 2 s the seeds' menu bar takes.
const POLL: Duration = Duration::from_secs(1);
/// A status answer later than this counts as none.
const STATUS_WAIT: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The agent's socket (default: ~/.ssh/vmux-agent.sock, or
    /// $VMUX_HOME/agent.sock; not $SSH_AUTH_SOCK, which in a desktop
    /// session is often another agent's).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result {
    let socket = match args.socket {
        Some(p) => p,
        None => vmux_agent::socket::default_path()?,
    };
    let log = Home::from_env()?.file(request_log::LOG_FILE);
    let first = read_menu(&socket).await;
    let (menus, menus_rx) = watch::channel(first);
    let (actions, actions_rx) = mpsc::unbounded_channel();
    let controller = Controller {
        socket,
        log,
        menus,
        changed: Arc::new(Notify::new()),
    };
    #[cfg(not(target_os = "macos"))]
    let shown = sni::run(menus_rx, actions);
    #[cfg(target_os = "macos")]
    let shown = menubar::run(menus_rx, actions);
    tokio::select! {
        quit = controller.run(actions_rx) => quit,
        stopped = shown => stopped,
    }
}

/// Keeps the menu in step with the agent and carries out the actions.
struct Controller {
    socket: PathBuf,
    log: PathBuf,
    menus: watch::Sender<Menu>,
    /// An action finished: read the agent again now.
    changed: Arc<Notify>,
}

impl Controller {
    /// Until Quit is picked.
    async fn run(&self, mut actions: mpsc::UnboundedReceiver<Action>) -> Result {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.changed.notified() => {}
                action = actions.recv() => match action {
                    Some(Action::Quit) | None => return Ok(()),
                    Some(action) => self.act(action),
                },
            }
            let menu = read_menu(&self.socket).await;
            self.menus.send_if_modified(|shown| {
                let changed = *shown != menu;
                *shown = menu;
                changed
            });
        }
    }

    /// Starts `action`; the ones that wait for the signer (a certificate
    /// waits for a person) run beside the menu, which stays live.
    fn act(&self, action: Action) {
        tracing::info!("tray: {}", action.label());
        match action {
            Action::RefreshKeys => self.ask(control::REFRESH, "Refresh Keys"),
            Action::RequestCertificate => self.ask(control::CERT_REQUEST, "Request Certificate"),
            Action::CopySocketLine => {
                let line = menu::socket_line(&self.socket);
                // The clipboard tool is waited for: off the runtime.
                tokio::task::spawn_blocking(move || desktop::copy(&line));
            }
            Action::OpenLog => desktop::open(&self.log),
            Action::Quit => {}
        }
    }

    /// Sends the control extension `name` to the agent in the background.
    fn ask(&self, name: &'static str, label: &'static str) {
        let (socket, changed) = (self.socket.clone(), self.changed.clone());
        tokio::spawn(async move {
            match control::call(&socket, name).await {
                Ok(status) => {
                    let what = if name == control::REFRESH {
                        format!("{} key(s)", status.keys.len())
                    } else {
                        escape(&status.certificate).into_owned()
                    };
                    tracing::info!("tray: {label} done: {what}");
                }
                Err(e) => tracing::warn!("tray: {label}: {}", escape(&e.to_string())),
            }
            changed.notify_one();
        });
    }
}

/// The menu for the agent at `socket` now.
async fn read_menu(socket: &std::path::Path) -> Menu {
    match tokio::time::timeout(STATUS_WAIT, control::call(socket, control::STATUS)).await {
        Ok(Ok(status)) => Menu::from_status(&status),
        Ok(Err(e)) => Menu::no_agent(socket, &e.to_string()),
        Err(_) => Menu::no_agent(
            socket,
            &format!("no answer within {} s", STATUS_WAIT.as_secs()),
        ),
    }
}
