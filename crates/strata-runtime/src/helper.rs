//! Re-exec protocol: a multi-threaded caller runs containers through a fresh single-threaded copy of itself.

use std::ffi::OsStr;
use std::process::Command;

use crate::error::RuntimeError;
use crate::run::{run_watching_parent, ExitStatus};
use crate::spec::{ContainerSpec, OutputMode};

/// Environment variable carrying the JSON [`ContainerSpec`] to the helper process.
pub const HELPER_SPEC_ENV: &str = "STRATA_RUNTIME_SPEC";

/// Environment variable carrying the pid of the process that spawned the helper: when that
/// process dies (Ctrl-C on `strata build`, a crash), the helper SIGKILLs its container and
/// cleans up instead of leaving it running unowned.
pub const HELPER_PARENT_ENV: &str = "STRATA_RUNTIME_PARENT_PID";

/// A command that runs `program` with `spec` in its environment.
///
/// The caller adds what makes `program` act as a helper (for strata, a hidden subcommand; for
/// tests, the test binary itself), sets stdio (the container inherits the helper's streams) and
/// spawns it. The helper's exit code is the container's ([`ExitStatus::code`]), or, with a
/// message on stderr, [`RuntimeError::exit_code`] (125, 126, 127 like Docker) when it failed.
pub fn helper_command(
    program: impl AsRef<OsStr>,
    spec: &ContainerSpec,
) -> Result<Command, RuntimeError> {
    spec.validate()?;
    let json = serde_json::to_string(spec).map_err(|source| RuntimeError::HelperSpec {
        var: HELPER_SPEC_ENV,
        source,
    })?;
    let mut command = Command::new(program);
    command
        .env(HELPER_SPEC_ENV, json)
        .env(HELPER_PARENT_ENV, std::process::id().to_string());
    Ok(command)
}

/// The spec a parent passed through [`helper_command`], or `None` when this process is not a helper.
pub fn helper_spec_from_env() -> Result<Option<ContainerSpec>, RuntimeError> {
    let Some(json) = std::env::var_os(HELPER_SPEC_ENV) else {
        return Ok(None);
    };
    let spec = serde_json::from_slice(json.as_encoded_bytes()).map_err(|source| {
        RuntimeError::HelperSpec {
            var: HELPER_SPEC_ENV,
            source,
        }
    })?;
    Ok(Some(spec))
}

/// The helper's side: runs `spec` with the helper's own stdio (capture is the parent's job, on
/// the pipes it gave the helper) and returns the container's exit status. Signals the helper
/// receives are forwarded to the container; if the parent named in [`HELPER_PARENT_ENV`]
/// dies, the container is killed.
pub fn run_in_helper(spec: &ContainerSpec) -> Result<ExitStatus, RuntimeError> {
    let mut spec = spec.clone();
    for stream in [&mut spec.stdio.stdout, &mut spec.stdio.stderr] {
        if *stream == OutputMode::Capture {
            *stream = OutputMode::Inherit;
        }
    }
    let parent = std::env::var(HELPER_PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    Ok(run_watching_parent(&spec, parent)?.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_carries_the_spec_as_json() {
        let spec = ContainerSpec::new("h1", "/r", "/d", vec!["echo".into(), "hi".into()]);
        let command = helper_command("/proc/self/exe", &spec).unwrap();
        let json = command
            .get_envs()
            .find(|(k, _)| *k == HELPER_SPEC_ENV)
            .and_then(|(_, v)| v)
            .unwrap();
        let back: ContainerSpec = serde_json::from_slice(json.as_encoded_bytes()).unwrap();
        assert_eq!(back, spec);
        let parent = command
            .get_envs()
            .find(|(k, _)| *k == HELPER_PARENT_ENV)
            .and_then(|(_, v)| v)
            .unwrap();
        assert_eq!(
            parent.to_str(),
            Some(std::process::id().to_string().as_str())
        );
    }

    #[test]
    fn command_refuses_an_invalid_spec() {
        let spec = ContainerSpec::new("bad/id", "/r", "/d", vec!["true".into()]);
        assert!(matches!(
            helper_command("/bin/true", &spec),
            Err(RuntimeError::InvalidSpec { .. })
        ));
    }
}
