//! The line-based front end: works on any terminal and from scripts.
//!
//! Every sheet reads one line: `a` accepts/approves, `d` rejects/denies.
//! Anything else asks again. End of input denies whatever is shown and stops
//! the UI, so a closed terminal can never approve.

use std::collections::VecDeque;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::approval::{Decision, Pending, Sheet};

/// Shows sheets from `queue` one at a time on `out`, reading answers from
/// `input`, until the queue or the input closes.
pub async fn run<R, W>(
    mut queue: mpsc::UnboundedReceiver<Pending>,
    input: R,
    mut out: W,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(p) => waiting.push_back(p),
                None => return Ok(()),
            }
        }
        while let Ok(p) = queue.try_recv() {
            waiting.push_back(p);
        }
        let Some(mut current) = waiting.pop_front() else {
            continue;
        };
        if current.answer.is_closed() {
            continue;
        }
        let more = waiting.len();
        out.write_all(render(&current.sheet, more).as_bytes())
            .await?;
        out.flush().await?;
        let decision = loop {
            tokio::select! {
                line = lines.next_line() => match line? {
                    Some(l) => match l.trim() {
                        "a" | "A" => break Some(Decision::Approve),
                        "d" | "D" => break Some(Decision::Deny),
                        _ => {
                            out.write_all(b"Type a to accept or d to reject: ").await?;
                            out.flush().await?;
                        }
                    },
                    None => {
                        let _ = current.answer.send(Decision::Deny);
                        return Ok(());
                    }
                },
                () = current.answer.closed() => break None,
                queued = queue.recv() => if let Some(p) = queued {
                    waiting.push_back(p);
                    out.write_all(format!("\n({} more waiting)\n> ", waiting.len()).as_bytes()).await?;
                    out.flush().await?;
                },
            }
        };
        let banner = match decision {
            Some(d) => {
                let _ = current.answer.send(d);
                banner(&current.sheet, d)
            }
            None => {
                "Request withdrawn before an answer (timed out or the device left)\n".to_owned()
            }
        };
        out.write_all(banner.as_bytes()).await?;
        out.flush().await?;
    }
}

fn render(sheet: &Sheet, more: usize) -> String {
    let waiting = match more {
        0 => String::new(),
        n => format!("({n} more waiting)\n"),
    };
    match sheet {
        Sheet::Pairing {
            device,
            fingerprint,
            code,
        } => format!(
            "\n=== Pairing request ===\n\"{device}\" wants to pair, code {code}\n\
             Key: {fingerprint}\n\
             Accept only if the other device shows the same code.\n{waiting}\
             [a] accept  [d] reject > "
        ),
    }
}

fn banner(sheet: &Sheet, decision: Decision) -> String {
    match (sheet, decision) {
        (Sheet::Pairing { device, .. }, Decision::Approve) => format!("Paired with \"{device}\"\n"),
        (Sheet::Pairing { device, .. }, Decision::Deny) => {
            format!("Rejected pairing with \"{device}\"\n")
        }
    }
}
