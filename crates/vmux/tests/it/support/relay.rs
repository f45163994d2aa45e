//! A TCP relay on 127.0.0.1 to put between an agent and its signer, so a
//! test can break the link the ways networks do: connections cut (both
//! ends see them close), or gone silent (bytes vanish, nothing closes).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A running relay; stopped, and its connections closed, on drop.
pub struct Relay {
    /// Where to connect instead of the target.
    pub addr: String,
    shared: Arc<Shared>,
}

struct Shared {
    target: String,
    /// False while the link is down: connections are accepted and closed.
    up: AtomicBool,
    stop: AtomicBool,
    accepted: AtomicUsize,
    conns: Mutex<Vec<Conn>>,
}

/// Both sockets of one relayed connection.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// Set: bytes are read and dropped, as on a dead route.
    silent: Arc<AtomicBool>,
}

impl Relay {
    /// Relays 127.0.0.1:(a free port) to `target`.
    pub fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            target: target.to_owned(),
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || accept_loop(&listener, &s));
        Relay { addr, shared }
    }

    /// Closes every relayed connection (both ends get end-of-file) and
    /// refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Every current connection goes silent: what is sent is lost, nothing
    /// closes. New connections are relayed normally.
    pub fn silence(&self) {
        for c in self.shared.conns.lock().unwrap().iter() {
            c.silent.store(true, Ordering::SeqCst);
        }
    }

    /// How many connections were relayed so far.
    pub fn relayed(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(&self.addr);
        self.cut();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if !shared.up.load(Ordering::SeqCst) {
            // The link is down: the peer sees its connection close.
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(&shared.target) else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let silent = Arc::new(AtomicBool::new(false));
        for (from, to) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server.try_clone().unwrap(), client.try_clone().unwrap()),
        ] {
            let silent = Arc::clone(&silent);
            std::thread::spawn(move || pump(from, to, &silent));
        }
        shared.conns.lock().unwrap().push(Conn {
            client,
            server,
            silent,
        });
    }
}

/// Copies `from` to `to` until either end closes; while `silent`, drops
/// what it reads.
fn pump(mut from: TcpStream, mut to: TcpStream, silent: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
