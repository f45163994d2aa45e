//! Printing without panicking. `println!` panics when the reader has gone
//! (`vmux key show NAME | head -0`): these macros hand the error back
//! instead, and `main` ends quietly with status 141 on a broken pipe, as a
//! command killed by SIGPIPE would in a shell.

use std::error::Error;
use std::fmt;
use std::io::{self, Write};

/// `println!` that returns the write's `io::Result` instead of panicking.
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `print!` that returns the write's `io::Result` (and flushes: what is
/// printed without a newline is a prompt).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a message nobody can read is dropped.
macro_rules! errln {
    () => {
        $crate::out::error_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::error_line(format_args!($($arg)*))
    };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::error_text(format_args!($($arg)*))
    };
}

pub(crate) fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")
}

pub(crate) fn text(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.flush()
}

pub(crate) fn error_line(args: fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

pub(crate) fn error_text(args: fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.flush());
}

/// Whether `error`, or one it wraps, is a write to a reader that left.
pub(crate) fn is_broken_pipe(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        next = e.source();
    }
    false
}
