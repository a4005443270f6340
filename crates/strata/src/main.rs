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

fn main() -> ExitCode {
    // A container's monitor: `strata run`/`start` re-executed this binary for one container.
    if let Some(request) = strata_container::MonitorRequest::from_env() {
        return run_monitor(request);
    }
    // A container's health checker, started by its monitor.
    if let Some(request) = strata_container::HealthRequest::from_env() {
        return match request.and_then(|r| strata_container::run_health_checker(&r)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                failure::Failure::new(failure::chain(&e)).print();
                ExitCode::FAILURE
            }
        };
    }
    // A RUN step's container: this process was re-executed as the runtime's single-threaded
    // helper (see strata-runtime), not by a user.
    match strata_runtime::helper_spec_from_env() {
        Ok(Some(spec)) => return exit_with(strata_runtime::run_in_helper(&spec)),
        Ok(None) => {}
        Err(e) => {
            failure::Failure::new(e).print();
            return ExitCode::from(125);
        }
    }
    // `strata exec`'s process in a running container, through the same kind of helper.
    match strata_runtime::exec_request_from_env() {
        Ok(Some(request)) => return exit_with(strata_runtime::exec_in_helper(&request)),
        Ok(None) => {}
        Err(e) => {
            failure::Failure::new(e).print();
            return ExitCode::from(125);
        }
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with status 0; a bad command line is Docker's 125.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(commands::EXIT_USAGE);
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

/// Exits with a helper's container status (125/126/127 for strata's own failures, as Docker).
fn exit_with(result: Result<strata_runtime::ExitStatus, strata_runtime::RuntimeError>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(125)),
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(125);
            failure::Failure::new(failure::chain(&e)).print();
            ExitCode::from(code)
        }
    }
}

/// Runs a container's monitor and exits with the container's status (125 for strata's own failure).
fn run_monitor(
    request: Result<strata_container::MonitorRequest, strata_container::ContainerError>,
) -> ExitCode {
    match request.and_then(|r| strata_container::run_monitor(&r)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(125)),
        Err(e) => {
            let code = match &e {
                strata_container::ContainerError::StartFailed { exit_code, .. } => {
                    u8::try_from(*exit_code).unwrap_or(125)
                }
                _ => 125,
            };
            failure::Failure::new(failure::chain(&e)).print();
            ExitCode::from(code)
        }
    }
}
