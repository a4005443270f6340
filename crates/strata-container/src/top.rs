//! `top`: a running container's processes as `docker top` shows them by default — the
//! columns of the host's `ps -ef` (UID PID PPID C STIME TTY TIME CMD), for every process in
//! the container's pid namespace (the one its init's `/proc/<pid>/ns/pid` names). Pids are
//! the host's; user names come from the host's passwd, as they do with Docker (which runs
//! `ps` on the host).

use std::collections::HashMap;
use std::path::Path;

use crate::error::ContainerError;
use crate::record::Container;
use crate::view::running_pid;

/// The table `top` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTable {
    pub titles: Vec<String>,
    /// One row per process, in pid order, one cell per title.
    pub processes: Vec<Vec<String>>,
}

const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// The processes of running container `c`.
pub fn top(c: &Container) -> Result<ProcessTable, ContainerError> {
    let init = running_pid(c).ok_or_else(|| ContainerError::NotRunning(c.name.clone()))?;
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let namespace = ns_of(init).ok_or_else(|| ContainerError::NotRunning(c.name.clone()))?;
    let clock = Clock::now()?;
    let users = host_users();
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(ContainerError::io("listing", "/proc"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let processes = pids
        .into_iter()
        .filter(|pid| ns_of(*pid).as_ref() == Some(&namespace))
        // A process may exit between the listing and the read: it is simply not shown.
        .filter_map(|pid| row(pid, &clock, &users))
        .collect();
    Ok(ProcessTable {
        titles: TITLES.iter().map(|t| t.to_string()).collect(),
        processes,
    })
}

/// What converting /proc's clock ticks needs.
struct Clock {
    ticks_per_second: u64,
    /// Seconds since boot.
    uptime: f64,
    /// Unix seconds of the boot.
    boot: i64,
}

impl Clock {
    fn now() -> Result<Clock, ContainerError> {
        let uptime = std::fs::read_to_string("/proc/uptime")
            .map_err(ContainerError::io("reading", "/proc/uptime"))?;
        let uptime = uptime
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let stat = std::fs::read_to_string("/proc/stat")
            .map_err(ContainerError::io("reading", "/proc/stat"))?;
        let boot = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            .unwrap_or(0);
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(Clock {
            ticks_per_second: u64::try_from(ticks).unwrap_or(100).max(1),
            uptime,
            boot,
        })
    }
}

/// One `ps -ef` row, or None if the process is gone.
fn row(pid: i32, clock: &Clock, users: &HashMap<u32, String>) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` may contain spaces and parentheses: the fields start after the last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> u64 { fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let ppid = field(4);
    let tty = tty_name(field(7));
    let cpu_ticks = field(14) + field(15);
    let start_ticks = field(22);
    let hz = clock.ticks_per_second;
    let cpu_seconds = cpu_ticks / hz;
    let running_for = clock.uptime - start_ticks as f64 / hz as f64;
    let percent = if running_for > 0.0 {
        (cpu_ticks as f64 / hz as f64 / running_for * 100.0) as u64
    } else {
        0
    };
    let started = clock.boot + i64::try_from(start_ticks / hz).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let euid: u32 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cmd = if args.is_empty() {
        format!("[{comm}]")
    } else {
        args.join(" ")
    };
    Some(vec![
        users
            .get(&euid)
            .cloned()
            .unwrap_or_else(|| euid.to_string()),
        pid.to_string(),
        ppid.to_string(),
        percent.to_string(),
        start_time(started, chrono::Utc::now().timestamp()),
        tty,
        cpu_time(cpu_seconds),
        cmd,
    ])
}

/// `ps`'s STIME: the time of day if started in the last 24 hours, else month and day, else
/// the year (local time).
fn start_time(started: i64, now: i64) -> String {
    use chrono::{Datelike, Local, TimeZone};
    let Some(at) = Local.timestamp_opt(started, 0).single() else {
        return "?".to_owned();
    };
    let today = Local.timestamp_opt(now, 0).single().map(|t| t.year());
    if now - started < 24 * 3600 {
        at.format("%H:%M").to_string()
    } else if today == Some(at.year()) {
        at.format("%b%d").to_string()
    } else {
        at.format("%Y").to_string()
    }
}

/// `ps`'s TIME: cumulative CPU time, `[DD-]HH:MM:SS`.
fn cpu_time(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The controlling terminal from /proc's `tty_nr`: `?` for none, `pts/N`, `ttyN`.
fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".to_owned(),
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("{major}/{minor}"),
    }
}

fn host_users() -> HashMap<u32, String> {
    parse_passwd(Path::new("/etc/passwd"))
}

fn parse_passwd(path: &Path) -> HashMap<u32, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_fields_format_like_procps() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3723), "01:02:03");
        assert_eq!(cpu_time(90061), "1-01:01:01");
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(136 << 8 | 3), "pts/3");
        assert_eq!(tty_name(4 << 8 | 1), "tty1");
        let now = chrono::Utc::now().timestamp();
        assert_eq!(start_time(now - 60, now).len(), 5, "HH:MM today");
        assert_eq!(start_time(now - 400 * 86400, now).len(), 4, "a year");
    }

    /// A "container" whose init is `sleep` in its own pid namespace (made by unshare), with
    /// the monitor lock held by the test: top lists the sleep and nothing of the host.
    #[test]
    fn lists_the_processes_of_the_init_pid_namespace_only() {
        use std::os::fd::AsFd;
        let mut unshare = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "sleep", "30"])
            .spawn()
            .unwrap();
        let children = format!("/proc/{}/task/{}/children", unshare.id(), unshare.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let init: i32 = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "unshare started no child"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let dir = tempfile::tempdir().unwrap();
        let lock = std::fs::File::create(dir.path().join("monitor.lock")).unwrap();
        rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive).unwrap();
        let config: crate::ContainerConfig = serde_json::from_value(serde_json::json!({
            "image": "x", "image_id": format!("sha256:{}", "0".repeat(64)), "chain_id": null,
            "entrypoint": [], "cmd": ["sleep", "30"], "env": [], "working_dir": "", "user": "",
            "hostname": "h", "tty": false, "interactive": false, "network": "none",
            "ports": [], "mounts": [], "read_only": false, "limits": {}, "restart": {"name": "no"},
            "auto_remove": false, "labels": {}, "stop_signal": "", "stop_timeout": null,
            "exposed_ports": []
        }))
        .unwrap();
        let c = Container {
            id: "0".repeat(64),
            name: "sleeper".into(),
            created: 0,
            config,
            state: crate::ContainerState {
                status: crate::Status::Running,
                pid: init,
                ..Default::default()
            },
            dir: dir.path().to_path_buf(),
        };
        let table = top(&c);
        let _ = unshare.kill();
        let _ = unshare.wait();
        let table = table.unwrap();
        assert_eq!(table.titles, TITLES);
        let pids: Vec<&str> = table.processes.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(pids, [init.to_string()]);
        assert_eq!(table.processes[0][0], "root");
        assert_eq!(table.processes[0][7], "sleep 30");
    }

    #[test]
    fn this_process_reads_as_a_row() {
        let clock = Clock::now().unwrap();
        let users = host_users();
        let me = std::process::id() as i32;
        let r = row(me, &clock, &users).unwrap();
        assert_eq!(r.len(), TITLES.len());
        assert_eq!(r[1], me.to_string());
        assert_eq!(r[2], std::os::unix::process::parent_id().to_string());
        assert!(!r[7].is_empty());
    }
}
