//! One short function per command: load, call the library, add context, map to an exit status.

mod build;
mod build_io;
mod build_progress;
mod dockerfile;
mod history;
mod images;
mod import;
mod inspect;
mod lint;
mod load;
mod prune;
mod rmi;
mod save;
mod system;
mod tag;

use std::process::ExitCode;

use strata_store::{DriverKind, Store, StoreOptions};

use crate::cli::{
    BuilderCommand, Cli, Command, DockerfileCommand, GlobalOptions, ImageCommand, SystemCommand,
};
use crate::failure::{Context, Failure};

pub(crate) fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let g = &cli.global;
    match cli.command {
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(g, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(g, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(g, a),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => inspect::run(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(g, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(g, a),
        Command::Image(ImageCommand::Prune(a)) => prune::images(g, a),
        Command::System(SystemCommand::Df(a)) => system::df(g, a),
        Command::System(SystemCommand::Check) => system::check(g),
        Command::System(SystemCommand::Prune(a)) => prune::system(g, a),
        Command::Dockerfile(DockerfileCommand::Parse(a)) => dockerfile::parse(a),
        Command::Lint(a) => lint::run(a),
        Command::Build(a) => build::run(g, a),
        Command::Builder(BuilderCommand::Prune(a)) => prune::build_cache(g, a),
    }
}

/// Opens the store every image command works on.
pub(crate) fn open_store(g: &GlobalOptions) -> Result<Store, Failure> {
    let driver = match &g.storage_driver {
        None => None,
        Some(name) => Some(
            name.parse::<DriverKind>()
                .map_err(|e| Failure::new(e).with_hint("--storage-driver takes overlay or vfs"))?,
        ),
    };
    Store::open(&g.root, &StoreOptions { driver })
        .context(format!("opening the store at {}", g.root.display()))
}

/// Reads a file argument, `-` meaning standard input.
pub(crate) fn read_input(path: &str) -> Result<String, Failure> {
    use std::io::Read;
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::new(format!("reading standard input: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| Failure::new(format!("reading {path}: {e}")))
    }
}
