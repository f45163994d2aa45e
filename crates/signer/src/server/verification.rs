//! User verification after an Approve: the passphrase or PIN, three tries,
//! then `verificationFailed`. A signature and a certificate ask alike.

use vmux_proto::envelope::ErrorCode;
use zeroize::Zeroizing;

use super::internal;
use crate::approval::Turn;
use crate::checks::Refusal;

/// Tries at the passphrase or PIN before `verificationFailed`.
pub(super) const VERIFICATION_TRIES: u32 = 3;

/// Asks for the secret (`prompt`; `word` is "passphrase" or "PIN") until
/// `attempt` takes it, at most [`VERIFICATION_TRIES`] times. `attempt`
/// decrypts a key or logs in to a token, so it runs off the runtime; a
/// wrong secret is [`vmux_keys::Error::WrongSecret`].
pub(super) async fn verify<T, F>(
    turn: &mut Turn,
    prompt: &str,
    word: &str,
    mut attempt: F,
) -> Result<T, Refusal>
where
    T: Send + 'static,
    F: FnMut(&Zeroizing<String>) -> vmux_keys::Result<T> + Send + 'static,
{
    for tried in 1..=VERIFICATION_TRIES {
        let secret = ask(turn, prompt).await?;
        // `attempt` goes to the blocking pool and comes back for the next try.
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = attempt(&secret);
            (attempt, result)
        })
        .await
        .map_err(internal)?;
        attempt = back;
        match result {
            Ok(done) => return Ok(done),
            Err(vmux_keys::Error::WrongSecret) => {
                turn.banner(format!("Wrong {word} ({tried} of {VERIFICATION_TRIES})"));
            }
            // Looked at again right before signing (a revocation meanwhile).
            Err(vmux_keys::Error::PolicyDenied(why)) => {
                turn.banner(format!("Refused after approval: {why}"));
                return Err((ErrorCode::PolicyDenied, why));
            }
            Err(e) => {
                // Said here too: the person at the signer can act on it (a
                // TPM in lockout, a token unplugged).
                turn.banner(format!("Could not sign: {e}"));
                return Err(internal(e));
            }
        }
    }
    turn.banner("Verification failed; request refused");
    Err((
        ErrorCode::VerificationFailed,
        "user verification failed three times on the signer".to_owned(),
    ))
}

/// A new secret, typed twice, at most [`VERIFICATION_TRIES`] times: for a
/// key made on first need.
pub(super) async fn choose(turn: &mut Turn, prompt: &str) -> Result<Zeroizing<String>, Refusal> {
    for tried in 1..=VERIFICATION_TRIES {
        let first = ask(turn, prompt).await?;
        if first.is_empty() {
            turn.banner(format!(
                "An empty passphrase is not allowed: it is what you type to approve ({tried} of {VERIFICATION_TRIES})"
            ));
            continue;
        }
        if ask(turn, "Again, to confirm").await? == first {
            return Ok(first);
        }
        turn.banner(format!(
            "The two entries did not match ({tried} of {VERIFICATION_TRIES})"
        ));
    }
    turn.banner("No passphrase chosen; request refused");
    Err((
        ErrorCode::VerificationFailed,
        "no passphrase was chosen on the signer".to_owned(),
    ))
}

/// Runs blocking key work (decrypt, sign, encrypt) off the runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> vmux_keys::Result<T> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(internal)?
        .map_err(|e| match e {
            vmux_keys::Error::PolicyDenied(why) => (ErrorCode::PolicyDenied, why),
            e => internal(e),
        })
}

async fn ask(turn: &mut Turn, prompt: &str) -> Result<Zeroizing<String>, Refusal> {
    turn.secret(prompt).await.map_err(|_| {
        (
            ErrorCode::UserDenied,
            "the signer stopped before verification".to_owned(),
        )
    })
}
