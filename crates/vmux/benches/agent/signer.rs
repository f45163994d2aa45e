//! The signer, in this process, with a test approver in place of the
//! person: it approves every sheet at once and types the passphrase. It
//! exists only in this bench; the binary has no such thing.
//!
//! The approver also times each sign request's approval window, from the
//! sheet reaching it to the signer's "Approved" banner: the approval, the
//! user verification (decrypting the software key with its passphrase,
//! slow by design) and the signature itself. The forwarded-sign case
//! subtracts that window from what the client measured.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use vmux_link::clock::SystemClock;
use vmux_link::device::Device;
use vmux_link::home::Home;
use vmux_signer::approval::{Approvals, Command, Decision, Sheet};
use vmux_signer::{Config, Signer};
use zeroize::Zeroizing;

/// The banner the signer shows once a signature is made.
const APPROVED: &str = "Approved remote sign request";

/// One sign request as the approver saw it.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// The sheet reached the approver.
    pub sheet: Instant,
    /// The signer announced the signature.
    pub signed: Instant,
}

impl Window {
    pub fn len(&self) -> Duration {
        self.signed - self.sheet
    }
}

/// A running in-process signer.
pub struct BenchSigner {
    home: PathBuf,
    passphrase: String,
    runtime: Option<tokio::runtime::Runtime>,
    pub addr: SocketAddr,
    windows_tx: mpsc::Sender<Result<Window, String>>,
    windows: mpsc::Receiver<Result<Window, String>>,
}

impl BenchSigner {
    /// Starts a signer named "bench" with its state in `home`, on a free
    /// loopback port.
    pub fn start(home: &Path, passphrase: &str) -> BenchSigner {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (windows_tx, windows) = mpsc::channel();
        let mut signer = BenchSigner {
            home: home.to_owned(),
            passphrase: passphrase.to_owned(),
            runtime: None,
            addr: listener.local_addr().unwrap(),
            windows_tx,
            windows,
        };
        signer.serve(listener);
        signer
    }

    /// Serves `listener` (bound to our address) on a fresh runtime, as a
    /// freshly started `vmux signer` would; returns once it is accepting.
    pub fn serve(&mut self, listener: std::net::TcpListener) {
        assert!(self.runtime.is_none(), "already serving");
        // As `vmux signer`: a multi-threaded runtime, one worker per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let home = Home::at(self.home.clone()).unwrap();
        let device = Device::load_or_create(&home, Some("bench")).unwrap();
        let (approvals, commands) = Approvals::new();
        // As `vmux signer --pair`: the bench's device pairs on first start.
        approvals.pairing_window().open();
        let signer = Signer::new(
            device,
            home,
            approvals,
            Arc::new(SystemClock),
            Config::default(),
        )
        .unwrap();
        listener.set_nonblocking(true).unwrap();
        let (passphrase, windows) = (self.passphrase.clone(), self.windows_tx.clone());
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio::spawn(signer.serve(listener));
        });
        // A thread of its own, as a person is not one of the signer's
        // tasks: its clock readings don't wait for a runtime worker.
        std::thread::spawn(move || approve(commands, &passphrase, &windows));
        self.runtime = Some(runtime);
    }

    /// Stops the signer as a crash or a restart would: every task and
    /// socket it had goes away at once.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// The window of the next approved sign request, waiting up to `within`.
    pub fn next_window(&self, within: Duration) -> Window {
        match self.windows.recv_timeout(within) {
            Ok(Ok(window)) => window,
            Ok(Err(why)) => panic!("{why}"),
            Err(_) => panic!("the approver saw no approved sign request within {within:?}"),
        }
    }
}

impl Drop for BenchSigner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Approves every sheet, answers every passphrase prompt with `passphrase`
/// and reports each signature's window.
fn approve(
    mut commands: UnboundedReceiver<Command>,
    passphrase: &str,
    windows: &mpsc::Sender<Result<Window, String>>,
) {
    let mut sheet = None;
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Sheet {
                sheet: shown,
                reply,
                ..
            } => {
                if matches!(shown, Sheet::Sign { .. }) {
                    sheet = Some(Instant::now());
                }
                let _ = reply.send(Decision::Approve);
            }
            Command::Secret { reply, .. } => {
                let _ = reply.send(Zeroizing::new(passphrase.to_owned()));
            }
            Command::Banner(text) if text.starts_with(APPROVED) => {
                let signed = Instant::now();
                let window = sheet
                    .take()
                    .map(|sheet| Window { sheet, signed })
                    .ok_or_else(|| "a signature without a sheet".to_owned());
                let _ = windows.send(window);
            }
            // A wrong passphrase or a refusal would make every number
            // below meaningless.
            Command::Banner(text) if text.starts_with("Wrong") || text.contains("refused") => {
                let _ = windows.send(Err(format!("the signer said: {text}")));
            }
            _ => {}
        }
    }
}
