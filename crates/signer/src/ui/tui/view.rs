//! What the full screen draws: the status box, the panel of next steps,
//! and over them a sheet or prompt. A sheet is drawn only when all of it,
//! buttons included, fits the screen ([`fit::sheet`]); otherwise the
//! too-small notice is, and the caller takes no answer.
//!
//! The panel sits under the status box with no frame. Its lines to copy
//! are not drawn by ratatui: their rows are left blank in the frame and
//! the caller writes each line there as plain text ([`Copy`]), so the
//! terminal wraps it and copies it as one line. While a sheet is up and
//! both do not fit, the panel shrinks to a summary (where its lines are
//! kept): the sheet comes first, and neither hides the other.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};
use vmux_proto::text::escape;

use crate::approval::Sheet;
use crate::ui::fit::{self, Layout, Row};
use crate::ui::guide::{self, Guide};
use crate::ui::text;

/// Status lines kept on the idle screen.
const BANNERS: usize = 5;

/// The status box never gets fewer rows than this beside the panel.
const MIN_STATUS: u16 = 4;

/// A line to copy, written as plain text from column 0 of row `y`.
pub type Copy = (u16, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Approve,
    Deny,
}

/// A sheet as the loop has it now.
pub struct Shown<'a> {
    pub sheet: &'a Sheet,
    pub focus: Button,
    /// Keys count (the hint shows).
    pub armed: bool,
    /// The countdown and queue line.
    pub status: String,
}

/// What stays on screen between sheets.
#[derive(Debug, Default)]
pub struct View {
    banners: VecDeque<String>,
    pub waiting: usize,
    /// Next steps, in a panel under the status.
    pub guide: Option<Guide>,
    /// Commands that came while a withdrawal settled, handled next.
    pub stash: VecDeque<crate::approval::Command>,
}

impl View {
    pub fn banner(&mut self, line: String) {
        if self.banners.len() == BANNERS {
            self.banners.pop_front();
        }
        self.banners.push_back(line);
    }

    /// The idle screen; returns the lines to copy to write after it.
    pub fn idle(&self, f: &mut Frame) -> Vec<Copy> {
        let area = f.area();
        let (panel, panel_rows) = self.panel(area, 0);
        let status = Rect {
            height: area.height.saturating_sub(panel_rows),
            ..area
        };
        self.status(f, status, false);
        self.draw_panel(f, area, &panel, panel_rows)
    }

    /// A sheet over the status box, when all of it fits; else the
    /// too-small notice. Returns whether the sheet is shown whole, and the
    /// lines to copy.
    pub fn sheet(&self, f: &mut Frame, shown: &Shown<'_>) -> (bool, Vec<Copy>) {
        let area = f.area();
        let hint = format!(
            "a {} · d {} · ←/→ Tab move · Enter choose",
            text::yes(shown.sheet),
            text::no(shown.sheet)
        );
        let Some(layout) = fit::sheet(shown.sheet, &shown.status, &hint, area.width, area.height)
        else {
            self.status(f, area, true);
            notice(f, text::title(shown.sheet));
            return (false, Vec::new());
        };
        let (panel, panel_rows) = self.panel(area, layout.height);
        let above = Rect {
            height: area.height.saturating_sub(panel_rows),
            ..area
        };
        self.status(f, above, true);
        let copies = self.draw_panel(f, area, &panel, panel_rows);
        let lines = sheet_lines(&layout, shown);
        popup(f, above, &layout, text::title(shown.sheet), lines);
        (true, copies)
    }

    /// A passphrase or PIN prompt over the status box.
    pub fn secret(&self, f: &mut Frame, prompt: &str, typed: usize, armed: bool) -> Vec<Copy> {
        let area = f.area();
        let field = format!("{:<24}", "•".repeat(typed));
        let inner = usize::from(area.width.min(fit::MAX_WIDTH).saturating_sub(4));
        let mut lines = vec![Line::default()];
        lines.extend(
            fit::wrap(&escape(prompt), inner, inner)
                .into_iter()
                .map(Line::raw),
        );
        lines.push(Line::default());
        lines.push(
            Line::styled(
                format!(" {field} "),
                Style::default().add_modifier(Modifier::REVERSED),
            )
            .alignment(Alignment::Center),
        );
        lines.push(Line::default());
        lines.push(hint(armed, "Enter submit · Esc cancel".to_owned()));
        let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
        let (panel, panel_rows) = self.panel(area, height);
        let above = Rect {
            height: area.height.saturating_sub(panel_rows),
            ..area
        };
        self.status(f, above, true);
        let copies = self.draw_panel(f, area, &panel, panel_rows);
        let layout = Layout {
            rows: Vec::new(),
            width: area.width.min(fit::MAX_WIDTH),
            height: height.min(area.height),
        };
        popup(f, above, &layout, "User verification", lines);
        copies
    }

    /// The panel's rows for a screen `area`, leaving `need` rows above it
    /// (for a sheet): whole when it fits, else its summary, else nothing.
    fn panel(&self, area: Rect, need: u16) -> (Vec<guide::Row>, u16) {
        let Some(guide) = &self.guide else {
            return (Vec::new(), 0);
        };
        let width = usize::from(area.width);
        let room = usize::from(area.height.saturating_sub(need.max(MIN_STATUS)));
        for rows in [guide.rows(width), guide.summary(width)] {
            let height = guide::height(&rows);
            if height <= room {
                return (rows, u16::try_from(height).unwrap_or(u16::MAX));
            }
        }
        (Vec::new(), 0)
    }

    /// Draws the panel's notes at the bottom of `area`; returns where its
    /// lines to copy go (their rows stay blank in the frame).
    fn draw_panel(&self, f: &mut Frame, area: Rect, rows: &[guide::Row], height: u16) -> Vec<Copy> {
        let mut y = area.bottom().saturating_sub(height);
        let mut copies = Vec::new();
        for row in rows {
            let rect = Rect {
                y,
                height: 1,
                ..area
            };
            match row {
                guide::Row::Title(title) => f.render_widget(
                    Line::styled(
                        format!("── {title} "),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                    rect,
                ),
                guide::Row::Note(note) => f.render_widget(Line::styled(note.clone(), dim()), rect),
                guide::Row::Copy { line, rows } => {
                    copies.push((y, line.clone()));
                    y = y.saturating_add(u16::try_from(*rows).unwrap_or(u16::MAX));
                    continue;
                }
            }
            y = y.saturating_add(1);
        }
        copies
    }

    /// The status box in `area`; `busy` when a sheet or prompt covers it.
    fn status(&self, f: &mut Frame, area: Rect, busy: bool) {
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
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
    }
}

/// The sheet's rows, styled.
fn sheet_lines(layout: &Layout, shown: &Shown<'_>) -> Vec<Line<'static>> {
    let (yes, no) = (text::yes(shown.sheet), text::no(shown.sheet));
    layout
        .rows
        .iter()
        .map(|row| match row {
            Row::Field(head, body) => Line::from(vec![
                Span::styled(head.clone(), Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(body.clone()),
            ]),
            Row::Note(note) => Line::styled(note.clone(), Style::default().fg(Color::Yellow)),
            Row::Status(status) => Line::styled(status.clone(), dim()),
            Row::Buttons => Line::from(vec![
                button(
                    yes,
                    shown.focus == Button::Approve,
                    Color::Green,
                    Color::Black,
                ),
                Span::raw(fit::BUTTON_GAP),
                button(no, shown.focus == Button::Deny, Color::Red, Color::White),
            ])
            .alignment(Alignment::Center),
            Row::Hint(h) => hint(shown.armed, h.clone()),
            Row::Blank => Line::default(),
        })
        .collect()
}

/// In place of a sheet that does not fit: says so, and nothing of it.
fn notice(f: &mut Frame, title: &str) {
    let area = f.area();
    let inner = usize::from(area.width.saturating_sub(4));
    let mut lines: Vec<Line<'static>> = fit::wrap(fit::TOO_SMALL, inner, inner)
        .into_iter()
        .map(|l| Line::styled(l, Style::default().fg(Color::Yellow)))
        .collect();
    lines.extend(
        fit::wrap("Ctrl-C denies it and quits", inner, inner)
            .into_iter()
            .map(|l| Line::styled(l, dim())),
    );
    let layout = Layout {
        height: u16::try_from(lines.len() + 2)
            .unwrap_or(u16::MAX)
            .min(area.height),
        width: area.width,
        rows: Vec::new(),
    };
    popup(f, area, &layout, title, lines);
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

/// A bordered box of `layout`'s size, centred in `within` when it fits
/// there, else in the whole screen. Sheet rows are laid out to fit it
/// exactly; only prompts and notices rely on its wrapping.
fn popup(f: &mut Frame, within: Rect, layout: &Layout, title: &str, lines: Vec<Line<'_>>) {
    let area = f.area();
    let centre = if layout.height <= within.height && layout.width <= within.width {
        within
    } else {
        area
    };
    let rect: Rect = centre.centered(
        Constraint::Length(layout.width),
        Constraint::Length(layout.height),
    );
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::ui::fit::tests::{longest, usual};
    use crate::ui::guide::Step;

    fn screen(view: &View, sheet: &Sheet, size: (u16, u16)) -> (bool, String, Vec<Copy>) {
        let mut term = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
        let shown = Shown {
            sheet,
            focus: Button::Deny,
            armed: true,
            status: "Expires in 60 s".into(),
        };
        let mut out = (false, Vec::new());
        term.draw(|f| out = view.sheet(f, &shown)).unwrap();
        let buffer = term.backend().buffer();
        let mut text = String::new();
        for y in 0..size.1 {
            for x in 0..size.0 {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        (out.0, text, out.1)
    }

    fn guide() -> Guide {
        Guide {
            title: "Next steps".into(),
            steps: vec![
                Step {
                    what: "For ~/.ssh/authorized_keys on your servers (identity \"demo\"):".into(),
                    line: Some(format!("ecdsa-sha2-nistp256 {} demo", "A".repeat(160))),
                },
                Step {
                    what: "In another terminal, to use the agent:".into(),
                    line: Some("export SSH_AUTH_SOCK=/run/vmux/agent.sock".into()),
                },
            ],
            file: Some("/home/me/next-steps.txt".into()),
        }
    }

    #[test]
    fn a_sheet_that_fits_shows_whole_with_its_buttons() {
        for size in [(80, 24), (100, 30)] {
            let (whole, text, _) = screen(&View::default(), &usual(), size);
            assert!(whole);
            for needle in [
                "From Device",
                "laptop",
                "Destination",
                "Key",
                "Approve",
                "Deny",
                "Expires in 60 s",
            ] {
                assert!(text.contains(needle), "{needle} missing:\n{text}");
            }
            assert!(!text.contains(fit::TOO_SMALL));
        }
    }

    #[test]
    fn a_sheet_that_does_not_fit_shows_the_notice_and_nothing_of_it() {
        for (sheet, size) in [
            (longest(), (80, 24)),
            (longest(), (40, 12)),
            (usual(), (40, 12)),
        ] {
            let (whole, text, _) = screen(&View::default(), &sheet, size);
            assert!(!whole);
            let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains("terminal too small for this request"),
                "{text}"
            );
            for needle in ["From Device", "Destination", "Approve", "dddddddd"] {
                assert!(!text.contains(needle), "{needle} shown in part:\n{text}");
            }
        }
    }

    #[test]
    fn on_80_by_24_the_panel_shrinks_for_a_sheet_and_is_whole_between_sheets() {
        let view = View {
            guide: Some(guide()),
            ..View::default()
        };
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut copies = Vec::new();
        term.draw(|f| copies = view.idle(f)).unwrap();
        assert_eq!(copies.len(), 2, "both lines to copy on the idle screen");
        // Each on rows of its own at the bottom, the longer over 3 rows.
        assert!(copies[0].0 + 3 < copies[1].0 + 1);
        assert!(copies[1].0 < 24);
        let (whole, text, copies) = screen(&view, &usual(), (80, 24));
        assert!(whole);
        assert!(text.contains("Approve"), "{text}");
        assert!(
            text.contains("next-steps.txt"),
            "the summary shows:\n{text}"
        );
        assert!(copies.is_empty(), "{copies:?}");
    }
}
