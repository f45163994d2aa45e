//! A push service on 127.0.0.1: an HTTP receiver that records each request
//! and answers every one with a fixed status. It stands for the ntfy or
//! UnifiedPush server a signer's wake endpoint points at.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Request line and headers.
    pub head: String,
    /// The body, exactly.
    pub body: Vec<u8>,
}

pub struct Receiver {
    /// `http://127.0.0.1:PORT/vmux-wake-secret`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    arrived: mpsc::Receiver<Request>,
}

impl Receiver {
    /// Listens on 127.0.0.1 and answers every request with `status`.
    pub fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/vmux-wake-secret",
            listener.local_addr().unwrap().port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, arrived) = mpsc::channel();
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0u8; len.min(64 * 1024)];
                let _ = reader.read_exact(&mut body);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let request = Request { head, body };
                kept.lock().unwrap().push(request.clone());
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        Receiver {
            url,
            requests,
            arrived,
        }
    }

    /// The next request, within `within`.
    pub fn next(&self, within: Duration) -> Request {
        self.arrived
            .recv_timeout(within)
            .expect("no request reached the push receiver")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}
