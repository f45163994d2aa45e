//! The desktop's own tools for the two actions that leave vmux: the
//! clipboard and opening a file. Whichever the platform has; none found is
//! said in the log, with what the person can do instead.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Clipboard tools, first one that runs wins: `pbcopy` on macOS; on other
/// desktops Wayland's `wl-copy`, then X11's `xclip` and `xsel`.
#[cfg(target_os = "macos")]
const COPY: &[&[&str]] = &[&["pbcopy"]];
#[cfg(not(target_os = "macos"))]
const COPY: &[&[&str]] = &[
    &["wl-copy"],
    &["xclip", "-selection", "clipboard"],
    &["xsel", "--clipboard", "--input"],
];

/// What opens a file in the person's default application.
#[cfg(target_os = "macos")]
const OPEN: &str = "open";
#[cfg(not(target_os = "macos"))]
const OPEN: &str = "xdg-open";

/// Puts `text` on the clipboard.
pub fn copy(text: &str) {
    for tool in COPY {
        let Some((program, args)) = tool.split_first() else {
            continue;
        };
        match pipe_to(program, args, text) {
            Ok(()) => {
                tracing::info!("tray: copied to the clipboard with {program}: {text}");
                return;
            }
            Err(e) => tracing::debug!("tray: {program}: {e}"),
        }
    }
    let names: Vec<&str> = COPY.iter().filter_map(|t| t.first().copied()).collect();
    tracing::warn!(
        "tray: no clipboard tool worked (tried {}); install one, or put this in your shell profile: {text}",
        names.join(", ")
    );
}

/// Opens `path` in the person's default application; it is reaped off
/// the menu's path.
pub fn open(path: &Path) {
    match Command::new(OPEN)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            tracing::info!("tray: opening {} with {OPEN}", path.display());
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::warn!(
            "tray: cannot run {OPEN} ({e}); the log is {} (or run `vmux log`)",
            path.display()
        ),
    }
}

/// Runs `program args…` with `text` on its standard input; it must exit 0.
fn pipe_to(program: &str, args: &[&str], text: &str) -> std::io::Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes())?;
    }
    // wl-copy and xclip fork a process that keeps the selection; the one
    // started here exits once it has the text.
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("exited with {status}")))
    }
}
