//! What the tray shows, platform-neutral: built from the agent's status
//! (the same `status@vmux` answer `vmux status` prints), in the seeds'
//! words. Every string that came from a peer or the system is escaped
//! here, so neither backend can show one raw.

use std::path::Path;

use vmux_agent::control::Status;
use vmux_proto::text::escape;

/// The key icon: filled while a signer is reachable, hollow otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Filled,
    Hollow,
}

/// What a menu item does when picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RefreshKeys,
    RequestCertificate,
    CopySocketLine,
    OpenLog,
    Quit,
}

impl Action {
    /// The item's label, as the seeds name it.
    pub fn label(self) -> &'static str {
        match self {
            Action::RefreshKeys => "Refresh Keys",
            Action::RequestCertificate => "Request Certificate",
            Action::CopySocketLine => "Copy SSH_AUTH_SOCK line",
            Action::OpenLog => "Open log",
            Action::Quit => "Quit",
        }
    }

    /// Every action, in menu order.
    pub const ALL: [Action; 5] = [
        Action::RefreshKeys,
        Action::RequestCertificate,
        Action::CopySocketLine,
        Action::OpenLog,
        Action::Quit,
    ];
}

/// The whole menu at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub icon: Icon,
    /// One line for the icon's tooltip / title.
    pub title: String,
    /// The information lines, top to bottom (not clickable).
    pub lines: Vec<String>,
    /// Whether the agent answered: the actions that ask it need one.
    pub agent_running: bool,
}

impl Menu {
    /// The menu for a running agent's `status`.
    pub fn from_status(status: &Status) -> Self {
        let esc = |s: &str| escape(s).into_owned();
        let connection = match (&status.connected_to, status.also_connected.as_slice()) {
            (Some(name), []) => format!("Connected to {}", esc(name)),
            (Some(name), others) => format!(
                "Connected to {} (signer in use); also to {}",
                esc(name),
                others.iter().map(|o| esc(o)).collect::<Vec<_>>().join(", ")
            ),
            (None, _) => "Disconnected".to_owned(),
        };
        let mut lines = vec![connection.clone(), esc(&status.certificate)];
        if let Some(code) = &status.certificate_refused {
            lines.push(format!("Last certificate request refused: {}", esc(code)));
        }
        if status.locked {
            lines.push("Agent locked (ssh-add -X to unlock)".to_owned());
        }
        if status.keys.is_empty() {
            lines.push("No keys".to_owned());
        } else if status.from_cache {
            lines.push("Keys (cached):".to_owned());
        }
        for key in &status.keys {
            let from = match key.from.as_deref() {
                Some(from) => format!("  [{}]", esc(from)),
                None => String::new(),
            };
            lines.push(format!(
                "{}  {}{from}",
                esc(&key.comment),
                esc(&key.fingerprint)
            ));
        }
        // The wake line only when there is an endpoint: the advice for
        // setting one belongs in `vmux status`, not in a menu.
        if !status.wake.is_empty() {
            lines.extend(
                status
                    .lines()
                    .into_iter()
                    .filter(|l| l.starts_with("Wake:")),
            );
        }
        let connected = status.connected_to.is_some();
        Menu {
            icon: if connected {
                Icon::Filled
            } else {
                Icon::Hollow
            },
            title: format!("vmux: {connection}"),
            lines,
            agent_running: true,
        }
    }

    /// The menu when no agent answers at `socket`: says so, and how to
    /// start one.
    pub fn no_agent(socket: &Path, why: &str) -> Self {
        let socket = escape(&socket.display().to_string()).into_owned();
        Menu {
            icon: Icon::Hollow,
            title: "vmux: no agent running".to_owned(),
            lines: vec![
                format!("No agent running at {socket}"),
                format!("Start one: {}", start_command(&socket)),
                escape(why).into_owned(),
            ],
            agent_running: false,
        }
    }

    /// Whether `action` can be picked now.
    pub fn enabled(&self, action: Action) -> bool {
        match action {
            Action::RefreshKeys | Action::RequestCertificate => self.agent_running,
            Action::CopySocketLine | Action::OpenLog | Action::Quit => true,
        }
    }
}

/// The command that starts an agent on this socket.
fn start_command(socket: &str) -> String {
    format!("vmux agent --socket {}", shell_quote(socket))
}

/// The line a shell profile takes to use the agent at `socket`.
pub fn socket_line(socket: &Path) -> String {
    format!(
        "export SSH_AUTH_SOCK={}",
        shell_quote(&socket.display().to_string())
    )
}

/// `s` as one POSIX shell word.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use vmux_agent::control::{StatusKey, StatusWake};

    fn status() -> Status {
        Status {
            connected_to: None,
            also_connected: Vec::new(),
            authorities: Vec::new(),
            wake: Vec::new(),
            upstream: None,
            certificate: "No session certificate".into(),
            certificate_refused: None,
            locked: false,
            from_cache: false,
            keys: Vec::new(),
            not_saved: Vec::new(),
            last_refusal: None,
        }
    }

    #[test]
    fn disconnected_agent_is_hollow_and_says_so() {
        let menu = Menu::from_status(&status());
        assert_eq!(menu.icon, Icon::Hollow);
        assert_eq!(
            menu.lines,
            ["Disconnected", "No session certificate", "No keys"]
        );
        assert!(menu.enabled(Action::RefreshKeys));
    }

    #[test]
    fn connected_agent_lists_keys_and_the_wake_line() {
        let mut s = status();
        s.connected_to = Some("phone".into());
        s.certificate = "Certificate valid until 2026-01-01 08:00:00 UTC".into();
        s.keys = vec![StatusKey {
            comment: "work".into(),
            fingerprint: "SHA256:abc".into(),
            algorithm: "ecdsa-sha2-nistp256".into(),
            from: None,
        }];
        s.wake = vec![StatusWake {
            signer: "phone".into(),
            host: "ntfy.example".into(),
            last_attempt: None,
            last_result: None,
            last_failed: false,
        }];
        let menu = Menu::from_status(&s);
        assert_eq!(menu.icon, Icon::Filled);
        assert_eq!(
            menu.lines,
            [
                "Connected to phone",
                "Certificate valid until 2026-01-01 08:00:00 UTC",
                "work  SHA256:abc",
                "Wake: ready, not used yet (phone via ntfy.example)",
            ]
        );
        assert_eq!(menu.title, "vmux: Connected to phone");
    }

    #[test]
    fn peer_strings_are_escaped() {
        let mut s = status();
        s.connected_to = Some("ph\u{1b}]0;x\u{7}one".into());
        s.also_connected = vec!["tab\u{202e}let".into()];
        s.certificate = "Certificate\r expired".into();
        s.certificate_refused = Some("userDenied\n".into());
        s.keys = vec![StatusKey {
            comment: "work\u{1b}[2J".into(),
            fingerprint: "SHA256:\u{8}x".into(),
            algorithm: "ssh-ed25519".into(),
            from: Some("up\u{1b}".into()),
        }];
        let menu = Menu::from_status(&s);
        let all = format!("{}\n{}", menu.title, menu.lines.join("\n"));
        assert!(
            !all.chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{all:?}"
        );
        assert!(all.contains("work\\e[2J"), "{all}");
    }

    #[test]
    fn no_agent_offers_the_command_that_starts_one() {
        let menu = Menu::no_agent(
            Path::new("/home/a b/.ssh/vmux-agent.sock"),
            "cannot connect",
        );
        assert_eq!(menu.icon, Icon::Hollow);
        assert_eq!(
            menu.lines[1],
            "Start one: vmux agent --socket '/home/a b/.ssh/vmux-agent.sock'"
        );
        assert!(!menu.enabled(Action::RefreshKeys) && !menu.enabled(Action::RequestCertificate));
        assert!(menu.enabled(Action::CopySocketLine) && menu.enabled(Action::Quit));
    }

    #[test]
    fn socket_line_quotes_for_the_shell() {
        assert_eq!(
            socket_line(Path::new("/home/me/.ssh/vmux-agent.sock")),
            "export SSH_AUTH_SOCK=/home/me/.ssh/vmux-agent.sock"
        );
        assert_eq!(
            socket_line(Path::new("/tmp/it's")),
            r"export SSH_AUTH_SOCK='/tmp/it'\''s'"
        );
    }
}
