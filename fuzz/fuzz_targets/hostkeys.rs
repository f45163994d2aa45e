//! Arbitrary bytes as the signer's named host keys: `hostkeys.json` as read
//! back (after a crash or a hand edit), or a known_hosts file given to
//! `vmux hostkeys import`. A list that loads saves and loads back equal;
//! every name on a list, however it got there, is one a person can read
//! (no control or format characters, no patterns); importing the same file
//! twice adds nothing the second time; a key on the list is named by it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmux_signer::hostkeys::{HostKeys, Naming, check_name};

fn names_are_readable(list: &HostKeys) {
    for h in list.list() {
        assert!(check_name(&h.name).is_ok(), "{:?}", h.name);
        let blob = h.key.to_bytes().expect("a listed key encodes");
        assert!(matches!(list.naming(&blob, None), Naming::Known(_)));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let Ok(list) = HostKeys::from_json(rest) else {
            return;
        };
        names_are_readable(&list);
        let again = HostKeys::from_json(&list.to_json()).expect("what we save loads");
        assert_eq!(again, list);
        return;
    }
    let text = String::from_utf8_lossy(rest);
    let mut list = HostKeys::default();
    let Ok(first) = list.import(&text, 1) else {
        return;
    };
    names_are_readable(&list);
    let second = list
        .import(&text, 2)
        .expect("a second import of what fitted");
    assert_eq!(second.added, 0, "{first:?} then {second:?}");
    assert_eq!(
        HostKeys::from_json(&list.to_json()).expect("an imported list saves"),
        list
    );
});
