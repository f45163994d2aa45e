//! The session channel: a shell on a PTY, or a command; our standard
//! streams joined to it; its exit status becomes ours.

use std::io::Read;

use russh::ChannelMsg;
use russh::client::Handle;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::client::Checker;
use crate::terminal::{self, RawMode};
use crate::{Error, Result};

/// OpenSSH's exit status when the remote side gave none (killed by a
/// signal, or the connection dropped).
pub const NO_STATUS: u8 = 255;

/// What to run.
#[derive(Debug)]
pub enum Run {
    /// The login shell; on a PTY when standard input is a terminal.
    Shell,
    /// A command line, without a PTY (as `ssh host -- cmd`).
    Command(String),
}

/// Opens the session channel, runs `run`, and relays until it closes.
/// Returns the remote exit status.
pub async fn run(handle: &Handle<Checker>, run: Run) -> Result<u8> {
    let mut channel = handle.channel_open_session().await?;
    let mut raw = None;
    match run {
        Run::Shell => {
            if terminal::stdin_is_tty() {
                let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
                let (cols, rows, px_w, px_h) = terminal::size();
                channel
                    .request_pty(false, &term, cols, rows, px_w, px_h, &[])
                    .await?;
                // Raw from here on: every key, ^C included, goes to the
                // remote side. The guard restores the mode on every exit.
                raw = RawMode::enter().map_err(Error::Terminal)?;
            } else {
                say!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
            }
            channel.request_shell(true).await?;
        }
        Run::Command(line) => channel.exec(true, line).await?,
    }

    let mut input = stdin_reader();
    let mut resized = signal(SignalKind::window_change()).map_err(Error::Terminal)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(Error::Terminal)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Terminal)?;
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut status: Option<u8> = None;
    let mut input_open = true;
    loop {
        tokio::select! {
            chunk = input.recv(), if input_open => match chunk {
                Some(bytes) => channel.data_bytes(bytes).await?,
                None => {
                    input_open = false;
                    channel.eof().await?;
                }
            },
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    stdout.write_all(&data).await.map_err(Error::Terminal)?;
                    stdout.flush().await.map_err(Error::Terminal)?;
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    stderr.write_all(&data).await.map_err(Error::Terminal)?;
                    stderr.flush().await.map_err(Error::Terminal)?;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    // Exit statuses are 8 bits; a larger one is truncated
                    // as a shell would.
                    status = Some((exit_status & 0xff) as u8);
                }
                Some(ChannelMsg::ExitSignal { signal_name, error_message, .. }) => {
                    drop(raw.take());
                    // Our own line, so the server's words in it are escaped.
                    say!(
                        "vmux: the remote command was killed by signal {signal_name:?} {}",
                        vmux_proto::text::escape(&error_message)
                    );
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            _ = resized.recv() => {
                let (cols, rows, px_w, px_h) = terminal::size();
                let _ = channel.window_change(cols, rows, px_w, px_h).await;
            },
            _ = hangup.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    drop(raw);
    let _ = channel.close().await;
    Ok(status.unwrap_or(NO_STATUS))
}

/// Standard input, read on a thread of its own (a blocking read that must
/// not hold up the runtime when we exit) and handed over in chunks; the
/// channel closes at end of input.
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).unwrap_or_default().to_vec();
                    if tx.blocking_send(chunk).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}
