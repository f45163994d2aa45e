//! Desktop notifications: advisory only. The sheet is what counts; a missing
//! notifier or session bus changes nothing.

use std::ffi::OsString;

/// Posts `title`/`body` through the platform's notifier: `notify-send` when
/// a session bus is there, `osascript` (Notification Center) on macOS. The
/// body may hold a peer's words: made inert first.
pub fn desktop(title: &str, body: &str) {
    let body = vmux_proto::text::escape(body);
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
    let Some((program, args)) = notifier(cfg!(target_os = "macos"), bus, title, &body) else {
        return;
    };
    let spawned = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Reap it off the request path.
        std::thread::spawn(move || child.wait());
    }
}

/// The command that posts the notification, if this desktop has one.
///
/// On macOS the words go in as `osascript` arguments (`argv`), never into
/// the script's text, so no quote in them can change what it runs.
fn notifier(
    macos: bool,
    bus: Option<OsString>,
    title: &str,
    body: &str,
) -> Option<(&'static str, Vec<String>)> {
    if macos {
        let script = [
            "on run argv",
            "display notification (item 2 of argv) with title (item 1 of argv)",
            "end run",
        ];
        let mut args: Vec<String> = script
            .iter()
            .flat_map(|l| ["-e".into(), (*l).into()])
            .collect();
        args.extend([title.to_owned(), body.to_owned()]);
        return Some(("osascript", args));
    }
    bus?;
    Some((
        "notify-send",
        vec![
            "--urgency=critical".into(),
            "--app-name=vmux".into(),
            title.into(),
            body.into(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn linux_posts_through_notify_send_only_with_a_session_bus() {
        assert_eq!(notifier(false, None, "t", "b"), None);
        let (program, args) =
            notifier(false, Some("unix:path=/x".into()), "t", "b").unwrap_or_default();
        assert_eq!(program, "notify-send");
        assert_eq!(args.last().map(String::as_str), Some("b"));
    }

    #[test]
    fn macos_passes_the_words_as_arguments_not_as_script() {
        let body = "From laptop\" & do shell script \"x";
        let (program, args) = notifier(true, None, "SSH Sign Request", body).unwrap_or_default();
        assert_eq!(program, "osascript");
        let script: Vec<&String> = args.iter().skip(1).step_by(2).take(3).collect();
        assert!(script.iter().all(|l| !l.contains("laptop")), "{args:?}");
        assert_eq!(&args[args.len() - 2..], ["SSH Sign Request", body]);
    }
}
