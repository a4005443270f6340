//! Containers whose monitor died (SIGKILL, OOM killer, a crash): the container's init, now a
//! child of the host's init, may run on with nobody recording it. `stop`, `kill`, `rm -f` and
//! `start` act on it through its recorded pid — trusted only while that process still has the
//! recorded start time and sits in the container's cgroup — and clean up what the monitor
//! would have: the cgroups, libcontainer's state and the record's status.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_store::Store;

use crate::error::ContainerError;
use crate::lifecycle::update_state;
use crate::record::{now_rfc3339, Container, Status};

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it exists and is
/// not a zombie.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Whether the recorded init still runs: same pid, same start time, in the container's cgroup.
pub(crate) fn orphan_alive(c: &Container) -> bool {
    let pid = c.state.pid;
    if pid <= 0 {
        return false;
    }
    let Some(started) = process_start_time(pid) else {
        return false;
    };
    // Records from before start times were kept can only be checked by their cgroup.
    if c.state.pid_start_time != 0 && started != c.state.pid_start_time {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|text| text.contains(&format!("/strata/{}", c.id)))
}

/// Sends `signal` to the orphaned init; false when it is not running any more.
pub(crate) fn signal_orphan(c: &Container, signal: i32) -> bool {
    if !orphan_alive(c) {
        return false;
    }
    // SAFETY: kill(2) on a pid just verified to be this container's init.
    unsafe { libc::kill(c.state.pid, signal) == 0 }
}

/// Waits up to `limit` for the orphaned init to be gone; true if it is.
pub(crate) fn wait_orphan_gone(c: &Container, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !orphan_alive(c) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Once the init is gone: removes the container's cgroups (waiting for the kernel to empty
/// them) and libcontainer's state, and records the container as exited with `exit_code`
/// (128 + the signal that ended it, when strata sent one; else unknown: 255).
pub(crate) fn finish_orphan(
    store: &Store,
    c: &Container,
    exit_code: i32,
) -> Result<(), ContainerError> {
    remove_cgroups(&c.id);
    let state = c.paths().runtime.join("state").join(&c.id);
    if state.exists() {
        std::fs::remove_dir_all(&state).map_err(ContainerError::io("removing", &state))?;
    }
    update_state(store, &c.id, |s| {
        if matches!(s.status, Status::Running | Status::Restarting) {
            s.status = Status::Exited;
            s.exit_code = exit_code;
            s.finished_at = now_rfc3339();
            s.error = "its monitor died while it ran; strata stopped it through its recorded pid"
                .to_owned();
        }
        s.pid = 0;
        s.pid_start_time = 0;
        s.monitor_pid = 0;
    })?;
    Ok(())
}

/// Before a monitor runs the container again: leftovers of a monitor that died (libcontainer
/// state, which would make the new create fail, and cgroups) are cleaned, unless the old init
/// still runs, which is an error.
pub(crate) fn recover_from_dead_monitor(
    store: &Store,
    c: &Container,
) -> Result<(), ContainerError> {
    if orphan_alive(c) {
        return Err(ContainerError::OrphanRunning(c.name.clone()));
    }
    let state = c.paths().runtime.join("state").join(&c.id);
    if state.exists() || c.state.pid > 0 {
        finish_orphan(store, c, UNKNOWN_EXIT)?;
    }
    Ok(())
}

/// The exit code recorded when nobody saw how the init ended.
pub(crate) const UNKNOWN_EXIT: i32 = 255;

/// The container's cgroup in every mounted hierarchy (`<mount>/strata/<id>`), v1 and v2.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let mount_point = left.split_whitespace().nth(4)?;
            Some(Path::new(mount_point).join("strata").join(id))
        })
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Removes the container's cgroups once no process is left in them (a killed init's
/// children are gone a moment after it).
pub(crate) fn remove_cgroups(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in cgroup_dirs(id) {
        loop {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                // EBUSY while processes are still in it.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_read_past_odd_command_names() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        assert!(t > 0);
        assert_eq!(process_start_time(me), Some(t), "stable");
        assert_eq!(process_start_time(i32::MAX), None);
    }
}
