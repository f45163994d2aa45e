//! The files in contrib/ start vmux with arguments of their own (launchd's
//! ProgramArguments, systemd's ExecStart, the autostart entry's Exec):
//! each must be a command line this binary accepts.

#![allow(clippy::panic)]

use std::path::Path;

use clap::Parser;

use crate::Cli;

fn contrib(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| format!("cannot read {}: {e}", path.display()))
}

/// The `<string>`s of the ProgramArguments array of a launchd plist: a
/// small reader for the one shape launchd documents, `<key>` followed by
/// its value; XML's five entities decoded.
fn program_arguments(plist: &str) -> Option<Vec<String>> {
    let after_key = plist.split_once("<key>ProgramArguments</key>")?.1;
    let array = after_key.trim_start().strip_prefix("<array>")?;
    let array = array.split_once("</array>")?.0;
    let mut args = Vec::new();
    let mut rest = array.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix("<string>")?;
        let (value, tail) = inner.split_once("</string>")?;
        args.push(
            value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = tail.trim();
    }
    Some(args)
}

/// The words of the line that starts with `key=`.
fn command_line(file: &str, key: &str) -> Vec<String> {
    file.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|cmd| cmd.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `args` (program first) is a vmux command line the binary accepts.
fn accepted(what: &str, args: &[String]) {
    assert!(
        args.first()
            .is_some_and(|p| p == "vmux" || p.ends_with("/vmux")),
        "{what}: does not run vmux: {args:?}"
    );
    if let Err(e) = Cli::try_parse_from(args) {
        panic!("{what}: `vmux` refuses {args:?}: {e}");
    }
}

#[test]
fn the_launchd_plist_runs_vmux_with_flags_it_takes() {
    let file = "app.vmux.agent.plist";
    let args = program_arguments(&contrib(file)).unwrap_or_default();
    assert_eq!(args.get(1).map(String::as_str), Some("agent"), "{args:?}");
    accepted(file, &args);
}

#[test]
fn systemd_units_and_the_autostart_entry_run_vmux_with_flags_it_takes() {
    for (file, key) in [
        ("vmux-agent.service", "ExecStart="),
        ("vmux-signer.service", "ExecStart="),
        ("vmux-tray.desktop", "Exec="),
    ] {
        accepted(file, &command_line(&contrib(file), key));
    }
}

#[test]
fn the_plist_reader_reads_what_launchd_would() {
    let plist = "<dict><key>Label</key><string>x</string>\n<key>ProgramArguments</key>\n  <array>\n    \
                 <string>/a&amp;b/vmux</string>\n    <string>agent</string>\n  </array></dict>";
    assert_eq!(
        program_arguments(plist),
        Some(vec!["/a&b/vmux".to_owned(), "agent".to_owned()])
    );
    assert_eq!(
        program_arguments("<key>ProgramArguments</key><string>x</string>"),
        None
    );
    assert_eq!(
        program_arguments("<key>ProgramArguments</key><array><integer>1</integer></array>"),
        None
    );
}
