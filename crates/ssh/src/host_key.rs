//! Deciding whether to trust the server's host key, in OpenSSH's words.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use ssh_key::{HashAlg, PublicKey};

use crate::known_hosts::{KnownHosts, Verdict, type_name};

/// What the person or the files decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Known, or newly trusted by the person.
    Trusted,
    /// Refused; the reason has been printed.
    Refused,
}

/// Checks `key` presented by `name` against `known`, asking the person on
/// the terminal about an unknown key and recording it if they agree.
/// Messages go to standard error, as OpenSSH's do.
pub fn decide(known: &mut KnownHosts, name: &str, key: &PublicKey) -> Trust {
    let kind = type_name(&key.algorithm());
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    match known.check(name, key) {
        Verdict::Known => Trust::Trusted,
        Verdict::Revoked { path, line } => {
            say!(
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 @       WARNING: REVOKED HOST KEY DETECTED!               @\n\
                 @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 The {kind} host key for {name} is marked as revoked.\n\
                 This could mean that a stolen key is being used to\n\
                 impersonate this host.\n\
                 Revoked key: {}:{line}\n\
                 Host key verification failed.",
                path.display()
            );
            Trust::Refused
        }
        Verdict::Changed {
            offending: (path, line),
        } => {
            say!(
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
                 Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n\
                 It is also possible that a host key has just been changed.\n\
                 The fingerprint for the {kind} key sent by the remote host is\n\
                 {fingerprint}.\n\
                 Please contact your system administrator.\n\
                 Add correct host key in {user} to get rid of this message.\n\
                 Offending {kind} key in {offending}:{line}\n\
                 Host key for {name} has changed and you have requested strict checking.\n\
                 Host key verification failed.",
                user = known.user_file().display(),
                offending = path.display(),
            );
            Trust::Refused
        }
        Verdict::Unknown { other_types } => {
            let mut question = format!(
                "The authenticity of host '{name}' can't be established.\n\
                 {kind} key fingerprint is {fingerprint}.\n"
            );
            if other_types.is_empty() {
                question.push_str("This key is not known by any other names.\n");
            } else {
                let known: Vec<&str> = other_types.iter().map(type_name).collect();
                question.push_str(&format!(
                    "This host is known by other key types ({}), not {kind}.\n",
                    known.join(", ")
                ));
            }
            question
                .push_str("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
            match ask(&question, &fingerprint.to_string()) {
                Some(true) => match known.add(name, key) {
                    Ok(()) => {
                        say!(
                            "Warning: Permanently added '{name}' ({kind}) to the list of known hosts."
                        );
                        Trust::Trusted
                    }
                    Err(e) => {
                        // Trusted for this connection; say why it will ask again.
                        say!("Failed to add the host to the list of known hosts ({e}).");
                        Trust::Trusted
                    }
                },
                Some(false) => {
                    say!("Host key verification failed.");
                    Trust::Refused
                }
                None => {
                    say!(
                        "No terminal to ask whether to trust '{name}' ({kind} {fingerprint}).\n\
                         Run vmux ssh once from a terminal, or add the key to {} yourself.\n\
                         Host key verification failed.",
                        known.user_file().display()
                    );
                    Trust::Refused
                }
            }
        }
    }
}

/// Asks on the controlling terminal until the answer is yes, no or the
/// fingerprint. `None` when there is no terminal to ask on.
fn ask(question: &str, fingerprint: &str) -> Option<bool> {
    let tty = Path::new("/dev/tty");
    let mut out = std::fs::OpenOptions::new().write(true).open(tty).ok()?;
    let mut input = BufReader::new(std::fs::File::open(tty).ok()?);
    out.write_all(question.as_bytes()).ok()?;
    loop {
        let mut line = String::new();
        // Host key questions are short; a runaway line is not an answer.
        let read = input.by_ref().take(1024).read_line(&mut line).ok()?;
        if read == 0 {
            return Some(false);
        }
        match line.trim() {
            "yes" => return Some(true),
            "no" => return Some(false),
            answer if answer == fingerprint => return Some(true),
            _ => out
                .write_all(b"Please type 'yes', 'no' or the fingerprint: ")
                .ok()?,
        }
    }
}
