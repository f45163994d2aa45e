//! Arbitrary bytes as the agent's answer to `vmux status`, `vmux refresh`
//! or `vmux cert request` (an `SSH_AGENT_EXTENSION_RESPONSE` whose contents
//! are one SSH string of JSON), as the CLI reads it. What parses must
//! re-encode to a status that parses back equal, and print one line per key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_agent::control::Status;
use vmux_proto::agent::{ExtensionResponse, Response};

fn check(contents: &[u8]) {
    let Some(status) = Status::from_contents(contents) else {
        return;
    };
    let again = Status::from_contents(&status.to_contents()).expect("our own status parses");
    assert_eq!(again, status);
    let lines = status.lines();
    assert!(lines.len() >= 3 + status.keys.len());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Response::ExtensionResponse(ExtensionResponse::Other { contents, .. })) =
        Response::decode(data)
    {
        check(&contents);
    }
    check(data);
});
