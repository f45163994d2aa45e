//! The tray on Linux (and other freedesktop systems): a StatusNotifierItem
//! with a com.canonical.dbusmenu menu on the session bus, through `ksni`
//! (pure Rust over zbus; no GTK).

use ksni::menu::StandardItem;
use ksni::{MenuItem, OfflineReason, TrayMethods};
use tokio::sync::{mpsc, watch};

use super::icon;
use super::menu::{Action, Icon, Menu};
use crate::cmd::Result;

/// Shows `menus` as they change, sending what is picked to `actions`;
/// returns only if the tray service stops.
pub async fn run(
    mut menus: watch::Receiver<Menu>,
    actions: mpsc::UnboundedSender<Action>,
) -> Result {
    let tray = Sni {
        menu: menus.borrow_and_update().clone(),
        actions,
    };
    // A panel may start after us (autostart): keep the item up and let it
    // register once a StatusNotifierWatcher appears.
    let handle = tray.assume_sni_available(true).spawn().await.map_err(|e| {
        format!(
            "cannot put the tray icon on the session bus: {e}; `vmux tray` needs a desktop \
             session (DBUS_SESSION_BUS_ADDRESS), or run `vmux status` instead"
        )
    })?;
    while menus.changed().await.is_ok() {
        let menu = menus.borrow_and_update().clone();
        if handle.update(move |tray| tray.menu = menu).await.is_none() {
            break;
        }
    }
    Err("the tray icon's D-Bus service stopped".into())
}

struct Sni {
    menu: Menu,
    actions: mpsc::UnboundedSender<Action>,
}

impl ksni::Tray for Sni {
    // A click shows the menu too: there is nothing else to open.
    const MENU_ON_ACTIVATE: bool = true;

    fn id(&self) -> String {
        "vmux".into()
    }

    fn title(&self) -> String {
        self.menu.title.clone()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        vec![pixmap(self.menu.icon)]
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: self.menu.title.clone(),
            description: self.menu.lines.get(1).cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let mut items: Vec<MenuItem<Self>> = self
            .menu
            .lines
            .iter()
            .map(|line| {
                StandardItem {
                    label: literal(line),
                    enabled: false,
                    ..Default::default()
                }
                .into()
            })
            .collect();
        for action in Action::ALL {
            if matches!(
                action,
                Action::RefreshKeys | Action::CopySocketLine | Action::Quit
            ) {
                items.push(MenuItem::Separator);
            }
            items.push(
                StandardItem {
                    label: literal(action.label()),
                    enabled: self.menu.enabled(action),
                    activate: Box::new(move |tray: &mut Self| {
                        let _ = tray.actions.send(action);
                    }),
                    ..Default::default()
                }
                .into(),
            );
        }
        items
    }

    fn watcher_offline(&self, reason: OfflineReason) -> bool {
        tracing::warn!(
            "tray: no StatusNotifierWatcher on the session bus ({reason:?}); the icon shows once \
             the panel offers one (on GNOME: the AppIndicator extension)"
        );
        true
    }

    fn watcher_online(&self) {
        tracing::info!("tray: registered with the StatusNotifierWatcher");
    }
}

/// `text` shown as is: dbusmenu takes `_` as an access-key mark, `__` as
/// one underscore.
fn literal(text: &str) -> String {
    text.replace('_', "__")
}

fn pixmap(which: Icon) -> ksni::Icon {
    let side = i32::try_from(icon::SIZE).unwrap_or(0);
    ksni::Icon {
        width: side,
        height: side,
        data: icon::argb(which),
    }
}
