//! One line per event when a sheet or prompt is withdrawn. The request's
//! pipeline says why in a status line of its own (it expired, its client
//! left, the device was removed), sent right after it withdrew the sheet;
//! a front end that said "withdrawn" too would print two lines for one
//! event. So a front end waits a moment for that line and shows it alone,
//! and says its own only when none comes.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::approval::Command;

/// How long the pipeline's line may take after the withdrawal (a log
/// line is written in between, on a machine that may be busy). It holds
/// back nothing in practice: the pipeline's line ends the wait.
pub const GRACE: Duration = Duration::from_secs(2);

/// After a withdrawal: the line to show (the pipeline's first status line
/// within [`GRACE`], else `own`), and every other command that came
/// meanwhile, to be handled next, in order.
pub async fn settle(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    own: String,
) -> (String, VecDeque<Command>) {
    let mut stash = VecDeque::new();
    let deadline = tokio::time::Instant::now() + GRACE;
    loop {
        match tokio::time::timeout_at(deadline, commands.recv()).await {
            Ok(Some(Command::Banner(line))) => return (line, stash),
            Ok(Some(other)) => stash.push_back(other),
            // Closed, or no line came: ours, and the queue's end is seen next.
            Ok(None) | Err(_) => return (own, stash),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pipelines_line_replaces_ours_and_the_rest_keeps_its_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(Command::Waiting(2)).unwrap();
        tx.send(Command::Banner("Request expired".into())).unwrap();
        tx.send(Command::Waiting(1)).unwrap();
        let (line, stash) = settle(&mut rx, "Withdrawn".into()).await;
        assert_eq!(line, "Request expired");
        assert!(matches!(
            stash.iter().collect::<Vec<_>>()[..],
            [Command::Waiting(2)]
        ));
        assert!(matches!(rx.recv().await, Some(Command::Waiting(1))));
    }

    #[tokio::test]
    async fn without_a_line_from_the_pipeline_ours_is_said() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
        let started = std::time::Instant::now();
        let (line, stash) = settle(&mut rx, "Withdrawn".into()).await;
        assert_eq!(line, "Withdrawn");
        assert!(stash.is_empty());
        assert!(started.elapsed() >= GRACE);
        drop(tx);
    }
}
