//! Re-exec protocol: a multi-threaded caller runs containers through a fresh single-threaded copy of itself.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::exec::{exec, ExecSpec};
use crate::run::{run_watching_parent, Termination};
use crate::spec::{ContainerSpec, OutputMode};

/// Environment variable naming the file that carries the JSON [`ContainerSpec`] to the
/// helper process. A file, not the variable itself: Linux caps one environment string at
/// 128 KiB, and an image's environment alone can be larger.
pub const HELPER_SPEC_ENV: &str = "STRATA_RUNTIME_SPEC_FILE";

/// Environment variable carrying the pid of the process that spawned the helper: when that
/// process dies (Ctrl-C on `strata build`, a crash), the helper SIGKILLs its container and
/// cleans up instead of leaving it running unowned.
pub const HELPER_PARENT_ENV: &str = "STRATA_RUNTIME_PARENT_PID";

/// Environment variable naming the file that carries the JSON [`ExecRequest`] to an exec
/// helper process.
pub const EXEC_HELPER_ENV: &str = "STRATA_RUNTIME_EXEC_FILE";

/// What an exec helper runs: [`crate::exec`]`(&dir, &id, &spec)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The container's per-container directory ([`ContainerSpec::dir`]).
    pub dir: PathBuf,
    pub id: String,
    pub spec: ExecSpec,
}

/// A command that runs `program` as a helper for `spec`.
///
/// The spec is written to `<spec.dir>/helper-spec.json` (mode 0600, read and removed by the
/// helper). The caller adds what makes `program` act as a helper (for strata, a hidden
/// subcommand; for tests, the test binary itself), sets stdio (the helper copies the
/// container's streams to and from its own) and spawns it. The helper's exit code is the
/// container's ([`Termination::code`]), or, with a message on stderr,
/// [`RuntimeError::exit_status`] (125, 126, 127 like Docker) when it failed.
pub fn helper_command(
    program: impl AsRef<OsStr>,
    spec: &ContainerSpec,
) -> Result<Command, RuntimeError> {
    spec.validate()?;
    let path = spec.dir.join("helper-spec.json");
    write_request(&path, spec, HELPER_SPEC_ENV)?;
    let mut command = Command::new(program);
    command
        .env_remove(EXEC_HELPER_ENV)
        .env(HELPER_SPEC_ENV, &path)
        .env(HELPER_PARENT_ENV, std::process::id().to_string());
    Ok(command)
}

/// A command that runs `program` as an exec helper for `request`: the helper calls
/// [`exec_request_from_env`] then [`exec_in_helper`]. The request is written to
/// `<request.dir>/exec-request-<our pid>.json` (0600, removed by the helper). The caller sets
/// stdio and spawns or execs it. The helper's exit code is the process's
/// ([`Termination::code`]) or, with a message on stderr, [`RuntimeError::exit_status`]. Unlike a
/// run helper, it does not die with its parent: like `docker exec`, the process keeps running
/// when the client goes away.
pub fn exec_helper_command(
    program: impl AsRef<OsStr>,
    request: &ExecRequest,
) -> Result<Command, RuntimeError> {
    let path = request
        .dir
        .join(format!("exec-request-{}.json", std::process::id()));
    write_request(&path, request, EXEC_HELPER_ENV)?;
    let mut command = Command::new(program);
    command
        .env_remove(HELPER_SPEC_ENV)
        .env_remove(HELPER_PARENT_ENV)
        .env(EXEC_HELPER_ENV, &path);
    Ok(command)
}

/// The request a parent passed through [`exec_helper_command`], or `None` when this process
/// is not an exec helper.
pub fn exec_request_from_env() -> Result<Option<ExecRequest>, RuntimeError> {
    read_request(EXEC_HELPER_ENV)
}

/// The exec helper's side: runs the request with the helper's own stdio.
pub fn exec_in_helper(request: &ExecRequest) -> Result<Termination, RuntimeError> {
    exec(&request.dir, &request.id, &request.spec)
}

/// The spec a parent passed through [`helper_command`], or `None` when this process is not a helper.
pub fn helper_spec_from_env() -> Result<Option<ContainerSpec>, RuntimeError> {
    read_request(HELPER_SPEC_ENV)
}

/// Writes `value` as JSON to `path`, readable by root only (it holds the environment).
fn write_request(
    path: &Path,
    value: &impl Serialize,
    var: &'static str,
) -> Result<(), RuntimeError> {
    let write_err = |source| RuntimeError::Write {
        path: path.to_owned(),
        source,
    };
    let json =
        serde_json::to_vec(value).map_err(|source| RuntimeError::HelperSpec { var, source })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    // A leftover of a killed helper would keep its old mode: start afresh.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    file.write_all(&json).map_err(write_err)
}

/// Reads (then removes) the request file named by `var`, if this process was given one. The
/// variable is removed too, so nothing this process starts takes itself for a helper.
fn read_request<T: serde::de::DeserializeOwned>(
    var: &'static str,
) -> Result<Option<T>, RuntimeError> {
    let Some(path) = std::env::var_os(var) else {
        return Ok(None);
    };
    std::env::remove_var(var);
    let path = PathBuf::from(path);
    let read_err = |source| RuntimeError::Read {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(read_err)?;
    let mut json = Vec::new();
    file.read_to_end(&mut json).map_err(read_err)?;
    let _ = std::fs::remove_file(&path);
    let value =
        serde_json::from_slice(&json).map_err(|source| RuntimeError::HelperSpec { var, source })?;
    Ok(Some(value))
}

/// The helper's side: runs `spec` with the helper's own stdio (capture is the parent's job, on
/// the pipes it gave the helper) and returns the container's exit status. Signals the helper
/// receives are forwarded to the container; if the parent named in [`HELPER_PARENT_ENV`]
/// dies, the container is killed.
pub fn run_in_helper(spec: &ContainerSpec) -> Result<Termination, RuntimeError> {
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

    fn env_of(command: &Command, name: &str) -> Option<Option<std::ffi::OsString>> {
        command
            .get_envs()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.map(|v| v.to_owned()))
    }

    #[test]
    fn command_carries_the_spec_in_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = ContainerSpec::new(
            "h1",
            "/r",
            tmp.path().join("c"),
            vec!["echo".into(), "hi".into()],
        );
        // Far more than one environment string may hold (128 KiB).
        spec.process
            .env
            .push(format!("BIG={}", "x".repeat(300 << 10)));
        let command = helper_command("/proc/self/exe", &spec).unwrap();
        let path = PathBuf::from(env_of(&command, HELPER_SPEC_ENV).flatten().unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back: ContainerSpec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, spec);
        let parent = env_of(&command, HELPER_PARENT_ENV).flatten().unwrap();
        assert_eq!(
            parent.to_str(),
            Some(std::process::id().to_string().as_str())
        );
    }

    #[test]
    fn exec_command_carries_the_request_and_no_run_spec() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = ExecSpec::new(vec!["id".into(), "-u".into()]);
        spec.terminal = true;
        let request = ExecRequest {
            dir: tmp.path().to_owned(),
            id: "c1".into(),
            spec,
        };
        let command = exec_helper_command("/proc/self/exe", &request).unwrap();
        let path = PathBuf::from(env_of(&command, EXEC_HELPER_ENV).flatten().unwrap());
        let back: ExecRequest = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(back, request);
        // Removed explicitly, so a helper spawned from a helper cannot run a container instead.
        assert_eq!(env_of(&command, HELPER_SPEC_ENV), Some(None));
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
