//! The full-screen front end: one centered sheet at a time on the terminal.
//!
//! Same rules as [`super::plain`]: `a` approves/accepts, `d` denies/rejects;
//! Left/Right/Tab move the focus and Enter presses the focused button, which
//! starts on Deny so a stray Enter can never approve. Between sheets, `p`
//! opens a pairing window. Ctrl-C denies what is shown and stops the UI. The
//! terminal is restored on every exit, panics included.
//!
//! Keys typed before a sheet or prompt appeared are dropped, and it counts
//! keys only once the keyboard has been quiet for [`ARM_DELAY`] since it
//! appeared: every key before that is dropped and restarts the wait. So a
//! keystroke meant for one request never answers the next, even the rest of
//! a passphrase still being typed when its prompt was withdrawn. The idle
//! screen's `p` waits for the same quiet after a sheet or prompt ends.

use std::io::{self, Stdout, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, queue, style, terminal};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::approval::{Command, Decision, PairingWindow, Sheet};
use crate::ui::settle::settle;
use crate::ui::text;

mod view;

use view::{Button, Copy, Shown, View};

/// How long the keyboard must be quiet, after a sheet or prompt appears,
/// before keys count.
pub const ARM_DELAY: Duration = Duration::from_millis(300);

/// Shown when a request goes away while its sheet is up, unless its
/// pipeline says why ([`settle`]).
const WITHDRAWN: &str = "Withdrawn before an answer";

type Term = Terminal<CrosstermBackend<Stdout>>;

/// The terminal, and the lines to copy last written over its frame.
struct Display {
    term: Term,
    copies: Vec<Copy>,
}

impl Display {
    /// Draws a frame with `paint`, then writes its lines to copy as plain
    /// text. When those moved, the screen is cleared and drawn again
    /// first: the frame never knew of the old ones, so would leave them.
    fn frame<R>(&mut self, mut paint: impl FnMut(&mut Frame) -> (R, Vec<Copy>)) -> io::Result<R> {
        let mut drawn = None;
        self.term.draw(|f| drawn = Some(paint(f)))?;
        let Some((result, copies)) = drawn else {
            return Err(io::Error::other("the frame was not drawn"));
        };
        if copies != self.copies {
            self.repaint()?;
            self.term.draw(|f| {
                paint(f);
            })?;
        }
        let out = self.term.backend_mut();
        for (y, line) in &copies {
            // Escaped already (`Guide::rows`), and placed to fit: the
            // terminal wraps it, and never scrolls.
            queue!(out, cursor::MoveTo(0, *y), style::Print(line))?;
        }
        out.flush()?;
        self.copies = copies;
        Ok(result)
    }

    /// Clears the screen and forgets the last frame, so the next one is
    /// drawn whole and never mixes with the old screen. (`Terminal::clear`
    /// would ask the terminal for the cursor position, racing the key
    /// reader for the reply.)
    fn repaint(&mut self) -> io::Result<()> {
        self.copies.clear();
        let size = self.term.size()?;
        self.term.resize(size.into())
    }
}

/// Runs the front end until the command queue closes or the person presses
/// Ctrl-C. Stdout must be a terminal.
pub async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    window: PairingWindow,
) -> io::Result<()> {
    if !rustix::termios::isatty(io::stdout()) {
        return Err(io::Error::other(
            "the full-screen UI needs a terminal on stdout; use --ui plain",
        ));
    }
    let _screen = Screen::enter()?;
    let mut term = Display {
        term: Terminal::new(CrosstermBackend::new(io::stdout()))?,
        copies: Vec::new(),
    };
    term.repaint()?;
    let mut keys = Keys::spawn();
    let mut view = View::default();
    // Between sheets the same quiet rule: the rest of a passphrase typed on
    // after its prompt went away must not open a pairing window by a `p`.
    let mut idle_from = Instant::now();
    loop {
        term.frame(|f| ((), view.idle(f)))?;
        // What came while a withdrawal settled goes first, in order.
        let command = match view.stash.pop_front() {
            Some(command) => command,
            None => tokio::select! {
                command = commands.recv() => match command {
                    None => return Ok(()),
                    Some(command) => command,
                },
                event = keys.next() => {
                    match event {
                        None => return Ok(()),
                        Some((_, Err(e))) => return Err(e),
                        Some((_, Ok(Event::Key(k)))) if is_ctrl_c(&k) => return Ok(()),
                        Some((at, Ok(Event::Key(k)))) if k.kind == KeyEventKind::Press => {
                            if at < idle_from {
                                // Not quiet yet: this key is dropped and restarts the wait.
                                idle_from = idle_from.max(at + ARM_DELAY);
                            } else if matches!(k.code, KeyCode::Char('p' | 'P')) {
                                window.open();
                            }
                        }
                        // Anything else (resize, stray keys) just redraws.
                        Some(_) => {}
                    }
                    continue;
                }
            },
        };
        let mut ui = Ui {
            term: &mut term,
            view: &mut view,
            keys: &mut keys,
            commands: &mut commands,
        };
        let flow = match command {
            Command::Sheet {
                sheet,
                expires,
                reply,
            } => ui.ask(&sheet, expires, reply).await?,
            Command::Secret { prompt, reply } => ui.secret(&prompt, reply).await?,
            other => {
                let _ = while_prompting(ui.view, Some(other));
                continue;
            }
        };
        if flow == Flow::Quit {
            return Ok(());
        }
        idle_from = Instant::now() + ARM_DELAY;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Quit,
}

/// What a sheet or prompt works with while it is up.
struct Ui<'a> {
    term: &'a mut Display,
    view: &'a mut View,
    keys: &'a mut Keys,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
}

impl Ui<'_> {
    /// Shows one sheet until it is answered or withdrawn. Keys count only
    /// while the whole sheet is on screen, and only once the keyboard has
    /// been quiet since it came whole (after a resize too).
    async fn ask(
        &mut self,
        sheet: &Sheet,
        expires: Option<Instant>,
        mut reply: oneshot::Sender<Decision>,
    ) -> io::Result<Flow> {
        let mut armed_at = self.keys.fresh(self.term)?;
        let (mut armed, mut whole) = (false, false);
        let mut focus = Button::Deny;
        let decision = loop {
            let shown = Shown {
                sheet,
                focus,
                armed,
                status: self.status_line(expires),
            };
            let now_whole = self.term.frame(|f| self.view.sheet(f, &shown))?;
            if now_whole != whole {
                whole = now_whole;
                armed = false;
                armed_at = armed_at.max(Instant::now() + ARM_DELAY);
            }
            // Redrawn each second for the countdown.
            let tick = expires.map(|_| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                // Withdrawal first: when the queue closes too, the banner still shows.
                biased;
                () = reply.closed() => {
                    let own = format!("{WITHDRAWN}: {}; nothing was signed", text::summary(sheet));
                    self.withdrawn(own).await;
                    return Ok(Flow::Go);
                }
                () = tokio::time::sleep_until(armed_at.into()), if !armed && whole => armed = true,
                () = sleep_until(tick), if tick.is_some() => {}
                next = self.commands.recv() => if let Some(flow) = while_prompting(self.view, next) {
                    return Ok(flow);
                },
                event = self.keys.next() => match event {
                    None => {
                        let _ = reply.send(Decision::Deny);
                        return Ok(Flow::Quit);
                    }
                    Some((_, Err(e))) => {
                        let _ = reply.send(Decision::Deny);
                        return Err(e);
                    }
                    Some((at, Ok(Event::Key(k)))) => {
                        // Ctrl-C only ever denies, so it needs no arming.
                        if is_ctrl_c(&k) {
                            let _ = reply.send(Decision::Deny);
                            return Ok(Flow::Quit);
                        }
                        // Not all of the sheet on screen: no answer at all.
                        if !whole {
                            armed = false;
                        }
                        if !counts(&k, at, &mut armed, &mut armed_at) {
                            continue;
                        }
                        if let Some(decision) = answer(&k, &mut focus) {
                            break decision;
                        }
                    }
                    Some(_) => {}
                },
            }
        };
        let _ = reply.send(decision);
        Ok(Flow::Go)
    }

    /// After a withdrawal, one line: the pipeline's, else `own`.
    async fn withdrawn(&mut self, own: String) {
        let (line, stash) = settle(self.commands, own).await;
        self.view.banner(line);
        self.view.stash.extend(stash);
    }

    /// The countdown and the queue, under the sheet.
    fn status_line(&self, expires: Option<Instant>) -> String {
        let mut parts = Vec::new();
        if let Some(expires) = expires {
            parts.push(text::countdown(
                expires.saturating_duration_since(Instant::now()),
            ));
        }
        if self.view.waiting > 0 {
            parts.push(format!("{} more waiting", self.view.waiting));
        }
        parts.join(" · ")
    }

    /// Reads a passphrase or PIN; Esc (or withdrawal) drops `reply` unanswered.
    async fn secret(
        &mut self,
        prompt: &str,
        mut reply: oneshot::Sender<Zeroizing<String>>,
    ) -> io::Result<Flow> {
        let mut armed_at = self.keys.fresh(self.term)?;
        let mut armed = false;
        // Fixed room: growing a String would leave unzeroed copies behind.
        let mut input = Zeroizing::new(String::with_capacity(256));
        loop {
            let shown = input.chars().count();
            self.term
                .frame(|f| ((), self.view.secret(f, prompt, shown, armed)))?;
            tokio::select! {
                // Withdrawal first: when the queue closes too, the banner still shows.
                biased;
                () = reply.closed() => {
                    self.withdrawn(format!("{WITHDRAWN}: the prompt \"{prompt}\" went away")).await;
                    return Ok(Flow::Go);
                }
                () = tokio::time::sleep_until(armed_at.into()), if !armed => armed = true,
                next = self.commands.recv() => if let Some(flow) = while_prompting(self.view, next) {
                    return Ok(flow);
                },
                event = self.keys.next() => match event {
                    None => return Ok(Flow::Quit),
                    Some((_, Err(e))) => return Err(e),
                    Some((at, Ok(Event::Key(k)))) => {
                        if is_ctrl_c(&k) {
                            return Ok(Flow::Quit);
                        }
                        if !counts(&k, at, &mut armed, &mut armed_at) {
                            continue;
                        }
                        match k.code {
                            KeyCode::Enter => {
                                let _ = reply.send(input);
                                return Ok(Flow::Go);
                            }
                            KeyCode::Esc => {
                                self.view.banner(format!("Cancelled at \"{prompt}\": the request was refused"));
                                return Ok(Flow::Go);
                            }
                            KeyCode::Backspace => {
                                input.pop();
                            }
                            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => input.clear(),
                            // Never past the capacity: no reallocation, no stray copy.
                            KeyCode::Char(c) if typable(&k) && input.len() + c.len_utf8() <= input.capacity() => input.push(c),
                            _ => {}
                        }
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// What key `k` does to a sheet: an answer, or a move of `focus`.
fn answer(k: &KeyEvent, focus: &mut Button) -> Option<Decision> {
    match k.code {
        KeyCode::Char('a' | 'A') => return Some(Decision::Approve),
        KeyCode::Char('d' | 'D') => return Some(Decision::Deny),
        KeyCode::Left => *focus = Button::Approve,
        KeyCode::Right => *focus = Button::Deny,
        KeyCode::Tab | KeyCode::BackTab => {
            *focus = if *focus == Button::Deny {
                Button::Approve
            } else {
                Button::Deny
            };
        }
        KeyCode::Enter if *focus == Button::Approve => return Some(Decision::Approve),
        KeyCode::Enter => return Some(Decision::Deny),
        _ => {}
    }
    None
}

/// Sleeps until `at`; never, for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Whether key `k`, pressed `at`, answers the sheet or prompt on screen.
/// Until it is armed, a key does not, and restarts the quiet wait: typing
/// that runs on from before the sheet (the rest of a passphrase whose prompt
/// was withdrawn) never reaches it.
fn counts(k: &KeyEvent, at: Instant, armed: &mut bool, armed_at: &mut Instant) -> bool {
    if k.kind != KeyEventKind::Press {
        return false;
    }
    if *armed && at >= *armed_at {
        return true;
    }
    *armed = false;
    *armed_at = (*armed_at).max(at + ARM_DELAY);
    false
}

/// Applies a command that arrives while a sheet or prompt is up;
/// `Some(Quit)` once the queue has closed.
fn while_prompting(view: &mut View, next: Option<Command>) -> Option<Flow> {
    match next {
        Some(Command::Waiting(n)) => view.waiting = n,
        Some(Command::Banner(line)) => view.banner(line),
        Some(Command::Guide(guide)) => view.guide = Some(guide),
        // Only the turn's holder sends sheets and secrets, and it is
        // waiting on the one shown.
        Some(_) => {}
        None => return Some(Flow::Quit),
    }
    None
}

fn typable(k: &KeyEvent) -> bool {
    !k.modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
}

fn is_ctrl_c(k: &KeyEvent) -> bool {
    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)
}

/// Terminal events, read on a plain thread and stamped with when they arrived.
struct Keys {
    events: mpsc::UnboundedReceiver<(Instant, io::Result<Event>)>,
}

impl Keys {
    fn spawn() -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        // Blocking reads stay off the runtime; the short poll lets the thread
        // notice the UI ended instead of swallowing the shell's next key.
        std::thread::spawn(move || {
            while !tx.is_closed() {
                match event::poll(Duration::from_millis(50)) {
                    Ok(false) => {}
                    Ok(true) => {
                        let event = event::read();
                        let failed = event.is_err();
                        if tx.send((Instant::now(), event)).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send((Instant::now(), Err(e)));
                        return;
                    }
                }
            }
        });
        Self { events }
    }

    async fn next(&mut self) -> Option<(Instant, io::Result<Event>)> {
        self.events.recv().await
    }

    /// Forgets typeahead before something new is shown, and returns when keys
    /// start to count: an answer must come from a person who saw this screen.
    fn fresh(&mut self, term: &mut Display) -> io::Result<Instant> {
        let stdin = io::stdin();
        if rustix::termios::isatty(&stdin) {
            let _ = rustix::termios::tcflush(&stdin, rustix::termios::QueueSelector::IFlush);
        }
        while self.events.try_recv().is_ok() {}
        term.repaint()?;
        Ok(Instant::now() + ARM_DELAY)
    }
}

/// Raw mode and the alternate screen, undone on drop.
struct Screen;

/// Set while the alternate screen is up, for the panic hook.
static ACTIVE: AtomicBool = AtomicBool::new(false);

impl Screen {
    fn enter() -> io::Result<Self> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            // Restore first so the panic message lands on the normal screen
            // (a panic on another thread never unwinds through our guard).
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Self;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}
