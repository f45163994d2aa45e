//! Arbitrary bytes as an ssh-agent socket stream, fed to the FrameDecoder in
//! chunks chosen by the input. The decoder must agree with a plain
//! reference reader and never buffer more than one capped frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_proto::agent::{FrameDecoder, MAX_MESSAGE_LEN, frame_len};

/// The same stream read the simple way: header, check, body.
fn reference(mut stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    loop {
        let Some((header, rest)) = stream.split_first_chunk::<4>() else {
            return (out, false);
        };
        let Ok(len) = frame_len(*header) else {
            return (out, true);
        };
        let Some((body, rest)) = rest.split_at_checked(len) else {
            return (out, false);
        };
        out.push(body.to_vec());
        stream = rest;
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);

    let mut decoder = FrameDecoder::new();
    let mut bodies = Vec::new();
    let mut failed = false;
    'feed: for piece in stream.chunks(chunk) {
        let mut input = piece;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(body)) => {
                    assert!(!body.is_empty() && body.len() <= MAX_MESSAGE_LEN);
                    bodies.push(body.to_vec());
                }
                Ok(None) => {
                    assert!(input.is_empty(), "decoder stopped with input left");
                    break;
                }
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
        assert!(decoder.pending() <= MAX_MESSAGE_LEN + 4);
    }
    let (expected, expected_err) = reference(stream);
    assert_eq!(bodies, expected);
    assert_eq!(failed, expected_err);
    if failed {
        // The error is sticky.
        let mut more: &[u8] = &[0, 0, 0, 1, 11];
        assert!(decoder.decode(&mut more).is_err());
    }
});
