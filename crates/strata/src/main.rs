//! The `strata` binary: parses the command line, calls the libraries, prints for people.
//! No logic a library should own lives here.

mod cli;
mod cli_container;
mod cli_registry;
mod commands;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;
use strata_exit::{ErrorChain, ExitStatus};

use failure::Failure;

fn main() -> ExitCode {
    // A container's monitor: `strata run`/`start` re-executed this binary for one container.
    if let Some(request) = strata_container::MonitorRequest::from_env() {
        return run_monitor(request).into();
    }
    // A container's health checker, started by its monitor.
    if let Some(request) = strata_container::HealthRequest::from_env() {
        return match request.and_then(|r| strata_container::run_health_checker(&r)) {
            Ok(()) => ExitStatus::Success,
            Err(e) => report(Failure::new(ErrorChain(&e))),
        }
        .into();
    }
    // A RUN step's container: this process was re-executed as the runtime's single-threaded
    // helper (see strata-runtime), not by a user.
    match strata_runtime::helper_spec_from_env() {
        Ok(Some(spec)) => return exit_with(strata_runtime::run_in_helper(&spec)).into(),
        Ok(None) => {}
        Err(e) => return report(failure::strata_failed(Failure::new(e))).into(),
    }
    // `strata exec`'s process in a running container, through the same kind of helper.
    match strata_runtime::exec_request_from_env() {
        Ok(Some(request)) => return exit_with(strata_runtime::exec_in_helper(&request)).into(),
        Ok(None) => {}
        Err(e) => return report(failure::strata_failed(Failure::new(e))).into(),
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with status 0; a bad command line is Docker's 125
        // (its CLI uses it for flag errors on every command).
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitStatus::StrataFailed.into();
        }
    };
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(failure) => report(failure).into(),
    }
}

/// Prints a failure for people and gives the status it exits with.
fn report(failure: Failure) -> ExitStatus {
    failure.print();
    failure.status
}

/// A helper's container status, or (printed) the status of the runtime's own failure:
/// 125/126/127 as Docker.
fn exit_with(
    result: Result<strata_runtime::Termination, strata_runtime::RuntimeError>,
) -> ExitStatus {
    match result {
        Ok(end) => ExitStatus::Container(end.code()),
        Err(e) => report(Failure::new(ErrorChain(&e)).with_status(e.exit_status())),
    }
}

/// Runs a container's monitor: the container's status, or (printed) strata's failure.
fn run_monitor(
    request: Result<strata_container::MonitorRequest, strata_container::ContainerError>,
) -> ExitStatus {
    match request.and_then(|r| strata_container::run_monitor(&r)) {
        Ok(code) => ExitStatus::Container(code),
        Err(e) => report(Failure::new(ErrorChain(&e)).with_status(e.exit_status())),
    }
}
