//! Re-exec protocol: a multi-threaded caller runs containers through a fresh single-threaded copy of itself.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::exec::{exec, ExecSpec};
use crate::run::{run_watching_parent, ExitStatus};
use crate::spec::{ContainerSpec, OutputMode};

/// Environment variable carrying the JSON [`ContainerSpec`] to the helper process.
pub const HELPER_SPEC_ENV: &str = "STRATA_RUNTIME_SPEC";

/// Environment variable carrying the pid of the process that spawned the helper: when that
/// process dies (Ctrl-C on `strata build`, a crash), the helper SIGKILLs its container and
/// cleans up instead of leaving it running unowned.
pub const HELPER_PARENT_ENV: &str = "STRATA_RUNTIME_PARENT_PID";

/// Environment variable carrying the JSON [`ExecRequest`] to an exec helper process.
pub const EXEC_HELPER_ENV: &str = "STRATA_RUNTIME_EXEC";

/// What an exec helper runs: [`crate::exec`]`(&dir, &id, &spec)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The container's per-container directory ([`ContainerSpec::dir`]).
    pub dir: PathBuf,
    pub id: String,
    pub spec: ExecSpec,
}

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
        .env_remove(EXEC_HELPER_ENV)
        .env(HELPER_SPEC_ENV, json)
        .env(HELPER_PARENT_ENV, std::process::id().to_string());
    Ok(command)
}

/// A command that runs `program` as an exec helper for `request`: the helper calls
/// [`exec_request_from_env`] then [`exec_in_helper`]. The caller sets stdio (the exec'd process
/// inherits the helper's streams, or with a terminal the helper proxies them) and spawns it.
/// The helper's exit code is the process's ([`ExitStatus::code`]) or, with a message on
/// stderr, [`RuntimeError::exit_code`]. Unlike a run helper, it does not die with its parent:
/// like `docker exec`, the process keeps running when the client goes away.
pub fn exec_helper_command(
    program: impl AsRef<OsStr>,
    request: &ExecRequest,
) -> Result<Command, RuntimeError> {
    let json = serde_json::to_string(request).map_err(|source| RuntimeError::HelperSpec {
        var: EXEC_HELPER_ENV,
        source,
    })?;
    let mut command = Command::new(program);
    command
        .env_remove(HELPER_SPEC_ENV)
        .env_remove(HELPER_PARENT_ENV)
        .env(EXEC_HELPER_ENV, json);
    Ok(command)
}

/// The request a parent passed through [`exec_helper_command`], or `None` when this process
/// is not an exec helper.
pub fn exec_request_from_env() -> Result<Option<ExecRequest>, RuntimeError> {
    let Some(json) = std::env::var_os(EXEC_HELPER_ENV) else {
        return Ok(None);
    };
    let request = serde_json::from_slice(json.as_encoded_bytes()).map_err(|source| {
        RuntimeError::HelperSpec {
            var: EXEC_HELPER_ENV,
            source,
        }
    })?;
    Ok(Some(request))
}

/// The exec helper's side: runs the request with the helper's own stdio.
pub fn exec_in_helper(request: &ExecRequest) -> Result<ExitStatus, RuntimeError> {
    exec(&request.dir, &request.id, &request.spec)
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
    fn exec_command_carries_the_request_and_no_run_spec() {
        let mut spec = ExecSpec::new(vec!["id".into(), "-u".into()]);
        spec.terminal = true;
        let request = ExecRequest {
            dir: "/run/strata/c1".into(),
            id: "c1".into(),
            spec,
        };
        let command = exec_helper_command("/proc/self/exe", &request).unwrap();
        let env = |name: &str| {
            command
                .get_envs()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.map(|v| v.to_owned()))
        };
        let json = env(EXEC_HELPER_ENV).flatten().unwrap();
        let back: ExecRequest = serde_json::from_slice(json.as_encoded_bytes()).unwrap();
        assert_eq!(back, request);
        // Removed explicitly, so a helper spawned from a helper cannot run a container instead.
        assert_eq!(env(HELPER_SPEC_ENV), Some(None));
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
