//! What to do next, kept on the idle screen: lines the person copies
//! (an `authorized_keys` line, the CA line, the `export` line), each under
//! a short note saying where it goes.

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
}
