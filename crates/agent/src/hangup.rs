//! Noticing that a client hung up while its request waits (the approval
//! can take a minute), so the request can be withdrawn on the signer
//! instead of leaving a sheet whose answer has nowhere to go.
//!
//! The socket is peeked, never read: bytes of a next request stay where
//! the connection's reader will find them.

use std::io;

use rustix::net::{RecvFlags, recv};
use tokio::io::Interest;
use tokio::net::unix::OwnedReadHalf;

/// Resolves when the client has closed its end (or the socket failed);
/// pends forever while it is there, including when it already sent more.
pub async fn closed(reader: &OwnedReadHalf) {
    let stream = reader.as_ref();
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let mut probe = [0u8; 1];
        let peeked = stream.try_io(Interest::READABLE, || {
            recv(stream, &mut probe, RecvFlags::PEEK | RecvFlags::DONTWAIT)
                .map(|(n, _)| n)
                .map_err(io::Error::from)
        });
        match peeked {
            // End of stream: the client is gone.
            Ok(0) => return,
            // It sent more while waiting: it is still there. Stop looking
            // (readiness would stay set, and the bytes are not ours).
            Ok(_) => std::future::pending::<()>().await,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}
