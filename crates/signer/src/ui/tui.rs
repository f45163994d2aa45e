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

use std::collections::VecDeque;
use std::io::{self, Stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use vmux_proto::text::escape;

use crate::approval::{Command, Decision, PairingWindow, Sheet};
use crate::ui::guide::Guide;
use crate::ui::text;

/// How long the keyboard must be quiet, after a sheet or prompt appears,
/// before keys count.
pub const ARM_DELAY: Duration = Duration::from_millis(300);

/// Shown when a request goes away while its sheet is up.
const WITHDRAWN: &str =
    "Withdrawn before an answer (it expired, the device left, or another request came first)";

/// Status lines kept on the idle screen.
const BANNERS: usize = 5;

type Term = Terminal<CrosstermBackend<Stdout>>;

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
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    repaint(&mut term)?;
    let mut keys = Keys::spawn();
    let mut view = View::default();
    // Between sheets the same quiet rule: the rest of a passphrase typed on
    // after its prompt went away must not open a pairing window by a `p`.
    let mut idle_from = Instant::now();
    loop {
        term.draw(|f| {
            view.idle(f, false);
        })?;
        tokio::select! {
            command = commands.recv() => match command {
                None => return Ok(()),
                Some(Command::Waiting(n)) => view.waiting = n,
                Some(Command::Banner(line)) => view.banner(line),
                Some(Command::Guide(guide)) => view.guide = Some(guide),
                Some(Command::Sheet { sheet, reply }) => {
                    if ask(&mut term, &mut view, &mut keys, &mut commands, &sheet, reply).await? == Flow::Quit {
                        return Ok(());
                    }
                    idle_from = Instant::now() + ARM_DELAY;
                }
                Some(Command::Secret { prompt, reply }) => {
                    if secret(&mut term, &mut view, &mut keys, &mut commands, &prompt, reply).await? == Flow::Quit {
                        return Ok(());
                    }
                    idle_from = Instant::now() + ARM_DELAY;
                }
            },
            event = keys.next() => match event {
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
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Button {
    Approve,
    Deny,
}

/// Shows one sheet until it is answered or withdrawn.
async fn ask(
    term: &mut Term,
    view: &mut View,
    keys: &mut Keys,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    sheet: &Sheet,
    mut reply: oneshot::Sender<Decision>,
) -> io::Result<Flow> {
    let mut armed_at = keys.fresh(term)?;
    let mut armed = false;
    let mut focus = Button::Deny;
    let decision = loop {
        term.draw(|f| {
            let within = view.idle(f, true);
            view.sheet(f, within, sheet, focus, armed);
        })?;
        tokio::select! {
            // Withdrawal first: when the queue closes too, the banner still shows.
            biased;
            () = reply.closed() => {
                view.banner(WITHDRAWN.to_owned());
                return Ok(Flow::Go);
            }
            () = tokio::time::sleep_until(armed_at.into()), if !armed => armed = true,
            next = commands.recv() => if let Some(flow) = while_prompting(view, next) {
                return Ok(flow);
            },
            event = keys.next() => match event {
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
                    if !counts(&k, at, &mut armed, &mut armed_at) {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('a' | 'A') => break Decision::Approve,
                        KeyCode::Char('d' | 'D') => break Decision::Deny,
                        KeyCode::Left => focus = Button::Approve,
                        KeyCode::Right => focus = Button::Deny,
                        KeyCode::Tab | KeyCode::BackTab => {
                            focus = if focus == Button::Deny { Button::Approve } else { Button::Deny };
                        }
                        KeyCode::Enter => {
                            break if focus == Button::Approve { Decision::Approve } else { Decision::Deny };
                        }
                        _ => {}
                    }
                }
                Some(_) => {}
            },
        }
    };
    let _ = reply.send(decision);
    Ok(Flow::Go)
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

/// Reads a passphrase or PIN; Esc (or withdrawal) drops `reply` unanswered.
async fn secret(
    term: &mut Term,
    view: &mut View,
    keys: &mut Keys,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    prompt: &str,
    mut reply: oneshot::Sender<Zeroizing<String>>,
) -> io::Result<Flow> {
    let mut armed_at = keys.fresh(term)?;
    let mut armed = false;
    // Fixed room: growing a String would leave unzeroed copies behind.
    let mut input = Zeroizing::new(String::with_capacity(256));
    loop {
        let shown = input.chars().count();
        term.draw(|f| {
            let within = view.idle(f, true);
            view.secret(f, within, prompt, shown, armed);
        })?;
        tokio::select! {
            // Withdrawal first: when the queue closes too, the banner still shows.
            biased;
            () = reply.closed() => {
                view.banner(WITHDRAWN.to_owned());
                return Ok(Flow::Go);
            }
            () = tokio::time::sleep_until(armed_at.into()), if !armed => armed = true,
            next = commands.recv() => if let Some(flow) = while_prompting(view, next) {
                return Ok(flow);
            },
            event = keys.next() => match event {
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
                        KeyCode::Esc => return Ok(Flow::Go),
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

/// Clears the screen and forgets the last frame, so the next one is drawn
/// whole and never mixes with the old screen. (`Terminal::clear` would ask
/// the terminal for the cursor position, racing the key reader for the reply.)
fn repaint(term: &mut Term) -> io::Result<()> {
    let size = term.size()?;
    term.resize(size.into())
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
    fn fresh(&mut self, term: &mut Term) -> io::Result<Instant> {
        let stdin = io::stdin();
        if rustix::termios::isatty(&stdin) {
            let _ = rustix::termios::tcflush(&stdin, rustix::termios::QueueSelector::IFlush);
        }
        while self.events.try_recv().is_ok() {}
        repaint(term)?;
        Ok(Instant::now() + ARM_DELAY)
    }
}

/// What stays on screen between sheets.
#[derive(Debug, Default)]
struct View {
    banners: VecDeque<String>,
    waiting: usize,
    /// Next steps, in a panel under the status.
    guide: Option<Guide>,
}

impl View {
    fn banner(&mut self, line: String) {
        if self.banners.len() == BANNERS {
            self.banners.pop_front();
        }
        self.banners.push_back(line);
    }

    /// The status screen; `busy` when a sheet or prompt covers it. Returns
    /// the status area, where a sheet goes so that it leaves the panel of
    /// next steps readable when there is room.
    fn idle(&self, f: &mut Frame, busy: bool) -> Rect {
        let area = f.area();
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(
                " vmux signer ",
                Style::default().add_modifier(Modifier::BOLD),
            ))
            .padding(Padding::horizontal(1));
        let mut lines = vec![Line::default()];
        let newest = self.banners.len().saturating_sub(1);
        for (i, b) in self.banners.iter().enumerate() {
            let style = if i == newest {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                dim()
            };
            lines.push(Line::styled(escape(b).into_owned(), style));
        }
        lines.push(Line::default());
        if !busy {
            lines.push(Line::styled("Waiting for requests", dim()).alignment(Alignment::Center));
        }
        if self.waiting > 0 {
            lines.push(
                Line::styled(format!("{} queued", self.waiting), dim())
                    .alignment(Alignment::Center),
            );
        }
        lines.push(Line::default());
        lines.push(
            Line::styled("p pairs a new device · Ctrl-C quits", dim()).alignment(Alignment::Center),
        );
        let (status, panel) = match &self.guide {
            Some(guide) => {
                let panel = guide_lines(guide);
                // Borders plus a spare row for word-wrap slack.
                let height = rows(&panel, area.width).saturating_add(3);
                let [status, below] =
                    Layout::vertical([Constraint::Min(4), Constraint::Length(height)]).areas(area);
                (status, Some((below, &guide.title, panel)))
            }
            None => (area, None),
        };
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            status,
        );
        if let Some((rect, title, panel)) = panel {
            let block = Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(
                    format!(" {title} "),
                    Style::default().add_modifier(Modifier::BOLD),
                ))
                .padding(Padding::horizontal(1));
            f.render_widget(
                Paragraph::new(panel)
                    .wrap(Wrap { trim: false })
                    .block(block),
                rect,
            );
        }
        status
    }

    fn sheet(&self, f: &mut Frame, within: Rect, sheet: &Sheet, focus: Button, armed: bool) {
        let (yes, no) = (text::yes(sheet), text::no(sheet));
        let mut lines = vec![Line::default()];
        let inner = usize::from(popup_width(f.area()).saturating_sub(4));
        for (label, value) in text::fields(sheet) {
            lines.extend(field(label, &value, inner));
        }
        lines.push(Line::default());
        if let Some(note) = text::note(sheet) {
            lines.push(Line::styled(note, Style::default().fg(Color::Yellow)));
        }
        lines.push(if self.waiting > 0 {
            Line::styled(format!("{} more waiting", self.waiting), dim())
        } else {
            Line::default()
        });
        lines.push(Line::default());
        lines.push(
            Line::from(vec![
                button(yes, focus == Button::Approve, Color::Green, Color::Black),
                Span::raw("      "),
                button(no, focus == Button::Deny, Color::Red, Color::White),
            ])
            .alignment(Alignment::Center),
        );
        lines.push(Line::default());
        lines.push(hint(
            armed,
            format!("a {yes} · d {no} · ←/→ Tab move · Enter choose"),
        ));
        popup(f, within, text::title(sheet), lines);
    }

    fn secret(&self, f: &mut Frame, within: Rect, prompt: &str, typed: usize, armed: bool) {
        let field = format!("{:<24}", "•".repeat(typed));
        let lines = vec![
            Line::default(),
            Line::raw(escape(prompt).into_owned()),
            Line::default(),
            Line::styled(
                format!(" {field} "),
                Style::default().add_modifier(Modifier::REVERSED),
            )
            .alignment(Alignment::Center),
            Line::default(),
            hint(armed, "Enter submit · Esc cancel".to_owned()),
        ];
        popup(f, within, "User verification", lines);
    }
}

/// The panel's rows: each note dim, its line bold below it.
fn guide_lines(guide: &Guide) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for step in &guide.steps {
        lines.push(Line::styled(step.what.clone(), dim()));
        if let Some(line) = &step.line {
            lines.push(Line::styled(
                line.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        }
    }
    lines
}

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// Keys do nothing until armed; the hint says so.
fn hint(armed: bool, text: String) -> Line<'static> {
    if armed {
        Line::styled(text, dim()).alignment(Alignment::Center)
    } else {
        Line::default()
    }
}

fn button(word: &str, focused: bool, color: Color, on_color: Color) -> Span<'static> {
    let mut label: String = word.chars().take(1).flat_map(char::to_uppercase).collect();
    label.extend(word.chars().skip(1));
    if focused {
        Span::styled(
            format!("▶ {label} ◀"),
            Style::default()
                .bg(color)
                .fg(on_color)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        Span::styled(
            format!("[ {label} ]"),
            Style::default().fg(color).add_modifier(Modifier::BOLD),
        )
    }
}

/// Rows `lines` take wrapped inside a bordered, padded box `width` wide.
fn rows(lines: &[Line<'_>], width: u16) -> u16 {
    let inner = usize::from(width.saturating_sub(4)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// How wide a sheet is on a screen of `area`: room for a whole
/// `authorized_keys`-length line of fields where the terminal allows.
fn popup_width(area: Rect) -> u16 {
    area.width.min(100)
}

/// One labelled field, its value wrapped at word boundaries to `inner`
/// columns and indented under its first line, so a long destination or
/// validity still reads as one field.
fn field(label: &str, value: &str, inner: usize) -> Vec<Line<'static>> {
    const INDENT: usize = 13;
    let room = inner.saturating_sub(INDENT).max(16);
    let mut rows: Vec<String> = vec![String::new()];
    for word in value.split(' ') {
        let width = |s: &str| Span::raw(s.to_owned()).width();
        let last = rows.last().map(String::as_str).unwrap_or_default();
        if !last.is_empty() && width(last) + 1 + width(word) > room {
            rows.push(String::new());
        }
        if let Some(row) = rows.last_mut() {
            if !row.is_empty() {
                row.push(' ');
            }
            row.push_str(word);
        }
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let head = if i == 0 {
                format!("{label:<12} ")
            } else {
                " ".repeat(INDENT)
            };
            Line::from(vec![
                Span::styled(head, Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(row),
            ])
        })
        .collect()
}

/// A bordered box tall enough for `lines`, centred in `within` (the status
/// area) when it fits there, else in the middle of the whole screen: the
/// sheet always shows whole.
fn popup(f: &mut Frame, within: Rect, title: &str, lines: Vec<Line<'_>>) {
    let area = f.area();
    let width = popup_width(area);
    // Borders plus a spare row for word-wrap slack.
    let height = rows(&lines, width).saturating_add(3).min(area.height);
    let centre = if height <= within.height && width <= within.width {
        within
    } else {
        area
    };
    let rect: Rect = centre.centered(Constraint::Length(width), Constraint::Length(height));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .title_alignment(Alignment::Center)
        .padding(Padding::horizontal(1));
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        rect,
    );
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
