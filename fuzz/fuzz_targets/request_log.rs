//! Arbitrary bytes as the agent's `agent-log.jsonl` (read by `vmux log`)
//! and the signer's `signer-log.jsonl`. Every line is an entry or counted as
//! bad; every entry re-encodes to a line that reads back the same.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("vmux-fuzz-request-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("log.jsonl")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the log");
    let lines = std::str::from_utf8(data)
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .ok();

    match vmux_agent::request_log::read(path) {
        Ok((entries, bad)) => {
            assert_eq!(Some(entries.len() + bad), lines);
            for e in entries {
                let line = serde_json::to_string(&e).expect("encode");
                assert!(!line.contains('\n'));
                let again: vmux_agent::request_log::Entry =
                    serde_json::from_str(&line).expect("decode");
                assert_eq!(serde_json::to_string(&again).expect("encode"), line);
            }
        }
        // Only a file that is not UTF-8 fails as a whole.
        Err(_) => assert_eq!(lines, None),
    }

    match vmux_signer::log::Log::read(path) {
        Ok(entries) => {
            assert!(Some(entries.len()) <= lines);
            for e in entries {
                let _ = e.human();
                let line = serde_json::to_string(&e).expect("encode");
                assert_eq!(
                    serde_json::from_str::<vmux_signer::log::Entry>(&line).expect("decode"),
                    e
                );
            }
        }
        Err(_) => assert_eq!(lines, None),
    }
});
