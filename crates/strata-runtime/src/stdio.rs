//! A container's standard streams: pipes (or `/dev/null`) that the runtime copies to and from,
//! never this process's own descriptors. Handing a container the caller's stdin or stderr
//! would give it whatever they are — a log file it could read back, a host directory it
//! could list (`/proc/self/fd/0/…`) — so, like Docker's shim, we stand in between.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::spec::InputMode;

/// Where one of the container's output streams goes (without a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/dev/null`.
    Null,
    /// A pipe this process reads.
    Pipe,
}

/// The container's ends: what libcontainer makes its fds 0, 1 and 2. `None` keeps
/// libcontainer's own choice, which only happens under a terminal (the pty's slave).
pub(crate) struct ContainerEnds {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
}

/// Our ends: the read ends of the output pipes (stdout, stderr; with `merged`, stderr's
/// bytes arrive on stdout's pipe) and the input pipe fed from our stdin.
pub(crate) struct OurEnds {
    pub(crate) pipes: [Option<File>; 2],
    pub(crate) input: Option<StdinPipe>,
}

/// Creates the pipes of a run or exec. `merged`: stdout and stderr share one pipe, so their
/// interleaving is kept (when our own stdout and stderr are the same file). Under a terminal
/// the pty carries everything and nothing is created.
pub(crate) fn container_stdio(
    stdin: InputMode,
    outputs: [Route; 2],
    merged: bool,
    terminal: bool,
) -> io::Result<(ContainerEnds, OurEnds)> {
    let mut ours = OurEnds {
        pipes: [None, None],
        input: None,
    };
    if terminal {
        let ends = ContainerEnds {
            // With -t but without -i the pty still needs an input: /dev/null as Docker.
            stdin: None,
            stdout: None,
            stderr: None,
        };
        return Ok((ends, ours));
    }
    let stdin = match stdin {
        InputMode::Null => dev_null()?,
        InputMode::Inherit => {
            let (read, write) = pipe()?;
            set_nonblocking(write.as_raw_fd())?;
            ours.input = Some(StdinPipe {
                pump: InputPump::new(STDIN),
                pipe: Some(File::from(write)),
            });
            read
        }
    };
    let mut ends = ContainerEnds {
        stdin: Some(stdin),
        stdout: None,
        stderr: None,
    };
    if merged && outputs == [Route::Pipe, Route::Pipe] {
        let (read, write) = pipe()?;
        ends.stderr = Some(write.try_clone()?);
        ends.stdout = Some(write);
        ours.pipes[0] = Some(nonblocking_file(read)?);
        return Ok((ends, ours));
    }
    for (i, route) in outputs.into_iter().enumerate() {
        let end = match route {
            Route::Null => dev_null()?,
            Route::Pipe => {
                let (read, write) = pipe()?;
                ours.pipes[i] = Some(nonblocking_file(read)?);
                write
            }
        };
        if i == 0 {
            ends.stdout = Some(end);
        } else {
            ends.stderr = Some(end);
        }
    }
    Ok((ends, ours))
}

/// Whether our stdout and stderr are the same open file (one pipe, one log): then a
/// container's two streams are merged into one pipe to keep their order.
pub(crate) fn stdout_is_stderr() -> bool {
    let stat = |fd: RawFd| {
        // SAFETY: stat is plain old data; fstat fills it on success.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable.
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino, st.st_mode))
    };
    match (stat(1), stat(2)) {
        // A terminal is one device but two streams the user may redirect apart later: only
        // pipes and regular files count.
        (Some(a), Some(b)) => a == b && a.2 & libc::S_IFMT != libc::S_IFCHR,
        _ => false,
    }
}

/// Our stdin, copied into the container's input pipe.
pub(crate) struct StdinPipe {
    pub(crate) pump: InputPump,
    /// The write end; dropped (EOF for the container) once our stdin ends, or when the
    /// container closed its end.
    pub(crate) pipe: Option<File>,
}

impl StdinPipe {
    /// Writes what is pending; closes the pipe when the input is over or unwanted.
    pub(crate) fn flush(&mut self) {
        if let Some(pipe) = self.pipe.as_mut() {
            if self.pump.flush(pipe).is_err() {
                self.pump.stop();
            }
        }
        if self.pump.finished() {
            self.pipe = None;
        }
    }
}

/// Our stdin as a source of input for a container: read when poll says so, queued, written
/// into the container's pipe or pty master as fast as it takes it.
pub(crate) struct InputPump {
    /// Our stdin while it has not ended.
    source: Option<RawFd>,
    /// Read, not yet accepted by the target.
    pending: Vec<u8>,
}

/// Standard input of this process.
pub(crate) const STDIN: RawFd = 0;

impl InputPump {
    pub(crate) fn new(source: RawFd) -> Self {
        Self {
            source: Some(source),
            pending: Vec::new(),
        }
    }

    /// The descriptor to poll for input: only while nothing is pending.
    pub(crate) fn poll_source(&self) -> Option<RawFd> {
        self.source.filter(|_| self.pending.is_empty())
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Input has ended and everything read was delivered.
    pub(crate) fn finished(&self) -> bool {
        self.source.is_none() && self.pending.is_empty()
    }

    /// No more input: the target is gone.
    pub(crate) fn stop(&mut self) {
        self.source = None;
        self.pending.clear();
    }

    /// Reads once (poll said readable). End of file — or anything that is not input, such
    /// as a directory on stdin — ends the input.
    pub(crate) fn read(&mut self, buf: &mut [u8]) {
        let Some(fd) = self.source else {
            return;
        };
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if !matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                self.source = None;
            }
            return;
        }
        match n as usize {
            0 => self.source = None,
            n => self.pending.extend_from_slice(&buf[..n]),
        }
    }

    /// Writes pending input into `target` (non-blocking) as far as it takes it. An error
    /// means the target is gone (EPIPE, or EIO from a pty whose slave is closed).
    pub(crate) fn flush(&mut self, target: &mut File) -> io::Result<()> {
        while !self.pending.is_empty() {
            match target.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// Reads what `file` holds now (non-blocking) into `sink`; `Ok(true)` at end of file. Stops
/// after [`DRAIN_ROUND`] bytes, so that a writer faster than us cannot hold the caller.
pub(crate) fn drain(
    file: &mut File,
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]),
) -> io::Result<bool> {
    let mut read = 0;
    loop {
        if read >= DRAIN_ROUND {
            return Ok(false);
        }
        match file.read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                read += n;
                sink(&buf[..n]);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// The most [`drain`] reads in one call (a few pipe buffers).
const DRAIN_ROUND: usize = 1 << 20;

pub(crate) fn dev_null() -> io::Result<OwnedFd> {
    Ok(File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

/// A close-on-exec pipe (`std::io::pipe` is newer than the workspace's rust-version).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn nonblocking_file(fd: OwnedFd) -> io::Result<File> {
    set_nonblocking(fd.as_raw_fd())?;
    Ok(File::from(fd))
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_outputs_share_one_pipe() {
        let (ends, mut ours) =
            container_stdio(InputMode::Null, [Route::Pipe, Route::Pipe], true, false).unwrap();
        assert!(ours.pipes[1].is_none());
        let mut out = File::from(ends.stdout.unwrap());
        let mut err = File::from(ends.stderr.unwrap());
        out.write_all(b"a").unwrap();
        err.write_all(b"b").unwrap();
        out.write_all(b"c").unwrap();
        drop((out, err, ends.stdin));
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        let reader = ours.pipes[0].as_mut().unwrap();
        while !drain(reader, &mut buf, &mut |b| got.extend_from_slice(b)).unwrap() {}
        assert_eq!(got, b"abc");
    }

    #[test]
    fn null_routes_and_terminals_give_no_pipes() {
        let (ends, ours) =
            container_stdio(InputMode::Null, [Route::Null, Route::Null], false, false).unwrap();
        assert!(ends.stdin.is_some() && ends.stdout.is_some() && ends.stderr.is_some());
        assert!(ours.pipes.iter().all(Option::is_none) && ours.input.is_none());
        let (ends, ours) =
            container_stdio(InputMode::Inherit, [Route::Pipe, Route::Pipe], false, true).unwrap();
        assert!(ends.stdin.is_none() && ends.stdout.is_none());
        assert!(ours.input.is_none());
    }

    #[test]
    fn the_pump_stops_when_its_target_is_gone() {
        let (read, write) = pipe().unwrap();
        set_nonblocking(write.as_raw_fd()).unwrap();
        let mut target = File::from(write);
        let mut pump = InputPump {
            source: Some(STDIN),
            pending: b"hello".to_vec(),
        };
        pump.flush(&mut target).unwrap();
        assert!(!pump.has_pending());
        drop(read);
        pump.pending = b"more".to_vec();
        let err = pump.flush(&mut target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
