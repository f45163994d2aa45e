//! Arbitrary bytes as an ssh-agent message body, both directions, plus the
//! sign-data classifier. Whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_proto::agent::{Request, Response, classify};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let again = req.encode().expect("a decoded request re-encodes");
        assert_eq!(again, data, "request round trip: {req:?}");
    }
    if let Ok(resp) = Response::decode(data) {
        let again = resp.encode().expect("a decoded response re-encodes");
        assert_eq!(again, data, "response round trip: {resp:?}");
    }
    // Sign data is arbitrary; classification must never fail or panic,
    // whether the input is the whole data or a sign request's payload.
    let _ = classify(data);
    if let Ok(Request::SignRequest(sign)) = Request::decode(data) {
        let _ = classify(&sign.data);
    }
});
