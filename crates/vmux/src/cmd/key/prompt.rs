//! Reading a passphrase or PIN: from the terminal without echo, or for
//! scripts from `VMUX_PASSPHRASE` / one line of stdin.

use std::io::{BufRead, IsTerminal, Write};

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

use crate::cmd::Result;

/// The environment variable scripts and tests pass the secret in.
pub const ENV: &str = "VMUX_PASSPHRASE";

/// What a new secret may be, said before it is asked for.
pub const ACCEPTED: &str = "Any text but an empty one is accepted (spaces too); it is asked again \
                            at each use, so choose one you can type.";

/// How many times a new secret is asked for before giving up.
const TRIES: usize = 3;

/// Asks for a secret. On a terminal it is typed without echo; a new one
/// (`confirm`) twice, asked again on an empty entry or a mismatch.
/// Otherwise it comes from `VMUX_PASSPHRASE`, else one line of stdin.
pub fn secret(prompt: &str, confirm: bool) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        if let Ok(value) = std::env::var(ENV) {
            return Ok(Zeroizing::new(value));
        }
        return read_line(&stdin);
    }
    if !confirm {
        return ask(prompt);
    }
    errln!("{ACCEPTED}");
    for _ in 0..TRIES {
        let first = ask(prompt)?;
        // Refused at once, not after typing it twice.
        if first.is_empty() {
            errln!("An empty one is not accepted; type at least one character.");
            continue;
        }
        if *ask("Again, to confirm: ")? == *first {
            return Ok(first);
        }
        errln!("The two entries did not match; once more.");
    }
    Err(format!("no new passphrase after {TRIES} tries; run the command again").into())
}

fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let line = {
        // Echo off before the prompt shows: a quick typist's first
        // characters must neither show nor be thrown away.
        let _echo = EchoOff::new(&stdin)?;
        err!("{prompt}");
        std::io::stderr().flush()?;
        read_line(&stdin)
    };
    // The newline typed was not echoed.
    errln!();
    line
}

fn read_line(stdin: &std::io::Stdin) -> Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    if stdin.lock().read_line(&mut line)? == 0 {
        return Err(format!(
            "no passphrase given: type it, or set {ENV} when stdin is not a terminal"
        )
        .into());
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// Turns terminal echo off until dropped.
struct EchoOff<'a> {
    stdin: &'a std::io::Stdin,
    saved: Termios,
}

impl<'a> EchoOff<'a> {
    fn new(stdin: &'a std::io::Stdin) -> Result<Self> {
        let saved = tcgetattr(stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(stdin, OptionalActions::Now, &quiet)?;
        Ok(Self { stdin, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // Best effort: on failure the shell's `reset` brings echo back.
        let _ = tcsetattr(self.stdin, OptionalActions::Now, &self.saved);
    }
}
