//! One short function per command: load, call the library, add context, map to an exit status.

mod build;
mod build_io;
mod build_progress;
mod completion;
mod container;
mod container_fs;
mod dockerfile;
mod exec;
mod history;
mod images;
mod import;
mod inspect;
mod lint;
mod load;
mod login;
mod manifest;
mod output_file;
mod prune;
mod ps;
mod pull;
mod push;
mod registry;
mod rmi;
mod run;
mod save;
mod system;
mod tag;
mod transfer_view;
mod version;
mod volume;

use strata_exit::ExitStatus;

use strata_store::{DriverKind, Store, StoreOptions};

use crate::cli::{
    BuilderCommand, Cli, Command, ContainerCommand, DockerfileCommand, GlobalOptions, ImageCommand,
    ManifestCommand, SystemCommand,
};
use crate::failure::{Context, Failure};

pub(crate) fn run(cli: Cli) -> Result<ExitStatus, Failure> {
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
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(g, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(g, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Manifest(ManifestCommand::Inspect(a)) => manifest::inspect(a),
        Command::System(SystemCommand::Df(a)) => system::df(g, a),
        Command::System(SystemCommand::Check) => system::check(g),
        Command::System(SystemCommand::Config(a)) => system::config(g, a),
        Command::System(SystemCommand::Prune(a)) => prune::system(g, a),
        Command::Dockerfile(DockerfileCommand::Parse(a)) => dockerfile::parse(a),
        Command::Lint(a) => lint::run(a),
        Command::Version(a) => version::version(a),
        Command::Info(a) => version::info(g, a),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
        Command::Build(a) => build::run(g, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(g, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            run::create_cmd(g, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start_cmd(g, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop_cmd(g, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::restart_cmd(g, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill_cmd(g, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait_cmd(g, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm_cmd(g, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs_cmd(g, a)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::run(g, a),
        Command::Container(ContainerCommand::Inspect(a)) => inspect::containers(g, a),
        Command::Container(ContainerCommand::Prune(a)) => container::prune_cmd(g, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => exec::run(g, a),
        Command::Volume(c) => volume::run(g, c),
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            container_fs::diff(g, a)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            container_fs::commit(g, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            container_fs::export(g, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => container_fs::cp(g, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => container_fs::top(g, a),
        Command::Builder(BuilderCommand::Prune(a)) => prune::build_cache(g, a),
        Command::Registry(c) => registry::run(c),
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

/// The registry client every command that reaches a registry uses: registries.toml and
/// Docker's credentials.
pub(crate) fn registry_client() -> Result<strata_distribution::RegistryClient, Failure> {
    let config =
        strata_distribution::RegistriesConfig::load().context("reading the registry settings")?;
    Ok(strata_distribution::RegistryClient::new(
        config,
        Box::new(strata_distribution::DockerCredentials::from_env()),
    ))
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

/// Docker's prompt before a prune: the answer is read from standard input, terminal or pipe
/// (`yes | strata system prune` works). An input that ends without an answer is refused
/// with a hint, rather than taken as "no" in silence.
#[allow(clippy::print_stderr)]
pub(crate) fn confirm(warning: &str) -> Result<bool, Failure> {
    use std::io::IsTerminal;
    eprint!("WARNING! {warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let read = std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::new(format!("reading the answer from standard input: {e}")))?;
    if read == 0 && !std::io::stdin().is_terminal() {
        eprintln!();
        return Err(
            Failure::new("no answer: standard input ended before confirming")
                .with_hint("pass -f/--force to skip the prompt"),
        );
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
