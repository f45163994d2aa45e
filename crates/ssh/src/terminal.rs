//! The local terminal and user: raw mode while a remote shell owns the
//! terminal, its size, and who we are.

use std::io;

use rustix::termios::{OptionalActions, Termios, isatty, tcgetattr, tcgetwinsize, tcsetattr};

/// Raw mode on standard input until dropped. Dropping restores the mode we
/// found, so every way out of the session (end, error, signal we handle,
/// panic unwinding) gives the person their terminal back.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Enters raw mode; `None` when standard input is not a terminal.
    pub fn enter() -> io::Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !isatty(&stdin) {
            return Ok(None);
        }
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Drain: let what we wrote reach the screen before the mode changes.
        let _ = tcsetattr(io::stdin(), OptionalActions::Drain, &self.saved);
    }
}

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    isatty(io::stdin())
}

/// Columns, rows, width and height in pixels of the terminal on standard
/// output (else standard input); a classic 80×24 when neither is one.
pub fn size() -> (u32, u32, u32, u32) {
    let ws = tcgetwinsize(io::stdout()).or_else(|_| tcgetwinsize(io::stdin()));
    match ws {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (
            u32::from(w.ws_col),
            u32::from(w.ws_row),
            u32::from(w.ws_xpixel),
            u32::from(w.ws_ypixel),
        ),
        _ => (80, 24, 0, 0),
    }
}

/// The local login name, for `host` without `user@`: `$USER`, `$LOGNAME`,
/// else our uid's entry in /etc/passwd (containers and cron often set
/// neither variable).
pub fn local_user() -> Option<String> {
    let from_env = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty());
    from_env.or_else(|| {
        let uid = rustix::process::getuid().as_raw().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
    })
}
