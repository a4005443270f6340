//! `RunObserver`: how a caller (the per-container monitor) follows a run as it happens, and the
//! observer behind [`crate::run`] that routes output by [`OutputMode`].

use std::io::Write;

use crate::spec::{OutputMode, StdioSpec};

/// Which of the container's output streams bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Error an observer returns from [`RunObserver::created`] to abort the run.
pub type ObserverError = Box<dyn std::error::Error + Send + Sync>;

/// Follows one container run through [`crate::run_observed`], on the runtime's own thread.
///
/// The calls come in this order: `created` once, `started` once (unless `created` failed),
/// then `output` as bytes arrive, until the container's init has exited and its streams are
/// at end of file. Callbacks must not block for long: the same thread forwards signals and
/// input to the container.
pub trait RunObserver {
    /// The container exists, its init process is `pid` (in this process's pid namespace) and
    /// the user process has not started yet: set up networking, record state. An error aborts
    /// the run: the container is killed and deleted and the error returned.
    fn created(&mut self, pid: i32) -> Result<(), ObserverError>;

    /// The user process has been started.
    fn started(&mut self, pid: i32);

    /// Bytes the container wrote: its stdout and stderr pipes, or under a terminal the pty
    /// master (all of it as [`OutputStream::Stdout`], as `docker run -t` has one stream).
    fn output(&mut self, stream: OutputStream, bytes: &[u8]);

    /// Whether the observer still wants `stream`. Once it does not, the container's end of
    /// that pipe is closed, so the container's next write fails with EPIPE — as it would
    /// have on the observer's own closed stream (`strata run img yes | head -1`).
    fn wants(&self, _stream: OutputStream) -> bool {
        true
    }
}

/// The observer of [`crate::run`]: collects [`OutputMode::Capture`] streams and writes
/// [`OutputMode::Inherit`] ones to this process's own stdout/stderr. Only terminal output and
/// captured pipes reach it: inherited streams without a terminal go straight to our fds.
pub(crate) struct StdioRouter {
    modes: [OutputMode; 2],
    pub(crate) collected: [Vec<u8>; 2],
    /// Our own stream was found closed (EPIPE).
    broken: [bool; 2],
}

impl StdioRouter {
    pub(crate) fn new(stdio: &StdioSpec) -> Self {
        Self {
            modes: [stdio.stdout, stdio.stderr],
            collected: [Vec::new(), Vec::new()],
            broken: [false; 2],
        }
    }
}

impl RunObserver for StdioRouter {
    fn created(&mut self, _pid: i32) -> Result<(), ObserverError> {
        Ok(())
    }

    fn started(&mut self, _pid: i32) {}

    fn output(&mut self, stream: OutputStream, bytes: &[u8]) {
        let index = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        match self.modes[index] {
            OutputMode::Capture => self.collected[index].extend_from_slice(bytes),
            OutputMode::Null => {}
            // Flushed at once: a prompt without a newline must show. Our own stream going
            // away (a closed pipe) does not stop the run; the container sees it close too.
            OutputMode::Inherit => {
                let written = match stream {
                    OutputStream::Stdout => write_now(&mut std::io::stdout().lock(), bytes),
                    OutputStream::Stderr => write_now(&mut std::io::stderr().lock(), bytes),
                };
                if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
                    self.broken[index] = true;
                }
            }
        }
    }

    fn wants(&self, stream: OutputStream) -> bool {
        !self.broken[stream as usize]
    }
}

fn write_now(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_collects_captured_streams_and_drops_null_ones() {
        let mut router = StdioRouter::new(&StdioSpec {
            stdout: OutputMode::Capture,
            stderr: OutputMode::Null,
            ..StdioSpec::default()
        });
        router.output(OutputStream::Stdout, b"a");
        router.output(OutputStream::Stderr, b"dropped");
        router.output(OutputStream::Stdout, b"b");
        assert_eq!(router.collected, [b"ab".to_vec(), Vec::new()]);
    }
}
