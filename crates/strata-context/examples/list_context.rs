//! Prints the paths of a build context that survive its `.dockerignore`, one per line, as
//! `COPY . /ctx` would place them (used by `tests/differential/dockerignore.sh`).
//!
//! `cargo run -p strata-context --example list_context -- <context dir> [Dockerfile path]`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strata_context::{find_ignore_file, walk, DockerIgnore};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(context) = args.next().map(PathBuf::from) else {
        eprintln!("usage: list_context <context dir> [Dockerfile]");
        return ExitCode::from(2);
    };
    let dockerfile = args
        .next()
        .map_or_else(|| PathBuf::from("Dockerfile"), PathBuf::from);
    match run(&context, &dockerfile) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(context: &Path, dockerfile: &Path) -> Result<(), strata_context::ContextError> {
    let ignore = match find_ignore_file(context, dockerfile) {
        Some(file) => DockerIgnore::read(&file)?,
        None => DockerIgnore::default(),
    };
    for entry in walk(context, &ignore)?.entries() {
        println!("{}", entry.path);
    }
    Ok(())
}
