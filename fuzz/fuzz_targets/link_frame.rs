//! Arbitrary bytes as what a signer reads from an unauthenticated peer:
//! link frames, then the Noise responder handshake on their contents. Must
//! never panic, and never accept a handshake from bytes it did not make.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_link::frame::FrameDecoder;
use vmux_link::noise::{self, StaticKeypair};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::default();
    decoder.push(data);
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = decoder.next_frame() {
        assert!(!frame.is_empty() && frame.len() <= noise::MAX_MESSAGE_LEN);
        frames.push(frame);
    }
    // A fixed key keeps runs reproducible.
    let signer = StaticKeypair::from_secret_bytes(Zeroizing::new([7u8; 32]));
    let Some(msg1) = frames.first() else { return };
    let Ok((state, _msg2)) = noise::respond(&signer, msg1) else {
        return;
    };
    if let Some(msg3) = frames.get(1) {
        // Message 3 is encrypted under keys from our fresh ephemeral: random
        // bytes must never authenticate.
        assert!(state.read_msg3(msg3).is_err());
    }
});
