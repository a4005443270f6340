//! Watches a started container on one thread: forwards signals, drains captured output, reaps.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rustix::process::{getppid, Pid, WaitOptions};

use crate::observer::OutputStream;
use crate::run::Termination;
use crate::stdio::{drain, OurEnds, StdinPipe};
use crate::terminal::PtyProxy;

/// Signals a foreground run passes on to the container's init, like `docker run`'s sig-proxy.
/// (An init without a handler ignores them, as in Docker; SIGKILL cannot be caught.)
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Poll timeout: SIGCHLD normally wakes the loop, but in a multi-threaded caller another thread
/// may take it, so the init is also checked this often.
const REAP_CHECK_MS: libc::c_int = 200;

/// The forwarded signals and SIGCHLD, blocked and readable from a signalfd while a container
/// runs; the previous mask is restored on drop.
pub(crate) struct SignalGuard {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl SignalGuard {
    /// Blocks the signals. Call after the container is created (its init must not inherit the
    /// mask) and before it starts (so no SIGCHLD or Ctrl-C is missed).
    pub(crate) fn block() -> io::Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises `set`; sigaddset/sigprocmask get valid pointers;
        // `old` is initialised by sigprocmask before it is read.
        let (set, old_mask) = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for signal in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
                libc::sigaddset(set.as_mut_ptr(), *signal);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), old.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            (set.assume_init(), old.assume_init())
        };
        // SAFETY: `set` is an initialised signal set.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if raw < 0 {
            let err = io::Error::last_os_error();
            // SAFETY: restoring the mask we just saved.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
            return Err(err);
        }
        // SAFETY: signalfd returned a new descriptor that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd, old_mask })
    }

    /// Pending signal numbers, without blocking.
    fn read_pending(&self) -> io::Result<Vec<u32>> {
        let mut signals = Vec::new();
        loop {
            // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is a writable buffer of `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock => Ok(signals),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            if n as usize != size {
                return Ok(signals);
            }
            signals.push(info.ssi_signo);
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        // Consume what arrived for the container so it is not delivered to us on unblocking.
        let _ = self.read_pending();
        // SAFETY: restoring the mask saved by `block`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// The container's streams as this process sees them: pipes for stdout/stderr (read ends,
/// non-blocking) and stdin, or a pty.
pub(crate) struct Streams {
    /// Read ends of the stdout and stderr pipes, when those streams are piped.
    pub(crate) pipes: [Option<File>; 2],
    pub(crate) pty: Option<PtyProxy>,
    /// Our stdin copied into the container's stdin pipe.
    pub(crate) input: Option<StdinPipe>,
}

impl Streams {
    pub(crate) fn new(ours: OurEnds, pty: Option<PtyProxy>) -> Self {
        Self {
            pipes: ours.pipes,
            pty,
            input: ours.input,
        }
    }
}

/// When supervision ends once the process is reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Every stream is at end of file: a container's init, whose exit tears down its pid
    /// namespace and so closes every copy of the streams.
    StreamsClosed,
    /// What the streams hold now has been read: an exec'd process, whose background
    /// children may keep its pipes or pty open for as long as the container runs.
    Drained,
}

/// Where output goes: returns whether the stream is still wanted. When it is not (our own
/// stdout is a closed pipe), the container's end is closed too, so its next write fails
/// with EPIPE as it would have on our stream.
pub(crate) type Sink<'a> = dyn FnMut(OutputStream, &[u8]) -> bool + 'a;

/// Runs until `pid` has exited and its output is read (see [`Until`]): forwards signals to
/// `pid` (SIGWINCH resizes the pty instead when it follows our terminal), hands output to
/// `sink`, copies our stdin into the container's pipe or pty, and reaps `pid`. When `parent`
/// is given and is no longer this process's parent, `pid` is SIGKILLed (the helper was
/// orphaned).
pub(crate) fn supervise(
    pid: Pid,
    signals: &SignalGuard,
    parent: Option<Pid>,
    streams: &mut Streams,
    until: Until,
    sink: &mut Sink<'_>,
) -> io::Result<Termination> {
    const SOURCES: [OutputStream; 2] = [OutputStream::Stdout, OutputStream::Stderr];
    let mut orphan_killed = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut status = try_reap(pid)?;
    loop {
        if let Some(status) = status {
            if until == Until::Drained {
                // What the exec'd process wrote before it exited is in the pipes and pty now
                // (at most a pipe's buffer). A background child still writing is not waited
                // for: `drain` stops after a bounded amount.
                for (i, pipe) in streams.pipes.iter_mut().enumerate() {
                    if let Some(file) = pipe.as_mut() {
                        drain(file, &mut buf, &mut |bytes| {
                            sink(SOURCES[i], bytes);
                        })?;
                    }
                    *pipe = None;
                }
                if let Some(pty) = streams.pty.as_mut() {
                    pty.read_master(&mut buf, &mut |bytes| {
                        sink(OutputStream::Stdout, bytes);
                    })?;
                }
                return Ok(status);
            }
            let pty_done = streams.pty.as_ref().is_none_or(|pty| !pty.is_open());
            if pty_done && streams.pipes.iter().all(Option::is_none) {
                return Ok(status);
            }
        }
        let mut pollfds = vec![libc::pollfd {
            fd: signals.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let mut pipe_polls = Vec::new();
        for (i, pipe) in streams.pipes.iter().enumerate() {
            if let Some(file) = pipe {
                pipe_polls.push((pollfds.len(), i));
                pollfds.push(libc::pollfd {
                    fd: file.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let (master_poll, stdin_poll) = match &streams.pty {
            Some(pty) => pty.add_pollfds(&mut pollfds),
            None => (None, None),
        };
        let (input_poll, pipe_out_poll) = match &streams.input {
            Some(input) => input_pollfds(input, &mut pollfds),
            None => (None, None),
        };
        // SAFETY: `pollfds` is a valid, exclusively borrowed array of `pollfds.len()` entries.
        let rc = unsafe {
            libc::poll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                REAP_CHECK_MS,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if status.is_none() {
            status = try_reap(pid)?;
        }
        // Checked every round (at least every REAP_CHECK_MS): no signal announces it.
        if status.is_none() && !orphan_killed && parent.is_some_and(|p| getppid() != Some(p)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            orphan_killed = true;
        }
        if pollfds[0].revents != 0 {
            for signal in signals.read_pending()? {
                // SIGCHLD only wakes the loop up; the reap check above runs every round.
                if signal == libc::SIGCHLD as u32 || status.is_some() {
                    continue;
                }
                if signal == libc::SIGWINCH as u32 {
                    if let Some(pty) = streams.pty.as_ref().filter(|p| p.follows_window_size()) {
                        pty.resize();
                        continue;
                    }
                }
                if let Some(signal) = rustix::process::Signal::from_named_raw(signal as i32) {
                    // The process may be gone already: nothing to forward to then.
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        }
        for (poll_index, i) in pipe_polls {
            if pollfds[poll_index].revents == 0 {
                continue;
            }
            let Some(file) = streams.pipes[i].as_mut() else {
                continue;
            };
            let mut wanted = true;
            let at_end = drain(file, &mut buf, &mut |bytes| {
                if wanted {
                    wanted = sink(SOURCES[i], bytes);
                }
            })?;
            if at_end || !wanted {
                streams.pipes[i] = None;
            }
        }
        if let Some(input) = streams.input.as_mut() {
            let ready = |index: Option<usize>| index.is_some_and(|i| pollfds[i].revents != 0);
            if ready(input_poll) {
                input.pump.read(&mut buf);
            }
            if ready(input_poll) || ready(pipe_out_poll) {
                input.flush();
            }
            if input.pipe.is_none() {
                streams.input = None;
            }
        }
        if let Some(pty) = streams.pty.as_mut() {
            let ready = |index: Option<usize>, mask: libc::c_short| {
                index.is_some_and(|i| pollfds[i].revents & mask != 0)
            };
            if ready(master_poll, libc::POLLOUT) {
                pty.flush_input()?;
            }
            if ready(master_poll, libc::POLLIN | libc::POLLHUP | libc::POLLERR) {
                pty.read_master(&mut buf, &mut |bytes| {
                    sink(OutputStream::Stdout, bytes);
                })?;
            }
            if ready(stdin_poll, libc::POLLIN | libc::POLLHUP | libc::POLLERR) {
                pty.read_input(&mut buf)?;
            }
        }
    }
}

/// Polls our stdin while the pump wants input, and the pipe's write end while input is
/// pending. Returns their indexes into `pollfds`.
fn input_pollfds(
    input: &StdinPipe,
    pollfds: &mut Vec<libc::pollfd>,
) -> (Option<usize>, Option<usize>) {
    let Some(pipe) = &input.pipe else {
        return (None, None);
    };
    let mut push = |fd, events| {
        pollfds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        Some(pollfds.len() - 1)
    };
    let source = input
        .pump
        .poll_source()
        .and_then(|fd| push(fd, libc::POLLIN));
    let target = if input.pump.has_pending() {
        push(pipe.as_raw_fd(), libc::POLLOUT)
    } else {
        None
    };
    (source, target)
}

fn exit_status(status: rustix::process::WaitStatus) -> Option<Termination> {
    if let Some(code) = status.exit_status() {
        return Some(Termination::Exited(code));
    }
    status.terminating_signal().map(Termination::Signaled)
}

/// Reaps `pid` if it has exited.
fn try_reap(pid: Pid) -> io::Result<Option<Termination>> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => return Ok(exit_status(status)),
            Ok(None) => return Ok(None),
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Blocks until `pid` exits and reaps it.
pub(crate) fn wait_for(pid: Pid) -> io::Result<Termination> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(status) = exit_status(status) {
                    return Ok(status);
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn collect(
        pid: Pid,
        parent: Option<Pid>,
        pipes: [Option<File>; 2],
    ) -> (Termination, [Vec<u8>; 2]) {
        let signals = SignalGuard::block().unwrap();
        for pipe in pipes.iter().flatten() {
            crate::stdio::set_nonblocking(pipe.as_raw_fd()).unwrap();
        }
        let mut streams = Streams {
            pipes,
            pty: None,
            input: None,
        };
        let mut out = [Vec::new(), Vec::new()];
        let status = supervise(
            pid,
            &signals,
            parent,
            &mut streams,
            Until::StreamsClosed,
            &mut |stream, bytes| {
                out[stream as usize].extend_from_slice(bytes);
                true
            },
        )
        .unwrap();
        (status, out)
    }

    #[test]
    #[allow(clippy::zombie_processes)] // supervise reaps it with waitpid
    fn collects_both_streams_and_the_exit_code() {
        // More than a pipe buffer on stdout, so reading must interleave with the child.
        let mut child = Command::new("sh")
            .args(["-c", "head -c 300000 /dev/zero; echo oops >&2; exit 3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        let pipes = [
            child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
            child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
        ];
        let (status, [out, err]) = collect(pid, None, pipes);
        assert_eq!(status, Termination::Exited(3));
        assert_eq!(out.len(), 300_000);
        assert_eq!(err, b"oops\n");
    }

    #[test]
    #[allow(clippy::zombie_processes)] // supervise reaps it with waitpid
    fn reports_death_by_signal() {
        let child = Command::new("sh")
            .args(["-c", "kill -9 $$"])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        let (status, _) = collect(pid, None, [None, None]);
        assert_eq!(status, Termination::Signaled(9));
        assert_eq!(status.code(), 137);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // supervise reaps it with waitpid
    fn kills_the_child_when_the_watched_parent_is_gone() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        // Pid 1 is never this test's parent, so the parent counts as gone at once.
        let started = std::time::Instant::now();
        let (status, _) = collect(pid, Some(Pid::INIT), [None, None]);
        assert_eq!(status, Termination::Signaled(9));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    #[allow(clippy::zombie_processes)] // supervise reaps it with waitpid
    fn a_drained_pty_ends_with_the_process_not_its_background_children() {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty fills both descriptors on success.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: fresh descriptors from openpty, owned here only.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // The background sleep keeps the slave open long after the shell exits.
        let child = Command::new("sh")
            .args(["-c", "echo hi; sleep 5 & exit 4"])
            .stdin(Stdio::null())
            .stdout(slave.try_clone().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        drop(slave);
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        let signals = SignalGuard::block().unwrap();
        let mut streams = Streams {
            pipes: [None, None],
            pty: Some(PtyProxy::new(master, false).unwrap()),
            input: None,
        };
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        let status = supervise(
            pid,
            &signals,
            None,
            &mut streams,
            Until::Drained,
            &mut |_, bytes| {
                out.extend_from_slice(bytes);
                true
            },
        )
        .unwrap();
        assert_eq!(status, Termination::Exited(4));
        assert_eq!(out, b"hi\r\n");
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}
