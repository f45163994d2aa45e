//! A sheet laid out in terminal rows, so a front end can tell whether all
//! of it fits before it shows any of it. Long values are wrapped, never
//! cut: every character of every field lands on some row, and the rows are
//! counted as the terminal will show them (wide characters take two
//! columns). A sheet that does not fit whole is not shown at all: the front
//! end shows [`TOO_SMALL`] instead and takes no answer.

use ratatui::text::Span;

use crate::approval::Sheet;
use crate::ui::text;

/// Shown instead of a sheet that does not fit the terminal whole.
pub const TOO_SMALL: &str = "terminal too small for this request: enlarge it or use --ui plain";

/// Width of the label column, with its space.
pub const INDENT: usize = 13;

/// Narrowest value column beside the labels; below it, values go under them.
const MIN_VALUE: usize = 12;

/// Columns `s` takes on a terminal.
pub fn cols(s: &str) -> usize {
    Span::raw(s).width()
}

/// `text` broken into rows: the first at most `first` columns wide, the
/// rest at most `rest`. Broken at spaces (the space is consumed, as any
/// word wrap does), and inside a word only when it is wider than a row.
/// Nothing else is dropped.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    // A wide character needs two columns to go anywhere.
    let room = |row: usize| if row == 0 { first } else { rest }.max(2);
    let mut rows = vec![String::new()];
    // Whether the last row holds anything yet (a word, or a kept space).
    let mut started = false;
    for word in text.split(' ') {
        let width = cols(word);
        let at = rows.len() - 1;
        let used = rows.last().map_or(0, |r| cols(r));
        if !started {
            if width <= room(at) {
                push(&mut rows, word);
                started = true;
                continue;
            }
        } else if used + 1 + width <= room(at) {
            push(&mut rows, " ");
            push(&mut rows, word);
            continue;
        } else if width <= room(at + 1) {
            rows.push(word.to_owned());
            continue;
        } else if used + 1 < room(at) {
            // Too long for any row: it starts here and runs on.
            push(&mut rows, " ");
        } else {
            rows.push(String::new());
        }
        for c in word.chars() {
            let mut buf = [0u8; 4];
            let c = c.encode_utf8(&mut buf);
            let at = rows.len() - 1;
            let used = rows.last().map_or(0, |r| cols(r));
            if used > 0 && used + cols(c) > room(at) {
                rows.push(String::new());
            }
            push(&mut rows, c);
        }
        started = true;
    }
    rows
}

fn push(rows: &mut [String], s: &str) {
    if let Some(row) = rows.last_mut() {
        row.push_str(s);
    }
}

/// Rows a line of `text` takes when written as is to a terminal `width`
/// columns wide, which wraps it at the margin (a wide character that does
/// not fit moves whole to the next row).
pub fn terminal_rows(text: &str, width: usize) -> usize {
    let width = width.max(2);
    let (mut rows, mut used) = (1, 0);
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let w = cols(c.encode_utf8(&mut buf));
        if used + w > width {
            rows += 1;
            used = 0;
        }
        used += w;
    }
    rows
}

/// One labelled field in rows `width` columns wide: `(head, body)` pairs,
/// the head being the label (padded to [`INDENT`]) on the first row and
/// blank under it. On a screen too narrow for a value column the label
/// gets a row of its own and the value the rows below it, unindented.
pub fn field(label: &str, value: &str, width: usize) -> Vec<(String, String)> {
    let head = format!("{label:<12} ");
    let head_cols = cols(&head);
    if width >= INDENT + MIN_VALUE && head_cols + MIN_VALUE <= width {
        let body = wrap(value, width - head_cols, width - INDENT);
        return body
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let head = if i == 0 {
                    head.clone()
                } else {
                    " ".repeat(INDENT)
                };
                (head, row)
            })
            .collect();
    }
    let mut rows: Vec<(String, String)> = wrap(label, width, width)
        .into_iter()
        .map(|row| (row, String::new()))
        .collect();
    rows.extend(
        wrap(value, width, width)
            .into_iter()
            .map(|row| (String::new(), row)),
    );
    rows
}

/// Whether `rows` rows of content `widest` columns wide fit a box with a
/// border and one column of padding each side, on a `width`×`height`
/// screen.
pub fn fits_box(rows: usize, widest: usize, width: u16, height: u16) -> bool {
    rows.saturating_add(2) <= usize::from(height) && widest.saturating_add(4) <= usize::from(width)
}

/// One row inside a sheet's box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A field's label (on its first row, blank under it) and value.
    Field(String, String),
    /// The advice under the fields.
    Note(String),
    /// The countdown and the queue.
    Status(String),
    /// The two buttons, centred.
    Buttons,
    /// The key hint, shown once keys count (blank before, same height).
    Hint(String),
    Blank,
}

/// A sheet laid out for a screen, every row of it inside its box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub rows: Vec<Row>,
    /// The box, borders included.
    pub width: u16,
    pub height: u16,
}

/// Widest a sheet's box gets: room for a whole line of fields.
pub const MAX_WIDTH: u16 = 100;

/// `sheet` laid out in a box on a `width`×`height` screen, with `status`
/// (countdown, queue) and `hint` (keys) under it; `None` when the whole
/// of it, buttons included, does not fit: then none of it is shown.
pub fn sheet(sheet: &Sheet, status: &str, hint: &str, width: u16, height: u16) -> Option<Layout> {
    let box_width = width.min(MAX_WIDTH);
    let inner = usize::from(box_width.saturating_sub(4));
    if inner < buttons_cols(sheet) {
        return None;
    }
    let mut rows = vec![Row::Blank];
    for (label, value) in text::fields(sheet) {
        rows.extend(
            field(label, &value, inner)
                .into_iter()
                .map(|(head, body)| Row::Field(head, body)),
        );
    }
    rows.push(Row::Blank);
    if let Some(note) = text::note(sheet) {
        rows.extend(wrap(note, inner, inner).into_iter().map(Row::Note));
    }
    rows.extend(wrap(status, inner, inner).into_iter().map(Row::Status));
    rows.push(Row::Blank);
    rows.push(Row::Buttons);
    rows.push(Row::Blank);
    rows.extend(wrap(hint, inner, inner).into_iter().map(Row::Hint));
    let widest = rows.iter().map(row_cols).max().unwrap_or(0);
    if !fits_box(rows.len(), widest, box_width, height) {
        return None;
    }
    Some(Layout {
        height: u16::try_from(rows.len() + 2).ok()?,
        width: box_width,
        rows,
    })
}

fn row_cols(row: &Row) -> usize {
    match row {
        Row::Field(head, body) => cols(head) + cols(body),
        Row::Note(s) | Row::Status(s) | Row::Hint(s) => cols(s),
        Row::Buttons | Row::Blank => 0,
    }
}

/// Columns the buttons take: `▶ Approve ◀      [ Deny ]`.
pub fn buttons_cols(sheet: &Sheet) -> usize {
    cols(text::yes(sheet)) + 4 + BUTTON_GAP.len() + cols(text::no(sheet)) + 4
}

/// Between the two buttons.
pub const BUTTON_GAP: &str = "      ";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    fn no_spaces(s: &str) -> String {
        s.chars().filter(|c| *c != ' ').collect()
    }

    /// Every row within its width, and every non-space character kept in
    /// order: wrapped, never cut.
    fn check(text: &str, first: usize, rest: usize) -> Vec<String> {
        let rows = wrap(text, first, rest);
        for (i, row) in rows.iter().enumerate() {
            let room = if i == 0 { first } else { rest }.max(2);
            assert!(cols(row) <= room, "row {i} {row:?} wider than {room}");
        }
        assert_eq!(no_spaces(&rows.concat()), no_spaces(text), "{rows:?}");
        rows
    }

    #[test]
    fn short_text_is_one_row() {
        assert_eq!(check("root@prod-db", 40, 40), ["root@prod-db"]);
        assert_eq!(check("", 40, 40), [""]);
    }

    #[test]
    fn words_break_at_spaces() {
        assert_eq!(
            check("one two three four", 9, 9),
            ["one two", "three", "four"]
        );
        // The first row is narrower (a label sits before it).
        assert_eq!(check("one two three", 4, 13), ["one", "two three"]);
    }

    #[test]
    fn a_word_wider_than_a_row_runs_on_and_is_never_cut() {
        let fp = "SHA256:RjfBqvMbBJa1w3uh1Xr0dlzr7MpAT6VNfP1ykDCf0Hk";
        let rows = check(&format!("key {fp} (new host)"), 20, 20);
        assert!(rows.len() >= 3, "{rows:?}");
        let rows = check(&"x".repeat(1000), 7, 33);
        assert_eq!(rows.len(), 1 + (1000 - 7_usize).div_ceil(33));
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let rows = check(&"界".repeat(10), 7, 7);
        assert!(rows.iter().all(|r| cols(r) <= 7));
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(terminal_rows(&"界".repeat(10), 7), 4);
        assert_eq!(terminal_rows(&"a".repeat(160), 80), 2);
        assert_eq!(terminal_rows(&"a".repeat(161), 80), 3);
        assert_eq!(terminal_rows("", 80), 1);
    }

    #[test]
    fn runs_of_spaces_are_kept_inside_a_row() {
        assert_eq!(check("a  b", 10, 10), ["a  b"]);
        assert_eq!(check(" lead", 10, 10), [" lead"]);
    }

    #[test]
    fn fields_indent_their_value_or_go_under_the_label_when_narrow() {
        let rows = field("Destination", "root@prod-db (verified by this signer)", 36);
        assert_eq!(rows[0].0, "Destination  ");
        assert!(rows.len() >= 2);
        assert!(rows[1..].iter().all(|(h, _)| h == &" ".repeat(INDENT)));
        for (head, body) in &rows {
            assert!(cols(head) + cols(body) <= 36, "{head:?}{body:?}");
        }
        let narrow = field("Destination", "root@prod-db", 20);
        assert_eq!(narrow[0], ("Destination".into(), String::new()));
        assert_eq!(narrow[1], (String::new(), "root@prod-db".into()));
        // A label longer than the column still leaves the value whole.
        let long = field("Auth style requested", "otp", 40);
        assert_eq!(long[0].1, "otp");
    }

    /// The longest sign sheet the wire allows: names at their caps, a
    /// user name at sshd's, every binding a forwarding hop.
    pub(crate) fn longest() -> Sheet {
        use crate::approval::Destination;
        use crate::hostkeys::HostKeys;
        use crate::reading::{Forwarded, Hop, Host, Purpose, Reading};
        use vmux_proto::envelope::limits::{MAX_BINDINGS, MAX_DEVICE_NAME_LEN, MAX_TEXT_LEN};
        let key = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH",
        )
        .unwrap()
        .to_bytes()
        .unwrap();
        let device = "d".repeat(MAX_DEVICE_NAME_LEN);
        let reading = Reading {
            purpose: Purpose::Login {
                user: "u".repeat(256),
            },
            host: Host::Verified {
                key: key.clone(),
                claimed_name: Some("h".repeat(MAX_TEXT_LEN)),
            },
            through: (0..MAX_BINDINGS - 1)
                .map(|i| Hop {
                    key: key.clone(),
                    claimed_name: Some(format!("{i}").repeat(MAX_TEXT_LEN)),
                })
                .collect(),
            forwarded: Forwarded::Bound,
        };
        Sheet::Sign {
            device: device.clone(),
            claimed: Some("c".repeat(MAX_DEVICE_NAME_LEN)),
            destination: Box::new(Destination::describe(
                &reading,
                &HostKeys::default(),
                &device,
            )),
            key: "k".repeat(MAX_DEVICE_NAME_LEN),
        }
    }

    /// A login as it usually is.
    pub(crate) fn usual() -> Sheet {
        use crate::approval::Destination;
        use crate::hostkeys::HostKeys;
        use crate::reading::{Forwarded, Host, Purpose, Reading};
        let key = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH",
        )
        .unwrap()
        .to_bytes()
        .unwrap();
        let reading = Reading {
            purpose: Purpose::Login {
                user: "root".into(),
            },
            host: Host::Verified {
                key,
                claimed_name: Some("prod-db".into()),
            },
            through: Vec::new(),
            forwarded: Forwarded::No,
        };
        Sheet::Sign {
            device: "laptop".into(),
            claimed: None,
            destination: Box::new(Destination::describe(
                &reading,
                &HostKeys::default(),
                "laptop",
            )),
            key: "work".into(),
        }
    }

    const HINT: &str = "a approve · d deny · ←/→ Tab move · Enter choose";

    #[test]
    fn the_longest_sheet_never_fits_a_small_terminal_and_is_whole_on_a_big_one() {
        let sheet = longest();
        assert_eq!(super::sheet(&sheet, "Expires in 60 s", HINT, 80, 24), None);
        assert_eq!(super::sheet(&sheet, "Expires in 60 s", HINT, 40, 12), None);
        let layout = super::sheet(&sheet, "Expires in 60 s", HINT, 100, 2000).unwrap();
        assert!(layout.rows.contains(&Row::Buttons));
        // Every character of every field is on some row, in order.
        let shown: String = layout
            .rows
            .iter()
            .filter_map(|r| match r {
                Row::Field(head, body) => Some(format!("{head}{body}")),
                _ => None,
            })
            .collect();
        let fields: String = text::fields(&sheet)
            .into_iter()
            .map(|(label, value)| format!("{label}{value}"))
            .collect();
        assert_eq!(no_spaces(&shown), no_spaces(&fields));
        for row in &layout.rows {
            assert!(row_cols(row) <= 96, "{row:?}");
        }
        assert_eq!(usize::from(layout.height), layout.rows.len() + 2);
    }

    #[test]
    fn a_usual_sheet_fits_80_by_24_whole_but_not_40_by_12() {
        let sheet = usual();
        let layout = super::sheet(&sheet, "Expires in 60 s", HINT, 80, 24).unwrap();
        assert!(layout.height <= 24 && layout.width <= 80);
        assert!(layout.rows.contains(&Row::Buttons));
        assert_eq!(super::sheet(&sheet, "Expires in 60 s", HINT, 40, 12), None);
        // Narrow but tall enough: wrapped, whole.
        let narrow = super::sheet(&sheet, "Expires in 60 s", HINT, 40, 40).unwrap();
        assert!(narrow.rows.iter().all(|r| row_cols(r) <= 36));
        // Too narrow for the buttons: not at all.
        assert_eq!(super::sheet(&sheet, "", HINT, 24, 100), None);
    }

    #[test]
    fn boxes_fit_with_their_borders() {
        assert!(fits_box(22, 76, 80, 24));
        assert!(!fits_box(23, 76, 80, 24));
        assert!(!fits_box(10, 77, 80, 24));
    }
}
