//! The signer's sign-request sheets (plain UI) answered as a person would:
//! approved with the key's passphrase, or denied.

use super::paired::WAIT;
use super::process::Proc;

/// Waits for the next sign-request sheet on `signer` to be shown whole;
/// returns it, from its title to its prompt.
pub fn next_sign_sheet(signer: &mut Proc) -> String {
    signer.expect_span("SSH Sign Request", "[a] approve", WAIT)
}

/// Approves the sheet on screen, types `pass` when asked for the key's
/// passphrase, and waits until the signer says it approved.
pub fn approve_shown(signer: &mut Proc, pass: &str) {
    signer.type_line("a");
    signer.expect("Passphrase for", WAIT);
    signer.type_line(pass);
    signer.expect("Approved remote sign request", WAIT);
}

/// Denies the sheet on screen and waits until the signer says so.
pub fn deny_shown(signer: &mut Proc) {
    signer.type_line("d");
    signer.expect("Denied remote sign request", WAIT);
}

/// Approves the next sign-request sheet ([`approve_shown`]); returns it.
pub fn approve_next(signer: &mut Proc, pass: &str) -> String {
    let sheet = next_sign_sheet(signer);
    approve_shown(signer, pass);
    sheet
}

/// The line of `sheet` holding `label`.
pub fn line<'a>(sheet: &'a str, label: &str) -> &'a str {
    sheet
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label:?} on the sheet:\n{sheet}"))
}
