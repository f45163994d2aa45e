//! `vmux man DIR`: the manual pages, `vmux.1` and one `vmux-SUB.1` per
//! subcommand (and per sub-subcommand, `vmux-key-new.1`), written into DIR.

use std::path::PathBuf;

use clap::CommandFactory;

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the pages (created if missing), e.g.
    /// ~/.local/share/man/man1.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run<C: CommandFactory>(args: Args) -> Result {
    let dir = &args.dir;
    let err =
        |e: std::io::Error| format!("cannot write the manual pages to {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(err)?;
    let command = C::command();
    let pages = count(&command);
    clap_mangen::generate_to(command, dir).map_err(err)?;
    println!("Wrote {pages} manual pages to {}", dir.display());
    Ok(())
}

/// One page for `command` and one for each subcommand under it, as
/// `generate_to` writes them (no `help` pages, none for hidden ones).
fn count(command: &clap::Command) -> usize {
    1 + command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(count)
        .sum::<usize>()
}
