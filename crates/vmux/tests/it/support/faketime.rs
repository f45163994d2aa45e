//! One process's wall clock set apart with libfaketime (LD_PRELOAD), its
//! monotonic clock left alone (see docs/robustness.md).

/// libfaketime's preload library, if installed (apt package `faketime`).
pub fn libfaketime() -> Option<String> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(Result::ok)
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .chain([std::path::PathBuf::from(
            "/usr/lib/faketime/libfaketime.so.1",
        )])
        .find(|p| p.exists())
        .map(|p| p.to_str().unwrap().to_owned())
}

/// An `env …` prefix that runs a command `offset_s` seconds from our clock.
pub fn wrapper(lib: &str, offset_s: i64) -> Vec<String> {
    vec![
        "env".into(),
        format!("LD_PRELOAD={lib}"),
        format!("FAKETIME={offset_s:+}s"),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".into(),
    ]
}
