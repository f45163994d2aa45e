//! `vmux completions SHELL`: the shell's completion script on stdout,
//! generated from the same command definitions the binary parses with.

use clap::CommandFactory;
use clap_complete::Shell;

use super::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell: bash, zsh or fish.
    #[arg(value_enum)]
    shell: Supported,
}

/// The shells whose scripts are tested to load (tests: completions).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Supported {
    Bash,
    Zsh,
    Fish,
}

pub fn run<C: CommandFactory>(args: Args) -> Result {
    let shell = match args.shell {
        Supported::Bash => Shell::Bash,
        Supported::Zsh => Shell::Zsh,
        Supported::Fish => Shell::Fish,
    };
    let mut command = C::command();
    clap_complete::generate(shell, &mut command, "vmux", &mut std::io::stdout());
    Ok(())
}
