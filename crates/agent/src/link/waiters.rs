//! Requests waiting for their answers, matched by `requestID`: each is
//! answered only by the signer it was sent to, and a request nobody waits
//! for any more is withdrawn on the signer.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;
use vmux_link::Fingerprint;
use vmux_link::session::SessionSender;
use vmux_proto::envelope::{Cancel, CertificateResponse, Envelope, ErrorReport, SignResponse};

/// A response routed to the request waiting for it.
#[derive(Debug)]
pub(crate) enum Answer {
    Sign(SignResponse),
    Certificate(CertificateResponse),
    /// An `error` naming the request: it ends there.
    Error(ErrorReport),
}

/// A request waiting for its answer, from the signer it was sent to.
#[derive(Debug)]
struct Waiter {
    signer: Fingerprint,
    answer: oneshot::Sender<Answer>,
}

/// Every request in flight, on any session.
#[derive(Debug, Default)]
pub(crate) struct Waiters(Mutex<HashMap<String, Waiter>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a waiter for `request_id` on `signer`; the guard removes it.
    pub(crate) fn wait_for(
        &self,
        request_id: &str,
        signer: &Fingerprint,
    ) -> (oneshot::Receiver<Answer>, WaiterGuard<'_>) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            request_id.to_owned(),
            Waiter {
                signer: signer.clone(),
                answer: tx,
            },
        );
        let guard = WaiterGuard {
            waiters: self,
            id: request_id.to_owned(),
            sent_on: None,
            answered: false,
        };
        (rx, guard)
    }

    /// Requests in flight on the session with `signer` are lost (protocol
    /// §9.1): their waiters learn it at once instead of waiting out the bound.
    pub(crate) fn session_lost(&self, signer: &Fingerprint) {
        self.lock().retain(|_, w| &w.signer != signer);
    }

    /// Hands `answer` from the signer `from` to the request waiting for it;
    /// only the signer a request was sent to can answer it.
    pub(crate) fn route(&self, from: &Fingerprint, request_id: &str, answer: Answer) {
        let mut waiters = self.lock();
        let waiter = match waiters.get(request_id) {
            Some(w) if &w.signer == from => waiters.remove(request_id),
            Some(_) => {
                tracing::warn!(
                    "a signer answered request {request_id}, which it was not sent; dropped"
                );
                None
            }
            None => None,
        };
        drop(waiters);
        match waiter {
            Some(w) => {
                let _ = w.answer.send(answer);
            }
            // We gave up on it (protocol §9.1): drop it.
            None => tracing::debug!("late response {request_id} dropped"),
        }
    }
}

/// Removes a waiter however its request ends. A request sent but not
/// answered (the bound passed, or the client left and its future was
/// dropped) is withdrawn on the signer with `cancel`, so no sheet is left
/// for an answer with nowhere to go.
pub(crate) struct WaiterGuard<'a> {
    waiters: &'a Waiters,
    id: String,
    sent_on: Option<SessionSender>,
    /// An answer came: nothing to withdraw.
    pub(crate) answered: bool,
}

impl WaiterGuard<'_> {
    /// The request went out on `on`.
    pub(crate) fn sent(&mut self, on: &SessionSender) {
        self.sent_on = Some(on.clone());
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let still_waiting = self.waiters.lock().remove(&self.id).is_some();
        let Some(sender) = self.sent_on.take() else {
            return;
        };
        // Not removed by an answer or by the session ending: withdraw it.
        if self.answered || !still_waiting {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        tracing::info!("request {id} withdrawn: nobody waits for its answer any more");
        runtime.spawn(async move {
            let _ = sender
                .send(Envelope::Cancel(Cancel { request_id: id }))
                .await;
        });
    }
}
