//! The line-based front end: works on any terminal and from scripts.
//!
//! Every sheet reads one line: `a` accepts/approves, `d` rejects/denies;
//! anything else asks again. Between sheets, `p` opens a pairing window.
//!
//! Input belongs to the prompt on screen. A line counts for a prompt only
//! if its first key was typed after the prompt appeared: typeahead, a late
//! answer to a withdrawn sheet, and the rest of a passphrase whose prompt
//! was withdrawn mid-typing are all dropped, so keystrokes meant for one
//! request can never answer the next. That needs to know when a line was
//! begun, which a terminal in canonical mode never tells, so on a terminal
//! the line is edited here (non-canonical mode, the terminal's echo off for
//! the whole run): the kernel's queue is flushed when a prompt appears, and
//! only the typing of a line begun for a sheet is echoed, never a secret.
//! End of input denies what is shown and stops the UI: a closed terminal can
//! never approve.

use std::collections::VecDeque;
use std::io::Read;
use std::time::Instant;

use rustix::termios::{self, LocalModes, OptionalActions, QueueSelector, SpecialCodeIndex};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use vmux_proto::text::escape;
use zeroize::Zeroizing;

use crate::approval::{Command, Decision, PairingWindow, Sheet};
use crate::ui::settle::settle;
use crate::ui::{fit, text};

/// Longest line kept, in bytes: a secret, an answer or a command never
/// needs more, and a stuck key must not grow memory without end.
const MAX_LINE: usize = 1024;

/// A line of input and when its first byte arrived.
#[derive(Debug)]
struct Line {
    begun: Instant,
    text: Zeroizing<String>,
}

/// What the input did.
#[derive(Debug)]
enum Event {
    /// Bytes to echo for the line being typed.
    Echo(String),
    /// A line was finished.
    Line(Line),
    /// End of input.
    End,
}

/// Where answers come from.
#[derive(Debug)]
pub struct Input {
    chunks: mpsc::UnboundedReceiver<(Instant, Zeroizing<Vec<u8>>)>,
    /// The terminal's settings before we changed them, restored on drop.
    saved: Option<termios::Termios>,
    /// The line being typed, and when its first byte came.
    typing: Zeroizing<Vec<u8>>,
    begun: Option<Instant>,
    /// The last byte was a carriage return (so a `\n` after it is not a
    /// second, empty line).
    after_cr: bool,
    finished: VecDeque<Line>,
    ended: bool,
    /// Before any chunk could be stamped.
    created: Instant,
    /// The screen's size when it is not stdout's terminal (tests).
    fixed_size: Option<(u16, u16)>,
}

impl Input {
    /// Standard input; on a terminal, edited here with the terminal's echo
    /// off (see the module notes).
    pub fn stdin() -> Self {
        let stdin = std::io::stdin();
        let saved = termios::isatty(&stdin)
            .then(|| termios::tcgetattr(&stdin).ok())
            .flatten();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            raw.local_modes
                .remove(LocalModes::ICANON | LocalModes::ECHO);
            raw.special_codes[SpecialCodeIndex::VMIN] = 1;
            raw.special_codes[SpecialCodeIndex::VTIME] = 0;
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &raw);
        }
        Self::spawn(stdin, saved)
    }

    /// Any byte stream (tests, scripts).
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Self::spawn(reader, None)
    }

    fn spawn(mut reader: impl Read + Send + 'static, saved: Option<termios::Termios>) -> Self {
        let created = Instant::now();
        let (tx, chunks) = mpsc::unbounded_channel();
        // A plain thread: blocking reads never tie up the async runtime, and
        // each chunk is stamped with when it arrived.
        std::thread::spawn(move || {
            let mut buf = Zeroizing::new([0u8; 256]);
            loop {
                match reader.read(buf.as_mut()) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let chunk = Zeroizing::new(buf.get(..n).unwrap_or_default().to_vec());
                        if tx.send((Instant::now(), chunk)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            chunks,
            saved,
            typing: Zeroizing::new(Vec::with_capacity(MAX_LINE)),
            begun: None,
            after_cr: false,
            finished: VecDeque::new(),
            ended: false,
            created,
            fixed_size: None,
        }
    }

    /// The same, with answers read from a screen `width`×`height` (tests).
    pub fn with_size(mut self, width: u16, height: u16) -> Self {
        self.fixed_size = Some((width, height));
        self
    }

    /// The screen's size, when known: stdout's terminal when answers come
    /// from a terminal.
    fn size(&self) -> Option<(u16, u16)> {
        if self.fixed_size.is_some() {
            return self.fixed_size;
        }
        if !self.tty() || !termios::isatty(std::io::stdout()) {
            return None;
        }
        let ws = termios::tcgetwinsize(std::io::stdout()).ok()?;
        (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
    }

    fn tty(&self) -> bool {
        self.saved.is_some()
    }

    /// Forgets what the terminal holds but has not delivered: typed before
    /// the prompt about to appear. Call before stamping the prompt.
    fn flush(&self) {
        if self.tty() {
            let _ = termios::tcflush(std::io::stdin(), QueueSelector::IFlush);
        }
    }

    /// The next event. The typing of a line begun at or after `echo_from`
    /// is echoed (on a terminal); `None` echoes nothing (a secret).
    async fn next(&mut self, echo_from: Option<Instant>) -> Event {
        loop {
            if let Some(line) = self.finished.pop_front() {
                return Event::Line(line);
            }
            if self.ended {
                return Event::End;
            }
            let Some((at, bytes)) = self.chunks.recv().await else {
                // A last line without its newline still counts (scripts).
                if !self.typing.is_empty() {
                    self.finish_line();
                }
                self.ended = true;
                continue;
            };
            let echo = self.take(at, &bytes, echo_from);
            if !echo.is_empty() {
                return Event::Echo(echo);
            }
        }
    }

    /// Edits the line with `bytes` that arrived `at`; returns what to echo.
    fn take(&mut self, at: Instant, bytes: &[u8], echo_from: Option<Instant>) -> String {
        let mut echo = String::new();
        for &b in bytes {
            let echoing =
                self.tty() && echo_from.is_some_and(|from| self.begun.unwrap_or(at) >= from);
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    if echoing {
                        echo.push('\n');
                    }
                    self.finish_line();
                }
                // Backspace: one character, however many bytes.
                0x7f | 0x08 => {
                    while let Some(last) = self.typing.pop() {
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                    if echoing {
                        echo.push_str("\x08 \x08");
                    }
                    if self.typing.is_empty() {
                        self.begun = None;
                    }
                }
                // Ctrl-U: the whole line.
                0x15 => {
                    self.typing.clear();
                    self.begun = None;
                    if echoing {
                        echo.push_str("\r\x1b[K");
                    }
                }
                // Ctrl-D on an empty line: end of input, as a terminal has it.
                0x04 if self.tty() && self.typing.is_empty() => {
                    self.ended = true;
                    return echo;
                }
                // Other control bytes (escape sequences of arrow keys…) are
                // not part of any answer.
                0..=0x1f => {}
                b => {
                    if self.typing.len() < MAX_LINE {
                        self.begun.get_or_insert(at);
                        self.typing.push(b);
                        if echoing && b.is_ascii() {
                            echo.push(char::from(b));
                        }
                    }
                }
            }
        }
        echo
    }

    fn finish_line(&mut self) {
        let text = Zeroizing::new(String::from_utf8_lossy(&self.typing).into_owned());
        self.typing.clear();
        let begun = self.begun.take().unwrap_or_else(Instant::now);
        self.finished.push_back(Line { begun, text });
    }

    /// The next line begun at or after `since`; `None` at end of input.
    /// Lines begun earlier are dropped, and `stale` is told.
    async fn line_since<W: AsyncWrite + Unpin>(
        &mut self,
        since: Instant,
        secret: bool,
        out: &mut W,
        stale: &str,
    ) -> std::io::Result<Option<Zeroizing<String>>> {
        let echo_from = (!secret).then_some(since);
        loop {
            match self.next(echo_from).await {
                Event::Echo(echo) => write(out, &echo).await?,
                Event::Line(line) if line.begun >= since => return Ok(Some(line.text)),
                Event::Line(_) => write(out, stale).await?,
                Event::End => return Ok(None),
            }
        }
    }
}

impl Drop for Input {
    /// Never leave the person's terminal silent, however the UI ends.
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Runs the front end until the command queue or the input closes.
pub async fn run<W>(
    mut commands: mpsc::UnboundedReceiver<Command>,
    window: PairingWindow,
    mut input: Input,
    mut out: W,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut waiting = 0usize;
    // What came while a withdrawal settled goes first, in order.
    let mut stash = VecDeque::new();
    write(&mut out, "Type p and Enter to let a new device pair.\n").await?;
    // Between sheets, only lines begun after the last one count (before
    // the first, any: typeahead of `p` harms no one).
    let mut idle_since = input.created;
    loop {
        let command = tokio::select! {
            command = next(&mut stash, &mut commands) => command,
            // Between sheets a line is a command; input that ended is
            // noticed when a sheet needs it.
            // Nothing is echoed: what is typed here may be the rest of a
            // withdrawn prompt's passphrase.
            event = input.next(None), if !input.ended => {
                match event {
                    Event::Echo(_) => {}
                    Event::Line(line) if line.begun < idle_since => {}
                    Event::Line(line) => match line.text.trim() {
                        "p" | "P" => window.open(),
                        "" => {}
                        _ => write(&mut out, "Nothing to answer now; type p to let a new device pair.\n").await?,
                    },
                    Event::End => {}
                }
                continue;
            }
        };
        let Some(command) = command else {
            return Ok(());
        };
        match command {
            Command::Waiting(n) => waiting = n,
            Command::Banner(line) => write(&mut out, &format!("{}\n", escape(&line))).await?,
            Command::Guide(guide) => write(&mut out, &guide.text()).await?,
            Command::Sheet {
                sheet,
                expires,
                reply,
            } => {
                let asked = ask(
                    &mut input,
                    &mut out,
                    &mut commands,
                    &mut waiting,
                    &sheet,
                    expires,
                    reply,
                );
                match asked.await? {
                    Flow::Quit => return Ok(()),
                    Flow::Go(more) => stash.extend(more),
                }
                idle_since = Instant::now();
            }
            Command::Secret { prompt, reply } => {
                match secret(&mut input, &mut out, &mut commands, &prompt, reply).await? {
                    Flow::Quit => return Ok(()),
                    Flow::Go(more) => stash.extend(more),
                }
                idle_since = Instant::now();
            }
        }
    }
}

/// Reads a passphrase or PIN, never echoed; a withdrawal drops `reply`.
async fn secret<W: AsyncWrite + Unpin>(
    input: &mut Input,
    out: &mut W,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    prompt: &str,
    mut reply: oneshot::Sender<Zeroizing<String>>,
) -> std::io::Result<Flow> {
    input.flush();
    let shown = Instant::now();
    let prompt = format!("{}: ", escape(prompt));
    write(out, &prompt).await?;
    let stale = format!("\n(Ignored typing begun before this prompt appeared.)\n{prompt}");
    let secret = tokio::select! {
        line = input.line_since(shown, true, out, &stale) => line?,
        () = reply.closed() => None,
    };
    write(out, "\n").await?;
    match secret {
        Some(s) => {
            let _ = reply.send(s);
            Ok(Flow::Go(VecDeque::new()))
        }
        None if reply.is_closed() => {
            let (line, more) = settle(commands, WITHDRAWN.to_owned()).await;
            write(out, &format!("{}\n", escape(&line))).await?;
            Ok(Flow::Go(more))
        }
        None => Ok(Flow::Quit),
    }
}

/// Shown when a request goes away while its sheet or prompt is up.
const WITHDRAWN: &str =
    "Withdrawn before an answer (it expired, the device left, or another request came first).";
/// Shown when a line begun before the sheet appeared is dropped.
const STALE_ANSWER: &str = "\n(Ignored a line begun before this sheet appeared.)\nType a or d: ";

async fn write<W: AsyncWrite + Unpin>(out: &mut W, s: &str) -> std::io::Result<()> {
    out.write_all(s.as_bytes()).await?;
    out.flush().await
}

#[derive(Debug)]
enum Flow {
    /// Answered or withdrawn; with the commands that came meanwhile.
    Go(VecDeque<Command>),
    Quit,
}

/// The next command: a stashed one first, else the queue's.
async fn next(
    stash: &mut VecDeque<Command>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Option<Command> {
    match stash.pop_front() {
        Some(command) => Some(command),
        None => commands.recv().await,
    }
}

/// Shows `sheet` until it is answered or withdrawn. On a terminal of known
/// size the sheet is printed only when all of it fits on screen at once;
/// until then the too-small notice is, and no line answers it.
#[allow(clippy::too_many_arguments)]
async fn ask<W: AsyncWrite + Unpin>(
    input: &mut Input,
    out: &mut W,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    waiting: &mut usize,
    sheet: &Sheet,
    expires: Option<Instant>,
    mut reply: oneshot::Sender<Decision>,
) -> std::io::Result<Flow> {
    input.flush();
    let mut shown = None;
    let mut said = None;
    let mut reminders = REMINDERS.to_vec();
    let mut resize = tokio::time::interval(RESIZE_POLL);
    let decision = loop {
        if shown.is_none() {
            shown =
                show_if_it_fits(input, out, &render(sheet, *waiting, expires), &mut said).await?;
        }
        let since = shown.unwrap_or_else(Instant::now);
        let reminder = next_reminder(expires, &mut reminders);
        tokio::select! {
            // Withdrawal first: the pipeline's line about it comes after,
            // and is then the one line said ([`settle`]).
            biased;
            () = reply.closed() => break None,
            // While it is not shown whole, lines answer nothing (nor echo).
            line = input.line_since(since, shown.is_none(), out, if shown.is_some() { STALE_ANSWER } else { "" }) => match (line?, shown) {
                (None, _) => {
                    let _ = reply.send(Decision::Deny);
                    return Ok(Flow::Quit);
                }
                (Some(_), None) => write(out, NOT_SHOWN).await?,
                (Some(line), Some(_)) => match line.trim() {
                    "a" | "A" => break Some(Decision::Approve),
                    "d" | "D" => break Some(Decision::Deny),
                    _ => write(out, &format!("Type a to {} or d to {}: ", text::yes(sheet), text::no(sheet))).await?,
                },
            },
            _ = resize.tick(), if shown.is_none() => {}
            () = sleep_until(reminder.map(|(at, _)| at)), if shown.is_some() => {
                if let Some((_, left)) = reminder {
                    write(out, &format!("\n({}; a or d) > ", text::countdown(left))).await?;
                }
            }
            next = commands.recv() => match next {
                Some(Command::Waiting(n)) => {
                    if n > *waiting && shown.is_some() {
                        write(out, &format!("\n({n} more waiting)\n> ")).await?;
                    }
                    *waiting = n;
                }
                Some(Command::Banner(line)) => write(out, &format!("\n{}\n> ", escape(&line))).await?,
                // Only the turn's holder sends sheets and secrets,
                // and it is waiting on this one.
                Some(_) => {}
                None => return Ok(Flow::Quit),
            },
        }
    };
    match decision {
        Some(d) => {
            let _ = reply.send(d);
            Ok(Flow::Go(VecDeque::new()))
        }
        None => {
            let own = format!(
                "{WITHDRAWN_SHEET}: {}; nothing was signed.",
                text::summary(sheet)
            );
            let (line, more) = settle(commands, own).await;
            write(out, &format!("\n{}\n", escape(&line))).await?;
            Ok(Flow::Go(more))
        }
    }
}

/// Prints `text` (a sheet) when all of it fits the screen, and returns
/// when; else says it is too small (once per size) and returns `None`.
async fn show_if_it_fits<W: AsyncWrite + Unpin>(
    input: &mut Input,
    out: &mut W,
    text: &str,
    said: &mut Option<(u16, u16)>,
) -> std::io::Result<Option<Instant>> {
    if let Some((w, h)) = input.size()
        && rows(text, w) >= usize::from(h)
    {
        if *said != Some((w, h)) {
            write(out, &format!("\n{TOO_SMALL}\n")).await?;
            *said = Some((w, h));
        }
        return Ok(None);
    }
    input.flush();
    // Stamped before writing: the write completes on another thread, and
    // a quick answer can arrive before we resume.
    let shown = Instant::now();
    write(out, text).await?;
    Ok(Some(shown))
}

/// Seconds left at which a sheet on screen says how long it has.
const REMINDERS: [u64; 2] = [30, 10];

/// How often a sheet too big for the terminal looks whether it fits now.
const RESIZE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Where a sheet goes when the terminal is too small for it.
const TOO_SMALL: &str = "terminal too small for this request: enlarge it; it is shown once \
    all of it fits, and waits until then (or until it expires)";

/// A line typed while the sheet is not on screen whole.
const NOT_SHOWN: &str =
    "(Nothing answered: the request is not on screen whole. Enlarge the terminal.)\n";

/// Shown when a request goes away while its sheet is up.
const WITHDRAWN_SHEET: &str = "Withdrawn before an answer";

/// The next reminder still ahead (`when`, time left then), dropping those
/// already past.
fn next_reminder(
    expires: Option<Instant>,
    reminders: &mut Vec<u64>,
) -> Option<(Instant, std::time::Duration)> {
    let expires = expires?;
    let now = Instant::now();
    while let Some(&secs) = reminders.first() {
        let left = std::time::Duration::from_secs(secs);
        match expires.checked_sub(left) {
            Some(at) if at > now => return Some((at, left)),
            _ => {
                reminders.remove(0);
            }
        }
    }
    None
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Terminal rows `text` takes on a screen `width` wide.
fn rows(text: &str, width: u16) -> usize {
    text.split('\n')
        .map(|line| fit::terminal_rows(line, usize::from(width)))
        .sum()
}

/// The sheet as printed: one line per field, whatever its length (the
/// terminal wraps it, and [`rows`] counts those rows; a script reads it
/// whole).
fn render(sheet: &Sheet, waiting: usize, expires: Option<Instant>) -> String {
    let mut s = format!("\n=== {} ===\n", text::title(sheet));
    for (label, value) in text::fields(sheet) {
        s.push_str(&format!("{label:<12} {value}\n"));
    }
    if let Some(note) = text::note(sheet) {
        s.push_str(&format!("{note}\n"));
    }
    if let Some(expires) = expires {
        let left = expires.saturating_duration_since(Instant::now());
        s.push_str(&format!("{}\n", text::countdown(left)));
    }
    if waiting > 0 {
        s.push_str(&format!("({waiting} more waiting)\n"));
    }
    s.push_str(&format!(
        "[a] {}  [d] {} > ",
        text::yes(sheet),
        text::no(sheet)
    ));
    s
}
