//! `strata exec`: another process in a running container. This process becomes the runtime's
//! exec helper (a fresh single-threaded strata), so the terminal, signals and exit code are
//! the process's own.

use std::os::unix::process::CommandExt;
use std::path::Path;
use strata_exit::ExitStatus;

use strata_container::{lookup, monitor_alive, Status};
use strata_runtime::{
    exec_helper_command, resolve_groups, resolve_user, ExecRequest, ExecSpec, InputMode,
};

use crate::cli::{ExecArgs, GlobalOptions};
use crate::failure::{strata_failed, Failure};

use super::run::current_exe;

pub(crate) fn run(g: &GlobalOptions, a: ExecArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g).map_err(strata_failed)?;
    let c = lookup(&store, &a.container).map_err(|e| strata_failed(e.into()))?;
    if c.state.status != Status::Running || !monitor_alive(&c.paths().monitor_lock) {
        return Err(strata_failed(Failure::new(format!(
            "container {} is not running",
            a.container
        ))));
    }
    let mut spec = ExecSpec::new(a.command);
    spec.env = a
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    spec.cwd = a.workdir;
    if let Some(user) = &a.user {
        // The container's own passwd/group, seen through its init's root.
        let root = format!("/proc/{}/root", c.state.pid);
        let resolved = resolve_user(Path::new(&root), user).map_err(|e| strata_failed(e.into()))?;
        spec.apply_user(&resolved);
        // The container's --group-add applies to an exec'd user too, as in Docker.
        let added = resolve_groups(Path::new(&root), &c.config.security.group_add)
            .map_err(|e| strata_failed(e.into()))?;
        if let Some(user) = spec.user.as_mut() {
            user.additional_gids.extend(added);
        }
    }
    spec.terminal = a.tty;
    spec.stdin = if a.interactive {
        InputMode::Inherit
    } else {
        InputMode::Null
    };
    let request = ExecRequest {
        dir: c.paths().runtime,
        id: c.id.clone(),
        spec,
    };
    let mut command =
        exec_helper_command(current_exe()?, &request).map_err(|e| strata_failed(e.into()))?;
    drop(store);
    let err = command.exec();
    Err(strata_failed(Failure::new(format!(
        "running the exec helper: {err}"
    ))))
}
