//! The plain front end: one sheet at a time in arrival order, the waiting
//! count, withdrawn sheets, late answers, secrets, and that closed input can
//! only ever deny.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, DuplexStream};
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;
use vmux_signer::approval::{Approvals, Decision, Destination, Sheet};
use vmux_signer::hostkeys::HostKeys;
use vmux_signer::reading::{Forwarded, Host, Purpose, Reading};
use vmux_signer::ui::plain::{self, Input};

fn pairing(device: &str) -> Sheet {
    let code = PairingCode::derive(&[1; 32], &[2; 32], &[3; 32]);
    Sheet::Pairing {
        device: device.into(),
        fingerprint: Fingerprint::of(device.as_bytes()),
        code,
        already_named: Vec::new(),
    }
}

/// A login to git.example that the requester (`vmux ssh`) verified.
fn login(device: &str) -> Destination {
    let reading = Reading {
        purpose: Purpose::Login { user: "git".into() },
        host: Host::ByRequester {
            key: ssh_key::PublicKey::from_openssh(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH",
            )
            .unwrap()
            .to_bytes()
            .unwrap(),
            name: Some("git.example".into()),
        },
        through: Vec::new(),
        forwarded: Forwarded::No,
    };
    Destination::describe(&reading, &HostKeys::default(), device)
}

fn sign(device: &str) -> Sheet {
    let destination = login(device);
    Sheet::Sign {
        device: device.into(),
        claimed: None,
        destination: Box::new(destination),
        key: "work".into(),
    }
}

/// The keys' pipe as the UI reads it, counting what it has taken: a test
/// can wait until keys were typed "before" something.
struct Counted {
    pipe: std::io::PipeReader,
    taken: Arc<AtomicUsize>,
}

impl std::io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        self.taken.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

struct Screen {
    keys: std::io::PipeWriter,
    typed: usize,
    taken: Arc<AtomicUsize>,
    screen: DuplexStream,
    seen: String,
    cursor: usize,
}

fn start() -> (Approvals, Screen) {
    start_sized(None)
}

/// With answers typed on a screen of `size` (columns, rows).
fn start_sized(size: Option<(u16, u16)>) -> (Approvals, Screen) {
    let (approvals, commands) = Approvals::new();
    let (pipe, keys) = std::io::pipe().unwrap();
    let taken = Arc::new(AtomicUsize::new(0));
    let reader = Counted {
        pipe,
        taken: Arc::clone(&taken),
    };
    let (output, screen) = tokio::io::duplex(64 * 1024);
    let window = approvals.pairing_window();
    let input = Input::from_reader(reader);
    let input = match size {
        Some((w, h)) => input.with_size(w, h),
        None => input,
    };
    tokio::spawn(plain::run(commands, window, input, output));
    (
        approvals,
        Screen {
            keys,
            typed: 0,
            taken,
            screen,
            seen: String::new(),
            cursor: 0,
        },
    )
}

impl Screen {
    /// Waits (5 s at most) for `needle` after the previous match.
    async fn sees(&mut self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 1024];
            loop {
                if let Some(at) = self.seen[self.cursor..].find(needle) {
                    self.cursor += at + needle.len();
                    return;
                }
                let n = self.screen.read(&mut buf).await.unwrap();
                assert!(n > 0, "UI output ended");
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
        .await;
        assert!(found.is_ok(), "no {needle:?}; saw:\n{}", self.seen);
    }

    fn types(&mut self, line: &str) {
        writeln!(self.keys, "{line}").unwrap();
        self.typed += line.len() + 1;
    }

    /// Keys without Enter (a line still being typed); returns once the UI
    /// has read them.
    async fn keys(&mut self, keys: &str) {
        write!(self.keys, "{keys}").unwrap();
        self.typed += keys.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.taken.load(Ordering::SeqCst) < self.typed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the UI never read the keys"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A sheet taller than the screen is not printed (its top would scroll
/// away): the notice is, and no line answers it; on a screen it fits, it
/// is printed and answered as usual.
#[tokio::test]
async fn a_sheet_too_tall_for_the_screen_is_not_printed_and_takes_no_answer() {
    let (approvals, mut ui) = start_sized(Some((40, 12)));
    let shown = tokio::spawn({
        let a = approvals.clone();
        async move {
            let expires = std::time::Instant::now() + Duration::from_millis(1500);
            tokio::time::timeout(
                Duration::from_millis(1500),
                a.turn().await.ask_until(sign("laptop"), expires),
            )
            .await
        }
    });
    ui.sees("terminal too small for this request: enlarge it")
        .await;
    ui.types("a");
    ui.sees("Nothing answered").await;
    assert!(
        shown.await.unwrap().is_err(),
        "a sheet not shown was answered"
    );
    assert!(!ui.seen.contains("From Device"), "{}", ui.seen);

    let (approvals, mut ui) = start_sized(Some((40, 40)));
    let shown = tokio::spawn({
        let a = approvals.clone();
        async move {
            let expires = std::time::Instant::now() + Duration::from_secs(60);
            a.turn().await.ask_until(sign("laptop"), expires).await
        }
    });
    ui.sees("From Device  laptop").await;
    // `vmux ssh`'s destination: why it is the requester's word, in words.
    ui.sees("Host check   vmux ssh on that device checked the host key against its known_hosts")
        .await;
    ui.sees("Expires in 60 s").await;
    ui.sees("> ").await;
    ui.types("a");
    assert_eq!(shown.await.unwrap(), Ok(Decision::Approve));
}

/// The plain sheet says how long it has when shown, and again at 30 s and
/// 10 s left (not every second).
#[tokio::test]
async fn the_plain_sheet_counts_down_at_a_few_points() {
    let (approvals, mut ui) = start();
    let shown = tokio::spawn({
        let a = approvals.clone();
        async move {
            let expires = std::time::Instant::now() + Duration::from_millis(11_500);
            a.turn().await.ask_until(sign("laptop"), expires).await
        }
    });
    ui.sees("Expires in 12 s").await;
    ui.sees("(Expires in 10 s; a or d) > ").await;
    assert_eq!(ui.seen.matches("Expires in").count(), 2, "{}", ui.seen);
    ui.types("d");
    assert_eq!(shown.await.unwrap(), Ok(Decision::Deny));
}

#[tokio::test]
async fn one_sheet_at_a_time_in_arrival_order_with_the_waiting_count() {
    let (approvals, mut ui) = start();
    let first = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("laptop")).await }
    });
    ui.sees("SSH Sign Request").await;
    ui.sees("git.example (verified by the requester)").await;
    let second = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(pairing("tablet")).await }
    });
    ui.sees("(1 more waiting)").await;
    assert!(
        !ui.seen.contains("\"tablet\" wants to pair"),
        "second shown before the first was answered"
    );
    ui.types("a");
    assert_eq!(first.await.unwrap(), Ok(Decision::Approve));
    ui.sees("\"tablet\" wants to pair").await;
    ui.types("d");
    assert_eq!(second.await.unwrap(), Ok(Decision::Deny));
}

#[tokio::test]
async fn a_late_answer_to_a_withdrawn_sheet_never_answers_the_next() {
    let (approvals, mut ui) = start();
    let gone = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("gone")).await }
    });
    ui.sees("From Device  gone").await;
    gone.abort();
    ui.sees("Withdrawn before an answer").await;
    // The person answers the sheet that just vanished, a moment before the
    // next one appears (the pause stands for that moment)...
    ui.types("a");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let next = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("next")).await }
    });
    ui.sees("From Device  next").await;
    // ...and that "a" must not approve this one: only a new line answers it.
    ui.types("d");
    assert_eq!(next.await.unwrap(), Ok(Decision::Deny));
}

#[tokio::test]
async fn secrets_are_read_after_the_prompt() {
    let (approvals, mut ui) = start();
    let asked = tokio::spawn({
        let a = approvals.clone();
        async move {
            let mut turn = a.turn().await;
            turn.secret("Passphrase for \"work\"")
                .await
                .map(|s| s.to_string())
        }
    });
    ui.sees("Passphrase for \"work\": ").await;
    ui.types("correct horse");
    assert_eq!(asked.await.unwrap().unwrap(), "correct horse");
}

#[tokio::test]
async fn closed_input_denies_and_never_approves() {
    let (approvals, mut ui) = start();
    let asked = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(pairing("eof")).await }
    });
    ui.sees("\"eof\" wants to pair").await;
    ui.types("yes please"); // not an answer
    ui.sees("Type a to accept or d to reject").await;
    drop(ui.keys);
    assert_eq!(asked.await.unwrap(), Ok(Decision::Deny));
}

/// The rest of a passphrase typed after its prompt was withdrawn and
/// another sheet appeared finishes a line begun before that sheet: it is
/// dropped, even when it reads "a".
#[tokio::test]
async fn the_rest_of_a_withdrawn_secret_never_answers_the_next_sheet() {
    let (approvals, mut ui) = start();
    let prompt = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.secret("Passphrase for \"work\"").await }
    });
    ui.sees("Passphrase for \"work\": ").await;
    // Read by the UI (which edits the line itself) before the prompt goes.
    ui.keys("correct hors").await;
    prompt.abort();
    ui.sees("Withdrawn before an answer").await;
    let next = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("next")).await }
    });
    ui.sees("From Device  next").await;
    ui.types("a");
    ui.sees("Ignored a line begun before this sheet appeared")
        .await;
    assert!(
        !next.is_finished(),
        "the rest of the passphrase answered the sheet"
    );
    ui.types("d");
    assert_eq!(next.await.unwrap(), Ok(Decision::Deny));
}

/// Between sheets, `p` opens the pairing window.
#[tokio::test]
async fn p_between_sheets_opens_the_pairing_window() {
    let (approvals, mut ui) = start();
    let window = approvals.pairing_window();
    ui.sees("Type p and Enter to let a new device pair").await;
    assert!(!window.is_open());
    ui.types("x");
    ui.sees("Nothing to answer now").await;
    assert!(!window.is_open());
    ui.types("p");
    ui.sees("Accepting new devices for 5 minutes").await;
    assert!(window.is_open());
}

/// The sheet names the device as pinned; what it calls itself now is
/// labelled as its claim; stored text is printed inert.
#[tokio::test]
async fn the_pinned_name_leads_and_the_claim_is_labelled_and_escaped() {
    let (approvals, mut ui) = start();
    let asked = tokio::spawn({
        let a = approvals.clone();
        async move {
            let sheet = Sheet::Sign {
                device: "old\u{1b}[2J".into(),
                claimed: Some("laptop".into()),
                destination: Box::new(login("old")),
                key: "work".into(),
            };
            a.turn().await.ask(sheet).await
        }
    });
    ui.sees("From Device  old\\e[2J\n").await;
    ui.sees("Claims name  \"laptop\" (its own word; paired as \"old\\e[2J\")")
        .await;
    ui.types("d");
    assert_eq!(asked.await.unwrap(), Ok(Decision::Deny));
    assert!(!ui.seen.contains('\u{1b}'), "{}", ui.seen);
}

/// A pairing sheet steps aside for a paired device's request and comes
/// back after it.
#[tokio::test]
async fn a_pairing_sheet_yields_to_a_request_and_comes_back() {
    let (approvals, mut ui) = start();
    let pairing_asked = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask_yielding(pairing("stranger"), None).await.1 }
    });
    ui.sees("\"stranger\" wants to pair").await;
    let signed = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("laptop")).await }
    });
    // One line for it, the pipeline's: none of the UI's own beside it.
    ui.sees("Pairing request set aside").await;
    ui.sees("From Device  laptop").await;
    assert!(!ui.seen.contains("Withdrawn"), "{}", ui.seen);
    ui.types("a");
    assert_eq!(signed.await.unwrap(), Ok(Decision::Approve));
    ui.sees("\"stranger\" wants to pair").await;
    ui.types("d");
    assert_eq!(pairing_asked.await.unwrap(), Ok(Decision::Deny));
}
