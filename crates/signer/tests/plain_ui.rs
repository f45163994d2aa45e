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
use std::time::Duration;

use tokio::io::{AsyncReadExt, DuplexStream};
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;
use vmux_signer::approval::{Approvals, Decision, Destination, Sheet};
use vmux_signer::ui::plain::{self, Input};

fn pairing(device: &str) -> Sheet {
    let code = PairingCode::derive(&[1; 32], &[2; 32], &[3; 32]);
    Sheet::Pairing {
        device: device.into(),
        fingerprint: Fingerprint::of(device.as_bytes()),
        code,
    }
}

fn sign(device: &str) -> Sheet {
    let destination = Destination {
        host: Some("git.example".into()),
        user: Some("git".into()),
        ..Default::default()
    };
    Sheet::Sign {
        device: device.into(),
        destination,
        key: "work".into(),
    }
}

struct Screen {
    keys: std::io::PipeWriter,
    screen: DuplexStream,
    seen: String,
    cursor: usize,
}

fn start() -> (Approvals, Screen) {
    let (approvals, commands) = Approvals::new();
    let (reader, keys) = std::io::pipe().unwrap();
    let (output, screen) = tokio::io::duplex(64 * 1024);
    tokio::spawn(plain::run(commands, Input::from_reader(reader), output));
    (
        approvals,
        Screen {
            keys,
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
    }
}

#[tokio::test]
async fn one_sheet_at_a_time_in_arrival_order_with_the_waiting_count() {
    let (approvals, mut ui) = start();
    let first = tokio::spawn({
        let a = approvals.clone();
        async move { a.turn().await.ask(sign("laptop")).await }
    });
    ui.sees("SSH Sign Request").await;
    ui.sees("git@git.example").await;
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
