//! The container lifecycle verbs: `start`, `stop`, `restart`, `kill`, `wait`, `rm`,
//! `container prune`, `logs`. Like Docker, a verb given several containers goes on past a
//! failing one, prints each name as given on success, and exits 1 at the end if any failed.

use std::collections::BTreeMap;
use std::io::Write;
use strata_exit::ExitStatus;

use strata_container::{
    exec_monitor, kill, lookup, monitor_alive, monitor_command, parse_signal, prune, read_log,
    remove, start, stop, wait, Container, LogOptions, LogSink, LogStream,
};
use strata_store::Store;

use crate::cli::{
    ContainerPruneArgs, ContainersArgs, GlobalOptions, KillArgs, LogsArgs, RmArgs, StartArgs,
    StopArgs,
};
use crate::failure::Failure;
use crate::render::{human, out};

use super::run::{current_exe, start_failure};

/// Runs `action` on each named container, printing what it returns.
fn each(
    g: &GlobalOptions,
    names: &[String],
    mut action: impl FnMut(&Store, &Container, &str) -> Result<Option<String>, Failure>,
) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let mut results = Outcomes::default();
    for name in names {
        results.show(
            lookup(&store, name)
                .map_err(Failure::from)
                .and_then(|c| action(&store, &c, name)),
        );
    }
    Ok(results.exit_status())
}

/// What a verb given several containers prints per container, and its exit status: failure
/// when any of them failed (Docker's rule; the others are still acted on).
#[derive(Default)]
struct Outcomes {
    failed: bool,
}

impl Outcomes {
    fn show(&mut self, result: Result<Option<String>, Failure>) {
        match result {
            Ok(Some(line)) => out(&format!("{line}\n")),
            Ok(None) => {}
            Err(f) => {
                f.print();
                self.failed = true;
            }
        }
    }

    fn exit_status(&self) -> ExitStatus {
        if self.failed {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }
}

/// [`each`] for verbs that mostly wait (stop, kill, rm): every container at once, as Docker's
/// CLI does, with each result printed in the order the containers were named.
fn each_at_once(
    g: &GlobalOptions,
    names: &[String],
    action: impl Fn(&Store, &Container, &str) -> Result<Option<String>, Failure> + Sync,
) -> Result<ExitStatus, Failure> {
    /// Waits are short polls; more threads than this only add memory.
    const MAX_THREADS: usize = 64;
    let store = super::open_store(g)?;
    let (done, results) = std::sync::mpsc::channel();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut outcomes = Outcomes::default();
    std::thread::scope(|scope| {
        for _ in 0..names.len().min(MAX_THREADS) {
            let done = done.clone();
            let (store, next, action) = (&store, &next, &action);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let result = lookup(store, name)
                    .map_err(Failure::from)
                    .and_then(|c| action(store, &c, name));
                if done.send((i, result)).is_err() {
                    break;
                }
            });
        }
        drop(done);
        let mut pending = BTreeMap::new();
        let mut shown = 0;
        for (i, result) in results {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&shown) {
                outcomes.show(result);
                shown += 1;
            }
        }
    });
    Ok(outcomes.exit_status())
}

pub(crate) fn start_cmd(g: &GlobalOptions, a: StartArgs) -> Result<ExitStatus, Failure> {
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            return Err(Failure::new(
                "you cannot start and attach multiple containers at once",
            ));
        };
        let store = super::open_store(g)?;
        let c = lookup(&store, name)?;
        if monitor_alive(&c.paths().monitor_lock) {
            return Err(Failure::new(format!(
                "container {name} is already running: use `strata logs -f {name}` to follow it"
            )));
        }
        let command = monitor_command(&current_exe()?, &store, &c.id, true);
        drop(store);
        return Err(Failure::from(exec_monitor(command)));
    }
    let program = current_exe()?;
    each(g, &a.containers, |store, c, name| {
        start(store, c, &program).map_err(start_failure)?;
        Ok(Some(name.to_owned()))
    })
}

pub(crate) fn stop_cmd(g: &GlobalOptions, a: StopArgs) -> Result<ExitStatus, Failure> {
    each_at_once(g, &a.containers, |store, c, name| {
        stop(store, c, a.time)?;
        Ok(Some(name.to_owned()))
    })
}

pub(crate) fn restart_cmd(g: &GlobalOptions, a: StopArgs) -> Result<ExitStatus, Failure> {
    let program = current_exe()?;
    each(g, &a.containers, |store, c, name| {
        stop(store, c, a.time)?;
        let c = lookup(store, &c.id)?;
        start(store, &c, &program).map_err(start_failure)?;
        Ok(Some(name.to_owned()))
    })
}

pub(crate) fn kill_cmd(g: &GlobalOptions, a: KillArgs) -> Result<ExitStatus, Failure> {
    let signal = parse_signal(&a.signal)?;
    each_at_once(g, &a.containers, |store, c, name| {
        kill(store, c, signal)?;
        Ok(Some(name.to_owned()))
    })
}

pub(crate) fn wait_cmd(g: &GlobalOptions, a: ContainersArgs) -> Result<ExitStatus, Failure> {
    each(g, &a.containers, |store, c, _| {
        Ok(Some(wait(store, c)?.to_string()))
    })
}

pub(crate) fn rm_cmd(g: &GlobalOptions, a: RmArgs) -> Result<ExitStatus, Failure> {
    each_at_once(g, &a.containers, |store, c, name| {
        remove(store, c, a.force, a.volumes)?;
        Ok(Some(name.to_owned()))
    })
}

pub(crate) fn prune_cmd(g: &GlobalOptions, a: ContainerPruneArgs) -> Result<ExitStatus, Failure> {
    if !a.force && !super::confirm("This will remove all stopped containers.")? {
        return Ok(ExitStatus::Success);
    }
    let store = super::open_store(g)?;
    let removed = prune(&store)?;
    let mut text = String::new();
    if !removed.is_empty() {
        text.push_str("Deleted Containers:\n");
        for (id, _) in &removed {
            text.push_str(id);
            text.push('\n');
        }
        text.push('\n');
    }
    let freed: u64 = removed.iter().map(|(_, bytes)| bytes).sum();
    text.push_str(&format!("Total reclaimed space: {}\n", human::size(freed)));
    out(&text);
    Ok(ExitStatus::Success)
}

pub(crate) fn logs_cmd(g: &GlobalOptions, a: LogsArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let c = lookup(&store, &a.container)?;
    if !c.config.log.enabled {
        return Err(Failure::new(format!(
            "container {} was created with --log-driver none: there are no logs to read",
            c.name
        )));
    }
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            Failure::new(format!(
                "invalid --tail value {n:?}: give a number of lines or \"all\""
            ))
        })?),
    };
    let opts = LogOptions {
        tail,
        timestamps: a.timestamps,
        follow: a.follow,
    };
    let lock = c.paths().monitor_lock;
    let mut sink = StdStreams {
        stdout: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
        stderr: std::io::stderr(),
    };
    read_log(
        &c.paths().log,
        opts,
        &mut || monitor_alive(&lock),
        &mut sink,
    )?;
    Ok(ExitStatus::Success)
}

/// `logs` output: the container's stdout entries to ours (buffered), its stderr to ours.
struct StdStreams<'a> {
    stdout: std::io::BufWriter<std::io::StdoutLock<'a>>,
    stderr: std::io::Stderr,
}

impl LogSink for StdStreams<'_> {
    fn write(&mut self, stream: LogStream, bytes: &[u8]) -> std::io::Result<()> {
        match stream {
            LogStream::Stdout => self.stdout.write_all(bytes),
            // Unbuffered, so a flush of stdout first keeps the two streams' order.
            LogStream::Stderr => self
                .stdout
                .flush()
                .and_then(|()| self.stderr.write_all(bytes)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stdout.flush()
    }
}
