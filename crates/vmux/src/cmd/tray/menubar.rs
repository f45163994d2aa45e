//! The tray on macOS: not built yet. The menu, the icon and the actions
//! are platform-neutral (menu.rs, icon.rs, desktop.rs, with `pbcopy`,
//! `open` and the template image); what is missing is the NSStatusItem
//! that shows them, which needs an AppKit event loop on the main thread.

use tokio::sync::{mpsc, watch};

use super::menu::{Action, Menu};
use crate::cmd::Result;

/// Says plainly that there is no menu-bar item yet, and what works instead.
pub async fn run(menus: watch::Receiver<Menu>, actions: mpsc::UnboundedSender<Action>) -> Result {
    drop((menus, actions));
    Err(
        "the macOS menu-bar item is not built yet; `vmux status` shows the same lines, \
         `vmux refresh` and `vmux cert request` do what its actions do"
            .into(),
    )
}
