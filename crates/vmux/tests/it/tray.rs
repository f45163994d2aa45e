//! `vmux tray` through the binary on a private D-Bus session bus (made by
//! `dbus-run-session`), with a StatusNotifierWatcher of the test's own: its
//! menu read over com.canonical.dbusmenu (`GetLayout`) as the signer
//! connects, as a certificate is asked for from the menu, as the signer goes
//! away and as it is removed with `vmux peers remove`; Refresh Keys and
//! Request Certificate clicked by `Event`, and seen in the agent's log and
//! on the signer's sheet.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedValue, Value};

use crate::support::paired::{Paired, WAIT, agent_at};
use crate::support::process::{Proc, VMUX};

/// A session bus of the test's own: `dbus-run-session` runs `cat`, which
/// prints nothing and ends when its input closes, taking the bus with it.
struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    fn start() -> SessionBus {
        let mut child = Command::new("dbus-run-session")
            .args([
                "--",
                "sh",
                "-c",
                "echo \"$DBUS_SESSION_BUS_ADDRESS\"; exec cat",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-run-session (package dbus-daemon) must be installed");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        SessionBus { child, address }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The StatusNotifierWatcher a panel would run: it records who registers
/// and says a host is there, so the item shows.
#[derive(Clone, Default)]
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        // A bus name, or (some items) only an object path on the sender.
        let name = if service.starts_with('/') {
            header.sender().map(|s| s.to_string()).unwrap_or_default()
        } else {
            service
        };
        self.items.lock().unwrap().push(name);
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The panel's side: the watcher on the bus, and a reader of the item.
struct Panel {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
    watcher: Watcher,
}

/// A dbusmenu layout node: `(id, properties, children)`.
type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// One menu entry.
#[derive(Debug, Clone)]
struct Entry {
    id: i32,
    label: String,
    enabled: bool,
}

impl Panel {
    fn start(address: &str) -> Panel {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let watcher = Watcher::default();
        let conn = rt.block_on(async {
            zbus::connection::Builder::address(address)
                .unwrap()
                .name("org.kde.StatusNotifierWatcher")
                .unwrap()
                .serve_at("/StatusNotifierWatcher", watcher.clone())
                .unwrap()
                .build()
                .await
                .unwrap()
        });
        Panel { rt, conn, watcher }
    }

    /// The bus name of the first item that registers.
    fn wait_item(&self, tray: &mut Proc) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(name) = self.watcher.items.lock().unwrap().first() {
                return name.clone();
            }
            if Instant::now() > deadline {
                tray.expect("registered with the StatusNotifierWatcher", Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A property of the item's org.kde.StatusNotifierItem interface.
    fn item_property(&self, item: &str, name: &str) -> OwnedValue {
        self.rt.block_on(async {
            let reply = self
                .conn
                .call_method(
                    Some(item),
                    "/StatusNotifierItem",
                    Some("org.freedesktop.DBus.Properties"),
                    "Get",
                    &("org.kde.StatusNotifierItem", name),
                )
                .await
                .unwrap();
            reply.body().deserialize::<OwnedValue>().unwrap()
        })
    }

    /// The menu's object path, as a host finds it.
    fn menu_path(&self, item: &str) -> String {
        let path = self.item_property(item, "Menu");
        zbus::zvariant::OwnedObjectPath::try_from(path)
            .unwrap()
            .to_string()
    }

    /// How many pixels of the icon are fully drawn.
    fn icon_ink(&self, item: &str) -> usize {
        let value = self.item_property(item, "IconPixmap");
        let Value::Array(pixmaps) = &*value else {
            panic!("IconPixmap: {value:?}");
        };
        let Some(Value::Structure(pixmap)) = pixmaps.inner().first() else {
            panic!("IconPixmap: {value:?}");
        };
        let Some(Value::Array(argb)) = pixmap.fields().get(2) else {
            panic!("IconPixmap: {value:?}");
        };
        argb.inner()
            .iter()
            .step_by(4)
            .filter(|alpha| matches!(alpha, Value::U8(255)))
            .count()
    }

    /// The menu as a host shows it (GetLayout of the whole tree).
    fn menu(&self, item: &str, path: &str) -> Vec<Entry> {
        self.rt.block_on(async {
            let reply = self
                .conn
                .call_method(
                    Some(item),
                    path,
                    Some("com.canonical.dbusmenu"),
                    "GetLayout",
                    &(0i32, -1i32, Vec::<String>::new()),
                )
                .await
                .unwrap();
            let (_revision, root): (u32, Layout) = reply.body().deserialize().unwrap();
            let mut entries = Vec::new();
            for child in &root.2 {
                entries.extend(entry(child));
            }
            entries
        })
    }

    /// Clicks the entry labelled `label`, as a host does.
    fn click(&self, item: &str, path: &str, label: &str) {
        let entries = self.menu(item, path);
        let entry = entries
            .iter()
            .find(|e| e.label == label)
            .unwrap_or_else(|| panic!("no {label:?} in {entries:?}"));
        assert!(entry.enabled, "{label:?} is disabled: {entries:?}");
        self.rt.block_on(async {
            self.conn
                .call_method(
                    Some(item),
                    path,
                    Some("com.canonical.dbusmenu"),
                    "Event",
                    &(entry.id, "clicked", Value::I32(0), 0u32),
                )
                .await
                .unwrap();
        });
    }

    /// Polls the menu until `done` holds for its labels; returns them.
    fn wait_menu(
        &self,
        item: &str,
        path: &str,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let labels: Vec<String> = self.menu(item, path).into_iter().map(|e| e.label).collect();
            if done(&labels) {
                eprintln!("menu {what}:\n  {}", labels.join("\n  "));
                return labels;
            }
            assert!(
                Instant::now() < deadline,
                "menu never showed {what}: {labels:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A child of the layout: `(id, properties, children)` in a variant.
fn entry(child: &OwnedValue) -> Option<Entry> {
    let value: &Value = match &**child {
        Value::Value(inner) => inner,
        value => value,
    };
    let Value::Structure(s) = value else {
        return None;
    };
    let fields = s.fields();
    let id = i32::try_from(fields.first()?).ok()?;
    let props: HashMap<String, OwnedValue> = fields.get(1)?.try_clone().ok()?.try_into().ok()?;
    let label = props
        .get("label")
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default();
    let enabled = props
        .get("enabled")
        .is_none_or(|v| bool::try_from(&**v).unwrap_or(true));
    // dbusmenu's access-key marks: `__` is one underscore.
    Some(Entry {
        id,
        label: label.replace("__", "_"),
        enabled,
    })
}

fn has(labels: &[String], prefix: &str) -> bool {
    labels.iter().any(|l| l.starts_with(prefix))
}

/// Stand-ins for the desktop's clipboard and opener, writing down what
/// they were given.
fn desktop_tools(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, script) in [
        (
            "xclip",
            format!("#!/bin/sh\ncat > '{}'\n", dir.join("clipboard").display()),
        ),
        (
            "xdg-open",
            format!(
                "#!/bin/sh\necho \"$1\" > '{}'\n",
                dir.join("opened").display()
            ),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.is_empty() => return text,
            _ => assert!(
                Instant::now() < deadline,
                "{} never written",
                path.display()
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tray_menu_follows_the_agent_and_its_actions_reach_the_signer() {
    let mut rig = Paired::setup().fixed_port().start();
    rig.kill_signer();
    let bus = SessionBus::start();
    let panel = Panel::start(&bus.address);
    let path = desktop_tools(rig.dir.path());
    let sock = rig.sock();

    // No agent yet: the tray says so, and how to start one.
    let mut command = Command::new("env");
    command
        .args([
            "VMUX_LOG=info",
            VMUX,
            "tray",
            "--socket",
            sock.to_str().unwrap(),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("PATH", &path)
        .env_remove("WAYLAND_DISPLAY");
    let mut tray = Proc::start(command, &rig.device_home);
    let item = panel.wait_item(&mut tray);
    let menu = panel.menu_path(&item);
    panel.wait_menu(&item, &menu, "with no agent", |l| {
        has(l, "No agent running at ") && has(l, "Start one: vmux agent --socket ")
    });
    let hollow = panel.icon_ink(&item);

    // The agent, its signer away.
    let mut agent = agent_at(&["env", "VMUX_LOG=info"], &rig.device_home, &sock, &[]);
    panel.wait_menu(&item, &menu, "before the signer connects", |l| {
        l.first().is_some_and(|f| f == "Disconnected") && has(l, "No session certificate")
    });

    // The signer comes back: the agent connects and asks for its session
    // certificate, approved on the signer.
    rig.start_signer();
    rig.approve_certificate();
    let connected = panel.wait_menu(&item, &menu, "once the signer connected", |l| {
        l.first().is_some_and(|f| f == "Connected to phone")
            && has(l, "Certificate valid until ")
            && has(l, "work  SHA256:")
    });
    let filled = panel.icon_ink(&item);
    assert!(
        filled > hollow,
        "icon: filled {filled} px, hollow {hollow} px"
    );

    // Refresh Keys: the agent fetches the key list, and says so.
    panel.click(&item, &menu, "Refresh Keys");
    agent.expect("key list fetched on request", WAIT);
    tray.expect("Refresh Keys done: 1 key(s)", WAIT);

    // Request Certificate: a sheet on the signer, a new certificate.
    panel.click(&item, &menu, "Request Certificate");
    rig.approve_certificate();
    agent.expect("Certificate valid until", WAIT);
    tray.expect("Request Certificate done: Certificate valid until", WAIT);
    panel.wait_menu(&item, &menu, "after Request Certificate", |l| {
        has(l, "Certificate valid until ") && has(l, "work  SHA256:")
    });

    // The signer goes away: disconnected, the keys from the cache.
    rig.kill_signer();
    panel.wait_menu(&item, &menu, "once the signer went away", |l| {
        l.first().is_some_and(|f| f == "Disconnected") && has(l, "work  SHA256:")
    });
    assert!(panel.icon_ink(&item) < filled);

    // Removed on this device: its keys go with it.
    let out = rig.vmux(&["peers", "remove", "phone"]);
    assert!(out.status.success(), "{out:?}");
    panel.wait_menu(&item, &menu, "after vmux peers remove", |l| {
        !has(l, "work  SHA256:") && has(l, "No keys")
    });

    // The two desktop actions and Quit.
    panel.click(&item, &menu, "Copy SSH_AUTH_SOCK line");
    let copied = wait_file(&rig.dir.path().join("clipboard"));
    assert_eq!(copied, format!("export SSH_AUTH_SOCK={}", sock.display()));
    panel.click(&item, &menu, "Open log");
    let opened = wait_file(&rig.dir.path().join("opened"));
    assert_eq!(
        opened.trim(),
        rig.device_home.join("agent-log.jsonl").to_str().unwrap()
    );
    assert!(connected.iter().any(|l| l == "Quit"));
    panel.click(&item, &menu, "Quit");
    assert!(tray.wait_exit(WAIT).success());
}
