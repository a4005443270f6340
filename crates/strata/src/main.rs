//! The `strata` binary: parses the command line, calls the libraries, prints for people.
//! No logic a library should own lives here.

mod cli;
mod commands;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A RUN step's container: this process was re-executed as the runtime's single-threaded
    // helper (see strata-runtime), not by a user.
    match strata_runtime::helper_spec_from_env() {
        Ok(Some(spec)) => return run_helper(&spec),
        Ok(None) => {}
        Err(e) => {
            failure::Failure::new(e).print();
            return ExitCode::from(125);
        }
    }
    // `strata exec`'s process in a running container, through the same kind of helper.
    match strata_runtime::exec_request_from_env() {
        Ok(Some(request)) => return exec_helper(&request),
        Ok(None) => {}
        Err(e) => {
            failure::Failure::new(e).print();
            return ExitCode::from(125);
        }
    }
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

/// Runs the container and exits with its status (125/126/127 for strata's own failures, as Docker).
fn run_helper(spec: &strata_runtime::ContainerSpec) -> ExitCode {
    match strata_runtime::run_in_helper(spec) {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(125)),
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(125);
            failure::Failure::new(failure::chain(&e)).print();
            ExitCode::from(code)
        }
    }
}

/// Runs the exec'd process and exits with its status (126 when it cannot start, as Docker).
fn exec_helper(request: &strata_runtime::ExecRequest) -> ExitCode {
    match strata_runtime::exec_in_helper(request) {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(125)),
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(125);
            failure::Failure::new(failure::chain(&e)).print();
            ExitCode::from(code)
        }
    }
}
