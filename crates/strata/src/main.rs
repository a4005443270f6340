//! The `strata` binary: parses the command line, calls the libraries, prints for people.
//! No logic a library should own lives here.

mod cli;
mod commands;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}
