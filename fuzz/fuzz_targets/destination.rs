//! Arbitrary text as the destination of `vmux ssh` (`[user@]host[:port]`).
//! A destination that parses prints as text that parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_ssh::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(target) = Target::parse(text) else {
        return;
    };
    let printed = target.to_string();
    let again = Target::parse(&printed).expect("a printed destination parses");
    assert_eq!(again, target, "{text:?} printed as {printed:?}");
});
