//! The line-based front end: works on any terminal and from scripts.
//!
//! Every sheet reads one line: `a` accepts/approves, `d` rejects/denies;
//! anything else asks again. Secrets are read with echo off on a terminal.
//! Only a line entered after a prompt appeared can answer it: typeahead and
//! late answers to a withdrawn sheet are dropped, so a keystroke meant for one
//! request can never approve the next. End of input denies what is shown and
//! stops the UI: a closed terminal can never approve.

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::approval::{Command, Decision, Sheet};
use crate::ui::text;

/// Where answers come from.
#[derive(Debug)]
pub struct Input {
    lines: mpsc::UnboundedReceiver<(Instant, Zeroizing<String>)>,
    tty: bool,
}

impl Input {
    /// Standard input; echo is turned off for secrets when it is a terminal.
    pub fn stdin() -> Self {
        let tty = rustix::termios::isatty(std::io::stdin());
        Self::spawn(std::io::stdin(), tty)
    }

    /// Any byte stream (tests, scripts).
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Self::spawn(reader, false)
    }

    fn spawn(reader: impl Read + Send + 'static, tty: bool) -> Self {
        let (tx, lines) = mpsc::unbounded_channel();
        // A plain thread: blocking reads never tie up the async runtime, and
        // each line is stamped with when it was entered.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let mut line = Zeroizing::new(String::new());
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let trimmed =
                            Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
                        if tx.send((Instant::now(), trimmed)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self { lines, tty }
    }

    /// The next line entered after `since`; `None` at end of input.
    async fn line_after(&mut self, since: Instant) -> Option<Zeroizing<String>> {
        loop {
            let (at, line) = self.lines.recv().await?;
            if at >= since {
                return Some(line);
            }
        }
    }

    fn echo(&self, on: bool) {
        if !self.tty {
            return;
        }
        let stdin = std::io::stdin();
        if let Ok(mut t) = rustix::termios::tcgetattr(&stdin) {
            t.local_modes.set(rustix::termios::LocalModes::ECHO, on);
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        }
    }
}

impl Drop for Input {
    /// Never leave the person's terminal silent, however the UI ends.
    fn drop(&mut self) {
        self.echo(true);
    }
}

/// Runs the front end until the command queue or the input closes.
pub async fn run<W>(
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut input: Input,
    mut out: W,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut waiting = 0usize;
    while let Some(command) = commands.recv().await {
        match command {
            Command::Waiting(n) => waiting = n,
            Command::Banner(line) => write(&mut out, &format!("{line}\n")).await?,
            Command::Guide(guide) => write(&mut out, &guide.text()).await?,
            Command::Sheet { sheet, mut reply } => {
                // Stamped before writing: the write completes on another
                // thread, and a quick answer can arrive before we resume.
                let shown = Instant::now();
                write(&mut out, &render(&sheet, waiting)).await?;
                let decision = loop {
                    tokio::select! {
                        line = input.line_after(shown) => match line.as_ref().map(|l| l.trim()) {
                            Some("a" | "A") => break Some(Decision::Approve),
                            Some("d" | "D") => break Some(Decision::Deny),
                            Some(_) => write(&mut out, &format!("Type a to {} or d to {}: ", text::yes(&sheet), text::no(&sheet))).await?,
                            None => {
                                let _ = reply.send(Decision::Deny);
                                return Ok(());
                            }
                        },
                        () = reply.closed() => break None,
                        next = commands.recv() => match next {
                            Some(Command::Waiting(n)) => {
                                if n > waiting {
                                    write(&mut out, &format!("\n({n} more waiting)\n> ")).await?;
                                }
                                waiting = n;
                            }
                            Some(Command::Banner(line)) => write(&mut out, &format!("\n{line}\n> ")).await?,
                            // Only the turn's holder sends sheets and secrets,
                            // and it is waiting on this one.
                            Some(_) => {}
                            None => return Ok(()),
                        },
                    }
                };
                match decision {
                    Some(d) => {
                        let _ = reply.send(d);
                    }
                    None => {
                        write(
                            &mut out,
                            "\nWithdrawn before an answer (it expired or the device left).\n",
                        )
                        .await?
                    }
                }
            }
            Command::Secret { prompt, mut reply } => {
                // Echo off before the prompt shows: a quick typist must not
                // see (or leave on screen) the start of the secret.
                input.echo(false);
                let shown = Instant::now();
                write(&mut out, &format!("{prompt}: ")).await?;
                let secret = tokio::select! {
                    line = input.line_after(shown) => line,
                    () = reply.closed() => None,
                };
                input.echo(true);
                write(&mut out, "\n").await?;
                match secret {
                    Some(s) => {
                        let _ = reply.send(s);
                    }
                    None if reply.is_closed() => {}
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(out: &mut W, s: &str) -> std::io::Result<()> {
    out.write_all(s.as_bytes()).await?;
    out.flush().await
}

fn render(sheet: &Sheet, waiting: usize) -> String {
    let mut s = format!("\n=== {} ===\n", text::title(sheet));
    for (label, value) in text::fields(sheet) {
        s.push_str(&format!("{label:<12} {value}\n"));
    }
    if let Some(note) = text::note(sheet) {
        s.push_str(&format!("{note}\n"));
    }
    if waiting > 0 {
        s.push_str(&format!("({waiting} more waiting)\n"));
    }
    s.push_str(&format!(
        "[a] {}  [d] {} > ",
        text::yes(sheet),
        text::no(sheet)
    ));
    s
}
