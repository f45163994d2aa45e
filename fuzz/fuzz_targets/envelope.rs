//! Arbitrary bytes as the plaintext of one Noise transport message, fed to
//! the link envelope decoder. It must never panic, and whatever it accepts
//! must re-encode, canonically, to bytes that decode to the same value; what
//! it refuses, it refuses with an error text short enough to send back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_proto::Error;
use vmux_proto::envelope::limits::MAX_TEXT_LEN;
use vmux_proto::envelope::{Envelope, MAX_ENVELOPE_LEN, peek_request_id};

/// How much longer the canonical form of a decoded `keyList` can be than its
/// input: an unrecognised `providerKind` as short as `""` (1 byte) comes back
/// as `"unknown"` (8 bytes). Every other envelope is held by its field caps
/// far below [`MAX_ENVELOPE_LEN`], and nothing else grows on re-encoding.
const GROWTH_PER_KEY: usize = 7;

fuzz_target!(|data: &[u8]| {
    let _ = peek_request_id(data);
    let envelope = match Envelope::decode(data) {
        Ok(envelope) => envelope,
        // The session sends the error text back as an `error` message.
        Err(e) => {
            assert!(
                e.to_string().len() <= MAX_TEXT_LEN,
                "error text too long: {e}"
            );
            return;
        }
    };
    let bytes = match envelope.encode() {
        Ok(bytes) => bytes,
        Err(Error::TooLong { .. })
            if matches!(&envelope, Envelope::KeyList(list)
                if data.len() + GROWTH_PER_KEY * list.keys.len() > MAX_ENVELOPE_LEN) =>
        {
            return;
        }
        Err(e) => panic!("decoded {envelope:?} but cannot re-encode it: {e}"),
    };
    let again = Envelope::decode(&bytes).expect("re-encoded envelope must decode");
    assert_eq!(again, envelope);
    assert_eq!(
        again.encode().expect("second encode"),
        bytes,
        "encoding is not canonical"
    );
});
