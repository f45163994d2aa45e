//! What to do next, kept on the idle screen: lines the person copies
//! (an `authorized_keys` line, the CA line, the `export` line), each under
//! a short note saying where it goes.
//!
//! On the full screen each line to copy is written as plain text on rows
//! of its own, outside any frame, and left to the terminal to wrap: a
//! terminal (and tmux) copies a line it wrapped itself as one line.

use vmux_proto::text::escape;

use crate::ui::fit;

/// One thing to do: where it goes, and the line to copy (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Where the line goes, e.g. "For ~/.ssh/authorized_keys on your servers".
    pub what: String,
    /// The line itself, to copy as is; `None` for a note alone.
    pub line: Option<String>,
}

/// The panel: a heading and its steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guide {
    /// The panel's heading.
    pub title: String,
    /// In display order.
    pub steps: Vec<Step>,
    /// Where the same lines are kept, named when the panel is shrunk.
    pub file: Option<String>,
}

/// The panel's rows on a screen of some width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// The heading.
    Title(String),
    /// One row of a note.
    Note(String),
    /// A line to copy, escaped, written as is over `rows` rows.
    Copy { line: String, rows: usize },
}

impl Guide {
    /// As plain text: each note, then its line indented by two spaces.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            out.push_str(&step.what);
            out.push('\n');
            if let Some(line) = &step.line {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// The whole panel on a screen `width` columns wide.
    pub fn rows(&self, width: usize) -> Vec<Row> {
        let mut rows = vec![Row::Title(self.title.clone())];
        for step in &self.steps {
            let what = escape(&step.what);
            rows.extend(fit::wrap(&what, width, width).into_iter().map(Row::Note));
            if let Some(line) = &step.line {
                let line = escape(line).into_owned();
                let rows_taken = fit::terminal_rows(&line, width);
                rows.push(Row::Copy {
                    line,
                    rows: rows_taken,
                });
            }
        }
        rows
    }

    /// The panel shrunk while a sheet needs the room: where its lines are.
    pub fn summary(&self, width: usize) -> Vec<Row> {
        let mut text = format!("{}: back after this request", self.title);
        if let Some(file) = &self.file {
            text.push_str(&format!("; also in {}", escape(file)));
        }
        fit::wrap(&text, width, width)
            .into_iter()
            .map(Row::Note)
            .collect()
    }
}

/// Screen rows `rows` take.
pub fn height(rows: &[Row]) -> usize {
    rows.iter()
        .map(|r| match r {
            Row::Copy { rows, .. } => *rows,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn guide() -> Guide {
        Guide {
            title: "Next steps".into(),
            steps: vec![
                Step {
                    what: "For ~/.ssh/authorized_keys on your servers (identity \"demo\"):".into(),
                    line: Some(format!("ecdsa-sha2-nistp256 {} demo", "A".repeat(160))),
                },
                Step {
                    what: "Logs go to a file".into(),
                    line: None,
                },
            ],
            file: Some("/home/me/next-steps.txt".into()),
        }
    }

    #[test]
    fn a_line_to_copy_stays_one_line_over_the_rows_it_wraps_to() {
        let rows = guide().rows(80);
        let copies: Vec<_> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Copy { line, rows } => Some((line.clone(), *rows)),
                _ => None,
            })
            .collect();
        assert_eq!(copies.len(), 1);
        assert!(copies[0].0.ends_with("AAAA demo"));
        assert_eq!(copies[0].1, 3, "185 columns on 80");
        // Title, the note, the line (3 rows), the second note.
        assert_eq!(height(&rows), 1 + 1 + 3 + 1);
    }

    #[test]
    fn the_summary_names_the_file() {
        let rows = guide().summary(80);
        assert_eq!(height(&rows), 1);
        assert!(matches!(&rows[0], Row::Note(n) if n.contains("next-steps.txt")));
    }
}
