//! The native-dialog front end: each sheet is a pinentry CONFIRM and each
//! passphrase or PIN a GETPIN, in the person's own pinentry
//! (`$PINENTRY_PROGRAM`, else `pinentry` on `PATH`), so GNOME, KDE, macOS
//! (pinentry-mac) and the console each get their native dialog.
//!
//! One dialog at a time, in the order the requests took their turn (the
//! approval queue is first in, first out). When a request expires or its
//! device leaves, its dialog is closed by ending that pinentry. Status lines
//! go to `out`, one per line.
//!
//! Approve is pinentry's OK button and Deny its Cancel, so Escape, closing
//! the window, a pinentry timeout and a pinentry that fails all deny. The
//! Assuan protocol cannot choose which button is the default (most
//! pinentries focus OK); putting Deny on OK would need Approve on the third
//! button, which pinentry-gnome3 does not have, leaving GNOME users no way
//! to approve. What guards against a stray Enter instead: a signature
//! still needs the passphrase or PIN in a second dialog.
//!
//! Every value a peer supplied is escaped ([`vmux_proto::text::escape`])
//! before it goes into a dialog, and everything we send is Assuan-escaped.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use vmux_proto::text::escape;
use zeroize::Zeroizing;

use crate::approval::{Command, Decision, Sheet};
use crate::ui::settle::settle;
use crate::ui::{fit, text};

mod assuan;

use assuan::{Pinentry, Reply};

/// The environment variable naming the person's pinentry.
pub const PROGRAM_ENV: &str = "PINENTRY_PROGRAM";

/// Shown when a request goes away while its dialog is up.
const WITHDRAWN: &str =
    "Withdrawn before an answer (it expired or the device left); its dialog was closed";

/// The person's pinentry: `$PINENTRY_PROGRAM` (a path, or a name looked
/// up on `PATH`), else `pinentry` on `PATH`.
pub fn program() -> io::Result<PathBuf> {
    let (name, from_env) = match std::env::var_os(PROGRAM_ENV) {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (PathBuf::from("pinentry"), false),
    };
    let found = if name.components().count() > 1 {
        name.is_file().then(|| name.clone())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&name))
                .find(|p| p.is_file())
        })
    };
    found.ok_or_else(|| {
        let what = if from_env {
            format!("{PROGRAM_ENV} names {}, which is not there", name.display())
        } else {
            "no `pinentry` on PATH".to_owned()
        };
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "--ui pinentry needs a pinentry: {what}. Install one (pinentry-gnome3, \
                 pinentry-qt, pinentry-curses; pinentry-mac on macOS) or set {PROGRAM_ENV} \
                 to its path"
            ),
        )
    })
}

/// Where console pinentries (curses, tty) draw: `$GPG_TTY` as for
/// gpg-agent, else our own terminal. Graphical ones ignore it.
fn terminal() -> Option<String> {
    if let Some(tty) = std::env::var_os("GPG_TTY") {
        return tty.into_string().ok();
    }
    if !rustix::termios::isatty(io::stdin()) {
        return None;
    }
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .and_then(|p| p.into_os_string().into_string().ok())
}

/// Runs the front end until the command queue closes.
pub async fn run<W>(
    mut commands: mpsc::UnboundedReceiver<Command>,
    program: PathBuf,
    mut out: W,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut front = Front {
        program,
        tty: terminal(),
        commands: &mut commands,
        out: &mut out,
        waiting: 0,
        stash: VecDeque::new(),
    };
    // A status line said after a secret was asked in this turn (a wrong
    // PIN) is shown as the error of the next prompt.
    let mut asked_secret = false;
    let mut failure: Option<String> = None;
    loop {
        // What came while a withdrawal settled goes first, in order.
        let command = match front.stash.pop_front() {
            Some(command) => command,
            None => match front.commands.recv().await {
                Some(command) => command,
                None => return Ok(()),
            },
        };
        let flow = match command {
            Command::Waiting(n) => {
                front.waiting = n;
                Flow::Go
            }
            Command::Banner(line) => {
                say(front.out, &escape(&line)).await?;
                if asked_secret {
                    failure = Some(line);
                }
                Flow::Go
            }
            Command::Guide(guide) => {
                say(front.out, guide.text().trim_end()).await?;
                Flow::Go
            }
            Command::Sheet {
                sheet,
                expires,
                reply,
            } => {
                (asked_secret, failure) = (false, None);
                front.confirm(&sheet, expires, reply).await?
            }
            Command::Secret { prompt, reply } => {
                let error = failure.take();
                asked_secret = true;
                front.secret(&prompt, error.as_deref(), reply).await?
            }
        };
        if flow == Flow::Stopped {
            return Ok(());
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    /// The command queue closed (the signer is stopping).
    Stopped,
}

/// What the dialogs work with.
struct Front<'a, W> {
    program: PathBuf,
    tty: Option<String>,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
    out: &'a mut W,
    waiting: usize,
    /// What came while a withdrawal settled, handled next.
    stash: VecDeque<Command>,
}

impl<W: AsyncWrite + Unpin> Front<'_, W> {
    /// One sheet as a CONFIRM dialog, until answered or withdrawn.
    async fn confirm(
        &mut self,
        sheet: &Sheet,
        expires: Option<Instant>,
        mut reply: oneshot::Sender<Decision>,
    ) -> io::Result<Flow> {
        let dialog = Dialog::Confirm(sheet, self.waiting, expires);
        match self.show(dialog, &mut reply).await? {
            Shown::Answered(Reply::Ok(_)) => {
                let _ = reply.send(Decision::Approve);
            }
            Shown::Answered(Reply::Declined) => {
                let _ = reply.send(Decision::Deny);
            }
            Shown::Failed(e) => {
                say(self.out, &format!("{e}; the request was denied")).await?;
                let _ = reply.send(Decision::Deny);
            }
            Shown::TooBig => {
                say(self.out, TOO_BIG).await?;
                // No answer from a dialog that could not show it all.
                let waited = unanswered(&mut reply, self.commands, self.out, &mut self.waiting);
                if matches!(waited.await?, Shown::Stopped) {
                    return Ok(Flow::Stopped);
                }
                self.withdrawn().await?;
            }
            Shown::Withdrawn => self.withdrawn().await?,
            Shown::Stopped => return Ok(Flow::Stopped),
        }
        Ok(Flow::Go)
    }

    /// A passphrase or PIN as a GETPIN dialog; Cancel drops `reply`.
    async fn secret(
        &mut self,
        prompt: &str,
        error: Option<&str>,
        mut reply: oneshot::Sender<Zeroizing<String>>,
    ) -> io::Result<Flow> {
        match self.show(Dialog::Secret(prompt, error), &mut reply).await? {
            Shown::Answered(Reply::Ok(secret)) => {
                let _ = reply.send(secret);
            }
            // Dropping the reply unanswered cancels, as Escape does on the TUI.
            Shown::Answered(Reply::Declined) | Shown::TooBig => {}
            Shown::Failed(e) => say(self.out, &e.to_string()).await?,
            Shown::Withdrawn => self.withdrawn().await?,
            Shown::Stopped => return Ok(Flow::Stopped),
        }
        Ok(Flow::Go)
    }

    async fn show<T>(
        &mut self,
        dialog: Dialog<'_>,
        reply: &mut oneshot::Sender<T>,
    ) -> io::Result<Shown> {
        show(
            &self.program,
            self.tty.as_deref(),
            dialog,
            reply,
            self.commands,
            self.out,
            &mut self.waiting,
        )
        .await
    }

    /// After a withdrawal, one line: the pipeline's, else ours.
    async fn withdrawn(&mut self) -> io::Result<()> {
        let (line, stash) = settle(self.commands, WITHDRAWN.to_owned()).await;
        say(self.out, &escape(&line)).await?;
        self.stash.extend(stash);
        Ok(())
    }
}

/// What a dialog asks.
#[derive(Clone, Copy)]
enum Dialog<'a> {
    /// The sheet, with how many requests wait behind it, and when it
    /// runs out.
    Confirm(&'a Sheet, usize, Option<Instant>),
    /// A passphrase or PIN, with the last failure if any.
    Secret(&'a str, Option<&'a str>),
}

/// How a dialog ended.
#[derive(Debug)]
enum Shown {
    Answered(Reply),
    /// The sheet was too long to show whole: a notice was shown instead.
    TooBig,
    Failed(io::Error),
    /// The request went away; the dialog was closed.
    Withdrawn,
    /// The command queue closed (the signer is stopping).
    Stopped,
}

/// Shows `dialog` until it is answered, its request is withdrawn (`reply`
/// closed) or the queue closes; status lines keep flowing meanwhile.
async fn show<T, W: AsyncWrite + Unpin>(
    program: &Path,
    tty: Option<&str>,
    dialog: Dialog<'_>,
    reply: &mut oneshot::Sender<T>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    out: &mut W,
    waiting: &mut usize,
) -> io::Result<Shown> {
    // The dialog's pinentry lives in this future: dropping it (withdrawn,
    // stopping) kills the process and so closes the dialog.
    let asked = ask(program, tty, dialog);
    tokio::pin!(asked);
    loop {
        tokio::select! {
            biased;
            () = reply.closed() => return Ok(Shown::Withdrawn),
            answer = &mut asked => return Ok(match answer {
                Ok(Some(reply)) => Shown::Answered(reply),
                Ok(None) => Shown::TooBig,
                Err(e) => Shown::Failed(e),
            }),
            next = commands.recv() => match next {
                Some(Command::Waiting(n)) => *waiting = n,
                Some(Command::Banner(line)) => say(out, &escape(&line)).await?,
                Some(Command::Guide(guide)) => say(out, guide.text().trim_end()).await?,
                // Only the turn's holder sends sheets and secrets, and it is
                // waiting on this one.
                Some(_) => {}
                None => return Ok(Shown::Stopped),
            },
        }
    }
}

/// Runs one pinentry for `dialog`; `None` when the sheet was too long to
/// show whole, and a notice was shown instead.
async fn ask(program: &Path, tty: Option<&str>, dialog: Dialog<'_>) -> io::Result<Option<Reply>> {
    let mut pinentry = Pinentry::start(program).await?;
    if let Some(tty) = tty {
        expect_ok(pinentry.send("OPTION", &format!("ttyname={tty}")).await?)?;
        if let Ok(term) = std::env::var("TERM") {
            expect_ok(pinentry.send("OPTION", &format!("ttytype={term}")).await?)?;
        }
    }
    let answer = match dialog {
        Dialog::Confirm(sheet, waiting, expires) => {
            expect_ok(pinentry.send("SETTITLE", text::title(sheet)).await?)?;
            let Some(desc) = description(sheet, waiting, expires, room(tty)) else {
                expect_ok(pinentry.send("SETDESC", TOO_BIG).await?)?;
                pinentry.send("MESSAGE", "").await?;
                pinentry.close().await;
                return Ok(None);
            };
            expect_ok(pinentry.send("SETDESC", &desc).await?)?;
            expect_ok(pinentry.send("SETOK", &label(text::yes(sheet))).await?)?;
            expect_ok(pinentry.send("SETCANCEL", &label(text::no(sheet))).await?)?;
            pinentry.send("CONFIRM", "").await?
        }
        Dialog::Secret(prompt, error) => {
            expect_ok(pinentry.send("SETTITLE", "User verification").await?)?;
            expect_ok(
                pinentry
                    .send("SETDESC", "Approved. Type it to sign; Cancel refuses.")
                    .await?,
            )?;
            expect_ok(pinentry.send("SETPROMPT", &escape(prompt)).await?)?;
            if let Some(error) = error {
                expect_ok(pinentry.send("SETERROR", &escape(error)).await?)?;
            }
            pinentry.send("GETPIN", "").await?
        }
    };
    pinentry.close().await;
    Ok(Some(answer))
}

/// Waits, answering nothing, until `reply` is withdrawn or the queue
/// closes; status lines keep flowing meanwhile.
async fn unanswered<T, W: AsyncWrite + Unpin>(
    reply: &mut oneshot::Sender<T>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    out: &mut W,
    waiting: &mut usize,
) -> io::Result<Shown> {
    loop {
        tokio::select! {
            biased;
            () = reply.closed() => return Ok(Shown::Withdrawn),
            next = commands.recv() => match next {
                Some(Command::Waiting(n)) => *waiting = n,
                Some(Command::Banner(line)) => say(out, &escape(&line)).await?,
                Some(_) => {}
                None => return Ok(Shown::Stopped),
            },
        }
    }
}

/// Columns and rows a dialog's description may take: a console
/// pinentry's terminal less the dialog's frame and buttons, and never more
/// than what graphical dialogs show without scrolling.
fn room(tty: Option<&str>) -> (usize, usize) {
    let size = tty.and_then(|tty| {
        let fd = rustix::fs::open(
            tty,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        rustix::termios::tcgetwinsize(&fd).ok()
    });
    match size {
        Some(ws) if ws.ws_col > 0 && ws.ws_row > 0 => (
            DESC_COLS.min(usize::from(ws.ws_col).saturating_sub(DIALOG_FRAME)),
            DESC_ROWS.min(usize::from(ws.ws_row).saturating_sub(DIALOG_FRAME)),
        ),
        _ => (DESC_COLS, DESC_ROWS),
    }
}

/// The widest and tallest description a dialog gets.
const DESC_COLS: usize = 72;
const DESC_ROWS: usize = 30;
/// A console dialog's borders, spacing and buttons, each way.
const DIALOG_FRAME: usize = 8;

/// Said (and put in the dialog) for a sheet too long to show whole.
const TOO_BIG: &str = "This request is too long to show whole in a dialog here, so it cannot \
    be answered here: it waits unanswered until it expires. Enlarge the terminal of a console \
    pinentry, or run the signer with --ui tui or --ui plain on a larger terminal.";

fn expect_ok(reply: Reply) -> io::Result<()> {
    match reply {
        Reply::Ok(_) => Ok(()),
        Reply::Declined => Err(io::Error::other("the pinentry refused a setting")),
    }
}

/// The sheet's fields, one per line as on the TUI, then its note, each
/// wrapped (never cut) to `room`'s columns; `None` when that takes more
/// than its rows: a dialog would cut it.
fn description(
    sheet: &Sheet,
    waiting: usize,
    expires: Option<Instant>,
    room: (usize, usize),
) -> Option<String> {
    let (width, height) = room;
    let mut lines: Vec<String> = Vec::new();
    // Already escaped by `text::fields`.
    for (label, value) in text::fields(sheet) {
        lines.extend(fit::wrap(&format!("{label}: {value}"), width, width));
    }
    lines.push(String::new());
    if let Some(note) = text::note(sheet) {
        lines.extend(fit::wrap(note, width, width));
    }
    if let Some(expires) = expires {
        let left = expires.saturating_duration_since(Instant::now());
        lines.push(format!(
            "{} (the dialog closes then)",
            text::countdown(left)
        ));
    }
    if waiting > 0 {
        lines.push(format!("({waiting} more waiting)"));
    }
    (lines.len() <= height).then(|| lines.join("\n"))
}

/// `approve` → `_Approve` (an underscore marks the keyboard accelerator).
fn label(word: &str) -> String {
    let mut chars = word.chars();
    let first: String = chars
        .next()
        .into_iter()
        .flat_map(char::to_uppercase)
        .collect();
    format!("_{first}{}", chars.as_str())
}

async fn say<W: AsyncWrite + Unpin>(out: &mut W, line: &str) -> io::Result<()> {
    out.write_all(format!("{line}\n").as_bytes()).await?;
    out.flush().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::approval::Destination;
    use crate::hostkeys::HostKeys;
    use crate::reading::{Forwarded, Host, Purpose, Reading};

    #[test]
    fn description_escapes_what_peers_sent() {
        let sheet = Sheet::Sign {
            device: "lap\u{202e}top".into(),
            claimed: None,
            destination: Box::new(Destination::describe(
                &Reading {
                    purpose: Purpose::Login { user: "me".into() },
                    host: Host::ByRequester {
                        key: ssh_key::PublicKey::from_openssh("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH").unwrap().to_bytes().unwrap(),
                        name: Some("evil%0Ahost".into()),
                    },
                    through: Vec::new(),
                    forwarded: Forwarded::No,
                },
                &HostKeys::default(),
                "lap\u{202e}top",
            )),
            key: "work".into(),
        };
        let desc = description(&sheet, 2, None, (DESC_COLS, DESC_ROWS)).unwrap();
        assert!(desc.starts_with("From Device: lap\\u{202e}top\n"), "{desc}");
        assert!(desc.contains("Key: work"), "{desc}");
        assert!(desc.ends_with("(2 more waiting)"), "{desc}");
        // On the wire the newlines are escapes; the peer's %0A is not.
        let wire = assuan::escape(&desc);
        assert!(!wire.contains('\n'));
        assert!(wire.contains("evil%250Ahost"), "{wire}");
    }

    /// A dialog would cut what does not fit its room: such a sheet gets no
    /// description, only the notice.
    #[test]
    fn a_sheet_too_long_for_a_dialog_gets_no_description() {
        let sheet = crate::ui::fit::tests::longest();
        assert_eq!(description(&sheet, 0, None, (DESC_COLS, DESC_ROWS)), None);
        let usual = crate::ui::fit::tests::usual();
        let desc = description(&usual, 0, None, (DESC_COLS, DESC_ROWS)).unwrap();
        assert!(
            desc.lines().all(|l| crate::ui::fit::cols(l) <= DESC_COLS),
            "{desc}"
        );
        // The same on a console pinentry's small terminal: 40×12 less its frame.
        assert_eq!(description(&usual, 0, None, (32, 4)), None);
    }

    #[test]
    fn labels_mark_their_accelerator() {
        assert_eq!(label("approve"), "_Approve");
        assert_eq!(label("deny"), "_Deny");
    }
}
