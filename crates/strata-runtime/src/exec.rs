//! `exec`: runs an additional process in a running container that another process created.

use std::fs;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{Process, Spec};
use rustix::process::Pid;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::executor::ContainerExecutor;
use crate::observer::{RunObserver, StdioRouter};
use crate::run::{
    ensure_single_threaded, prepare_runtime_process, with_container_ends, Termination,
};
use crate::spec::{InputMode, StdioSpec, User, TERMINAL_TERM_ENV};
use crate::stdio::{container_stdio, stdout_is_stderr, Route};
use crate::supervise::{supervise, SignalGuard, Streams, Until};
use crate::terminal::{ConsoleSocket, PtyProxy};
use crate::user::ResolvedUser;

/// What to run in a running container (`strata exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub args: Vec<String>,
    /// `KEY=value` entries replacing or added to the container's own environment.
    pub env: Vec<String>,
    /// Absolute working directory; the container's when `None`.
    pub cwd: Option<String>,
    /// Identity of the process; the container's when `None`.
    pub user: Option<User>,
    /// A pseudo-terminal for the process (`-t`), proxied to this process's stdio.
    #[serde(default)]
    pub terminal: bool,
    /// `Inherit` with `-i`, `Null` without.
    pub stdin: InputMode,
}

impl ExecSpec {
    /// `args` as the container's user, in its working directory, with no stdin and no terminal.
    pub fn new(args: Vec<String>) -> Self {
        Self {
            args,
            env: Vec::new(),
            cwd: None,
            user: None,
            terminal: false,
            stdin: InputMode::Null,
        }
    }

    /// Runs as `resolved` (`-u`) with `HOME` set to its home directory, as Docker does, unless
    /// `env` already sets one.
    pub fn apply_user(&mut self, resolved: &ResolvedUser) {
        self.user = Some(resolved.user.clone());
        if !self.env.iter().any(|e| e.starts_with("HOME=")) {
            self.env.push(format!("HOME={}", resolved.home));
        }
    }

    fn validate(&self, id: &str) -> Result<(), RuntimeError> {
        let invalid = |reason: String| RuntimeError::InvalidExec {
            id: id.to_owned(),
            reason,
        };
        if self.args.is_empty() {
            return Err(invalid("no command given".to_owned()));
        }
        if let Some(cwd) = self.cwd.as_deref().filter(|cwd| !cwd.starts_with('/')) {
            return Err(invalid(format!(
                "working directory {cwd:?} is not absolute"
            )));
        }
        if let Some(entry) = self.env.iter().find(|e| !e.contains('=')) {
            return Err(invalid(format!("environment entry {entry:?} has no '='")));
        }
        Ok(())
    }
}

/// Runs `spec` in the running container `id` whose per-container directory is `dir` (the
/// [`crate::ContainerSpec::dir`] it was created with), and returns the process's exit status.
///
/// The process joins the container's namespaces and cgroup, with the container's capabilities,
/// environment (plus `spec.env`), user and working directory unless `spec` overrides them.
/// Its stdout and stderr are pipes copied to this process's (our stdin copied into its stdin
/// pipe with [`InputMode::Inherit`]); with a terminal, the pty is proxied to them as
/// [`crate::run`] does. Output still unread when the process exits is drained, then the
/// exec returns even if background children keep the pipes open.
/// Signals this process receives are forwarded to it. Like [`crate::run`] it must be called
/// from a single-threaded process (see [`crate::exec_helper_command`]); a command that cannot
/// be started is [`RuntimeError::Exec`], a container that is not running
/// [`RuntimeError::NotRunning`].
pub fn exec(dir: &Path, id: &str, spec: &ExecSpec) -> Result<Termination, RuntimeError> {
    ensure_single_threaded()?;
    spec.validate(id)?;
    let state_root = dir.join("state");
    let container = load_running(&state_root, id)?;
    let config_path = container.bundle().join("config.json");
    let config = Spec::load(&config_path).map_err(|source| RuntimeError::ContainerConfig {
        path: config_path.clone(),
        source,
    })?;
    let container_process = config
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidExec {
            id: id.to_owned(),
            reason: format!("{} has no process", config_path.display()),
        })?;
    let process = exec_process(container_process, spec);
    let process_file = ProcessFile::write(dir, &process)?;

    let exec_err = |source| RuntimeError::Exec {
        id: id.to_owned(),
        source: Box::new(source),
    };
    let terminal_err = |source| RuntimeError::Terminal {
        id: id.to_owned(),
        source,
    };
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(&state_root)
        .map_err(exec_err)?
        .with_executor(ContainerExecutor {
            seccomp: config.linux().as_ref().and_then(|l| l.seccomp().clone()),
        });
    let console = if spec.terminal {
        let name = format!("exec-{}.sock", std::process::id());
        let console = ConsoleSocket::bind(dir, &name).map_err(terminal_err)?;
        builder = builder.with_console_socket(Some(console.path()));
        Some(console)
    } else {
        None
    };
    // Pipes copied to and from ours, never our own descriptors.
    let (ends, ours) = container_stdio(
        spec.stdin,
        [Route::Pipe, Route::Pipe],
        stdout_is_stderr(),
        spec.terminal,
    )
    .map_err(|source| RuntimeError::Stdio {
        id: id.to_owned(),
        source,
    })?;
    builder = with_container_ends(builder, ends);
    prepare_runtime_process();
    let container_dir = state_root.join(id);
    let before = tenant_files(&container_dir);
    let built = builder
        .as_tenant()
        .with_process(Some(process_file.path.clone()))
        .with_detach(true)
        .build();
    // libcontainer leaves its per-exec notify socket and console link in the state dir.
    for leftover in tenant_files(&container_dir).difference(&before) {
        let _ = fs::remove_file(leftover);
    }
    drop(process_file);
    let pid = built.map_err(exec_err)?;
    let pid = Pid::from_raw(pid.as_raw()).ok_or(RuntimeError::NoPid { id: id.to_owned() })?;
    let pty = match console {
        Some(console) => {
            let master = console.receive_master().map_err(terminal_err)?;
            let forward_stdin = spec.stdin == InputMode::Inherit;
            Some(PtyProxy::new(master, forward_stdin).map_err(terminal_err)?)
        }
        None => None,
    };
    let mut streams = Streams::new(ours, pty);
    let wait_err = |source| RuntimeError::Wait {
        id: id.to_owned(),
        pid: pid.as_raw_pid(),
        source,
    };
    // Blocked only now: the process was exec'd during build and must not inherit the mask.
    let signals = SignalGuard::block().map_err(wait_err)?;
    let mut router = StdioRouter::new(&StdioSpec::default());
    supervise(
        pid,
        &signals,
        None,
        &mut streams,
        Until::Drained,
        &mut |stream, bytes| {
            router.output(stream, bytes);
            router.wants(stream)
        },
    )
    .map_err(wait_err)
}

/// The container's state, if it is running.
fn load_running(state_root: &Path, id: &str) -> Result<Container, RuntimeError> {
    let not_running = |status: &str| RuntimeError::NotRunning {
        id: id.to_owned(),
        status: status.to_owned(),
    };
    let container_dir = state_root.join(id);
    if !container_dir.join("state.json").exists() {
        return Err(not_running("no runtime state"));
    }
    let mut container = Container::load(container_dir).map_err(|source| RuntimeError::Exec {
        id: id.to_owned(),
        source: Box::new(source),
    })?;
    // The saved status is what the creator last wrote; the init may have exited since.
    container
        .refresh_status()
        .map_err(|source| RuntimeError::Exec {
            id: id.to_owned(),
            source: Box::new(source),
        })?;
    match container.status() {
        ContainerStatus::Running => Ok(container),
        status => Err(not_running(&status.to_string())),
    }
}

/// The exec'd process: the container's own process with `spec`'s command, environment,
/// working directory, user and terminal.
fn exec_process(container: &Process, spec: &ExecSpec) -> Process {
    let mut process = container.clone();
    let mut env = container.env().clone().unwrap_or_default();
    for entry in &spec.env {
        set_env(&mut env, entry);
    }
    if spec.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push(TERMINAL_TERM_ENV.to_owned());
    }
    process
        .set_args(Some(spec.args.clone()))
        .set_env(Some(env))
        .set_terminal(Some(spec.terminal))
        .set_console_size(None);
    if let Some(cwd) = &spec.cwd {
        process.set_cwd(PathBuf::from(cwd));
    }
    if let Some(user) = &spec.user {
        let mut oci_user = process.user().clone();
        oci_user
            .set_uid(user.uid)
            .set_gid(user.gid)
            .set_additional_gids(Some(user.groups()));
        process.set_user(oci_user);
    }
    process
}

/// Replaces the entry with `entry`'s key in place, or appends it (Docker's order).
fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = entry.split_once('=').map_or(entry, |(key, _)| key);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(existing) => *existing = entry.to_owned(),
        None => env.push(entry.to_owned()),
    }
}

/// `tenant-*` files libcontainer creates in the container's state dir for each exec.
fn tenant_files(container_dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    fs::read_dir(container_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tenant-"))
        .map(|e| e.path())
        .collect()
}

/// The exec'd process's `process.json`, removed on drop.
struct ProcessFile {
    path: PathBuf,
}

impl ProcessFile {
    fn write(dir: &Path, process: &Process) -> Result<Self, RuntimeError> {
        let path = dir.join(format!("exec-{}.json", std::process::id()));
        let json = serde_json::to_vec(process).map_err(|err| RuntimeError::Write {
            path: path.clone(),
            source: err.into(),
        })?;
        fs::write(&path, json).map_err(|source| RuntimeError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::oci_spec;
    use crate::spec::ContainerSpec;

    fn container_process() -> Process {
        let mut spec = ContainerSpec::new("c", "/r", "/d", vec!["sleep".into(), "30".into()]);
        spec.process
            .env
            .extend(["FOO=bar".into(), "HOME=/root".into()]);
        spec.process.cwd = "/srv".into();
        spec.process.user.uid = 7;
        oci_spec(&spec, &crate::oci::tests::host())
            .unwrap()
            .process()
            .clone()
            .unwrap()
    }

    #[test]
    fn exec_process_inherits_the_containers_defaults() {
        let container = container_process();
        let process = exec_process(&container, &ExecSpec::new(vec!["id".into()]));
        assert_eq!(process.args().as_deref(), Some(&["id".to_owned()][..]));
        assert_eq!(process.env(), container.env());
        assert_eq!(process.cwd(), &PathBuf::from("/srv"));
        assert_eq!(process.user().uid(), 7);
        assert_eq!(process.capabilities(), container.capabilities());
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.terminal(), Some(false));
    }

    #[test]
    fn exec_process_applies_overrides() {
        let mut spec = ExecSpec::new(vec!["sh".into()]);
        spec.env = vec!["FOO=baz".into(), "X=1".into()];
        spec.cwd = Some("/tmp".into());
        spec.user = Some(User {
            uid: 1000,
            gid: 0,
            additional_gids: vec![10],
        });
        spec.terminal = true;
        let process = exec_process(&container_process(), &spec);
        let env = process.env().clone().unwrap();
        let foo: Vec<_> = env.iter().filter(|e| e.starts_with("FOO=")).collect();
        assert_eq!(foo, ["FOO=baz"]);
        assert_eq!(env.last().map(String::as_str), Some(TERMINAL_TERM_ENV));
        assert!(env.contains(&"X=1".to_owned()));
        assert_eq!(process.cwd(), &PathBuf::from("/tmp"));
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 0);
        assert_eq!(
            process.user().additional_gids().as_deref(),
            Some(&[0, 10][..])
        );
        assert_eq!(process.terminal(), Some(true));
    }

    #[test]
    fn apply_user_sets_home_unless_given() {
        let resolved = ResolvedUser {
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
            },
            home: "/home/app".into(),
        };
        let mut spec = ExecSpec::new(vec!["id".into()]);
        spec.apply_user(&resolved);
        assert_eq!(spec.env, ["HOME=/home/app"]);
        let process = exec_process(&container_process(), &spec);
        let homes: Vec<_> = process
            .env()
            .iter()
            .flatten()
            .filter(|e| e.starts_with("HOME="))
            .collect();
        assert_eq!(homes, ["HOME=/home/app"]);
    }

    #[test]
    fn invalid_exec_specs_are_refused() {
        let cases: [(&str, ExecSpec); 3] = [
            ("no args", ExecSpec::new(Vec::new())),
            (
                "relative cwd",
                ExecSpec {
                    cwd: Some("tmp".into()),
                    ..ExecSpec::new(vec!["true".into()])
                },
            ),
            (
                "env without =",
                ExecSpec {
                    env: vec!["FOO".into()],
                    ..ExecSpec::new(vec!["true".into()])
                },
            ),
        ];
        for (name, spec) in cases {
            assert!(
                matches!(spec.validate("c"), Err(RuntimeError::InvalidExec { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn a_container_without_state_is_not_running() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load_running(tmp.path(), "gone").unwrap_err();
        assert!(matches!(err, RuntimeError::NotRunning { .. }), "{err}");
        assert_eq!(err.exit_status().code(), 1);
    }
}
