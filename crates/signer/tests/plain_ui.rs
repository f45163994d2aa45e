//! The plain front end: FIFO, the waiting count, withdrawn sheets, and that
//! closed input can only ever deny.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use vmux_link::Fingerprint;
use vmux_link::pairing::PairingCode;
use vmux_signer::approval::{Approvals, Decision, Sheet};
use vmux_signer::ui;

fn sheet(device: &str) -> Sheet {
    let code = PairingCode::derive(&[1; 32], &[2; 32], &[3; 32]);
    Sheet::Pairing {
        device: device.into(),
        fingerprint: Fingerprint::of(device.as_bytes()),
        code,
    }
}

/// Reads the UI's output until it contains `needle`.
async fn wait_for(out: &mut DuplexStream, seen: &mut String, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !seen.contains(needle) {
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "UI output ended; saw:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(found.is_ok(), "no {needle:?}; saw:\n{seen}");
}

struct Ui {
    keys: DuplexStream,
    screen: DuplexStream,
    seen: String,
}

fn start() -> (Approvals, Ui) {
    let (approvals, queue) = Approvals::new();
    let (keys, input) = tokio::io::duplex(1024);
    let (output, screen) = tokio::io::duplex(64 * 1024);
    tokio::spawn(ui::plain::run(queue, BufReader::new(input), output));
    (
        approvals,
        Ui {
            keys,
            screen,
            seen: String::new(),
        },
    )
}

impl Ui {
    async fn sees(&mut self, needle: &str) {
        wait_for(&mut self.screen, &mut self.seen, needle).await;
    }
    async fn types(&mut self, line: &str) {
        self.keys
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn sheets_are_shown_one_at_a_time_first_come_first_served() {
    let (approvals, mut ui) = start();
    let first = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask(sheet("first")).await }
    });
    ui.sees("\"first\" wants to pair").await;
    let second = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask(sheet("second")).await }
    });
    ui.sees("(1 more waiting)").await;
    assert!(
        !ui.seen.contains("\"second\" wants to pair"),
        "second shown before the first was answered"
    );
    ui.types("a").await;
    assert_eq!(first.await.unwrap(), Ok(Decision::Approve));
    ui.sees("\"second\" wants to pair").await;
    ui.types("d").await;
    assert_eq!(second.await.unwrap(), Ok(Decision::Deny));
    ui.sees("Rejected pairing with \"second\"").await;
}

#[tokio::test]
async fn a_withdrawn_sheet_is_dismissed_and_a_late_answer_goes_to_the_next() {
    let (approvals, mut ui) = start();
    let gone = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask(sheet("gone")).await }
    });
    ui.sees("\"gone\" wants to pair").await;
    gone.abort();
    ui.sees("withdrawn").await;
    let next = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask(sheet("next")).await }
    });
    ui.sees("\"next\" wants to pair").await;
    ui.types("d").await;
    assert_eq!(next.await.unwrap(), Ok(Decision::Deny));
}

#[tokio::test]
async fn closed_input_denies_and_never_approves() {
    let (approvals, mut ui) = start();
    let asked = tokio::spawn({
        let a = approvals.clone();
        async move { a.ask(sheet("eof")).await }
    });
    ui.sees("\"eof\" wants to pair").await;
    ui.types("yes please").await; // not an answer
    ui.sees("Type a to accept or d to reject").await;
    drop(ui.keys);
    assert_eq!(asked.await.unwrap(), Ok(Decision::Deny));
}
