//! Desktop notifications: advisory only. The sheet is what counts; a missing
//! notifier or session bus changes nothing.

/// Posts `title`/`body` through `notify-send` when a session bus is there.
/// The body may hold a peer's words: made inert first.
pub fn desktop(title: &str, body: &str) {
    let body = vmux_proto::text::escape(body);
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return;
    }
    let spawned = std::process::Command::new("notify-send")
        .args(["--urgency=critical", "--app-name=vmux", title, &body])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Reap it off the request path.
        std::thread::spawn(move || child.wait());
    }
}
