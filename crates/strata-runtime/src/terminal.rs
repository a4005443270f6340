//! Pseudo-terminals: receiving a container's pty master over a console socket, raw mode and
//! window size of our own terminal, and copying our stdin into the master.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::stdio::{set_nonblocking, InputPump, STDIN};

/// How long to wait for libcontainer to hand over the master: it is sent before `build`
/// returns, so this only bounds a misbehaving runtime.
const MASTER_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening unix socket libcontainer connects to (`with_console_socket`) to send the pty
/// master it opened inside the container. The socket file is removed on drop.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `dir/name`. Bound through `/proc/self/fd/<dir>` so that a long `dir` does
    /// not overflow `sun_path` (libcontainer connects through a symlink, which has no limit).
    pub(crate) fn bind(dir: &Path, name: &str) -> io::Result<Self> {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let dir_fd = File::open(dir)?;
        let short = format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd());
        let listener = UnixListener::bind(short)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, path })
    }

    /// Where libcontainer must connect.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts libcontainer's connection and receives the master it sends.
    pub(crate) fn receive_master(&self) -> io::Result<File> {
        let deadline = Instant::now() + MASTER_TIMEOUT;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    wait_readable(self.listener.as_fd(), deadline)?;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        };
        stream.set_nonblocking(true)?;
        loop {
            match receive_fd(stream.as_raw_fd()) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    wait_readable(stream.as_fd(), deadline)?;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits until `fd` is readable or `deadline` passes (then `TimedOut`).
fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the runtime did not send the terminal",
        ));
    }
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid, exclusively borrowed pollfd.
    let rc = unsafe { libc::poll(&mut pollfd, 1, ms.max(1)) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Receives one file descriptor (SCM_RIGHTS) from a connected unix socket.
fn receive_fd(socket: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at live buffers of the sizes it states.
    let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: recvmsg filled `msg`; the CMSG macros walk the control buffer it describes.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                if fd >= 0 {
                    return Ok(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the console socket message carried no file descriptor",
    ))
}

/// Our terminal put in raw mode (keys reach the container's pty untranslated: Ctrl-C becomes a
/// byte for the container, not SIGINT for us); the saved mode is restored on drop.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub(crate) fn enable(fd: RawFd) -> io::Result<Self> {
        let mut saved = MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr initialises `saved` when it succeeds.
        let saved = unsafe {
            if libc::tcgetattr(fd, saved.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            saved.assume_init()
        };
        let mut raw = saved;
        // SAFETY: `raw` is an initialised termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios for `fd`.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the termios read from the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Copies the window size of terminal `from` to the pty master `to`.
pub(crate) fn copy_window_size(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: winsize is plain old data; TIOCGWINSZ fills it, TIOCSWINSZ reads it.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut size) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(to, libc::TIOCSWINSZ, &size) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The runtime's side of a container's terminal: the master (non-blocking), our stdin copied
/// into it when asked, and our terminal's size followed on SIGWINCH.
pub(crate) struct PtyProxy {
    master: Option<File>,
    /// Our stdin while it is copied to the master.
    input: Option<InputPump>,
    /// Our terminal whose size the pty follows.
    size_source: Option<RawFd>,
    _raw: Option<RawMode>,
}

/// Standard output of this process.
const STDOUT: RawFd = 1;

impl PtyProxy {
    /// Wraps `master`. With `forward_stdin`, our stdin is copied into it and, when it is a
    /// terminal, put in raw mode for the proxy's lifetime. The pty takes the size of our
    /// stdin (when forwarded) or stdout, whichever is a terminal first.
    pub(crate) fn new(master: File, forward_stdin: bool) -> io::Result<Self> {
        set_nonblocking(master.as_raw_fd())?;
        let stdin_tty = forward_stdin && io::stdin().is_terminal();
        let size_source = if stdin_tty {
            Some(STDIN)
        } else if io::stdout().is_terminal() {
            Some(STDOUT)
        } else {
            None
        };
        if let Some(from) = size_source {
            // A terminal without a size (0x0) is not worth failing the run for.
            let _ = copy_window_size(from, master.as_raw_fd());
        }
        let raw = if stdin_tty {
            Some(RawMode::enable(STDIN)?)
        } else {
            None
        };
        Ok(Self {
            master: Some(master),
            input: forward_stdin.then(|| InputPump::new(STDIN)),
            size_source,
            _raw: raw,
        })
    }

    /// Whether the master still has output to read.
    pub(crate) fn is_open(&self) -> bool {
        self.master.is_some()
    }

    /// Whether SIGWINCH resizes the pty (instead of being forwarded).
    pub(crate) fn follows_window_size(&self) -> bool {
        self.size_source.is_some() && self.master.is_some()
    }

    pub(crate) fn resize(&self) {
        if let (Some(from), Some(master)) = (self.size_source, &self.master) {
            let _ = copy_window_size(from, master.as_raw_fd());
        }
    }

    /// The descriptors to poll: the master (readable; writable while input is pending) and
    /// our stdin while nothing is pending. Returns `(master, stdin)` indexes into `pollfds`.
    pub(crate) fn add_pollfds(
        &self,
        pollfds: &mut Vec<libc::pollfd>,
    ) -> (Option<usize>, Option<usize>) {
        let Some(master) = &self.master else {
            return (None, None);
        };
        let mut events = libc::POLLIN;
        if self.input.as_ref().is_some_and(InputPump::has_pending) {
            events |= libc::POLLOUT;
        }
        pollfds.push(libc::pollfd {
            fd: master.as_raw_fd(),
            events,
            revents: 0,
        });
        let master_index = pollfds.len() - 1;
        let stdin_index = match self.input.as_ref().and_then(InputPump::poll_source) {
            Some(fd) => {
                pollfds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                Some(pollfds.len() - 1)
            }
            _ => None,
        };
        (Some(master_index), stdin_index)
    }

    /// Reads what the master has (until it would block) into `sink`; closes it at EOF
    /// (`EIO` once every slave descriptor is closed).
    pub(crate) fn read_master(
        &mut self,
        buf: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> io::Result<()> {
        while let Some(master) = self.master.as_mut() {
            match master.read(buf) {
                Ok(0) => self.master = None,
                Ok(n) => sink(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.raw_os_error() == Some(libc::EIO) => self.master = None,
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Writes pending input into the master, as much as it takes now.
    pub(crate) fn flush_input(&mut self) -> io::Result<()> {
        let Some(input) = self.input.as_mut() else {
            return Ok(());
        };
        let Some(master) = self.master.as_mut() else {
            input.stop();
            return Ok(());
        };
        if let Err(err) = input.flush(master) {
            // The container side is gone: input has nowhere to go.
            if err.raw_os_error() != Some(libc::EIO) {
                return Err(err);
            }
            input.stop();
        }
        Ok(())
    }

    /// Reads our stdin once (poll said it is readable) and queues it for the master. At EOF
    /// stdin is no longer read; the pty stays open for output.
    pub(crate) fn read_input(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if let Some(input) = self.input.as_mut() {
            input.read(buf);
        }
        self.flush_input()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// Sends `fd` over `stream` the way libcontainer does (name bytes plus SCM_RIGHTS).
    fn send_fd(stream: &UnixStream, fd: RawFd) {
        let name = b"/dev/ptmx";
        let mut iov = libc::iovec {
            iov_base: name.as_ptr() as *mut libc::c_void,
            iov_len: name.len(),
        };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            assert!(libc::sendmsg(stream.as_raw_fd(), &msg, 0) > 0);
        }
    }

    #[test]
    fn console_socket_receives_a_descriptor_and_removes_its_file() {
        // A long directory name: binding must not depend on sun_path's 108 bytes.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d".repeat(120));
        std::fs::create_dir(&dir).unwrap();
        let socket = ConsoleSocket::bind(&dir, "console.sock").unwrap();
        assert!(socket.path().exists());

        let (mut read, write) = UnixStream::pair().unwrap();
        std::os::unix::fs::symlink(socket.path(), tmp.path().join("link")).unwrap();
        let client = UnixStream::connect(tmp.path().join("link")).unwrap();
        send_fd(&client, write.as_raw_fd());
        let mut received = socket.receive_master().unwrap();
        received.write_all(b"through the passed fd").unwrap();
        drop(received);
        drop(write);
        let mut got = String::new();
        read.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the passed fd");

        let path = socket.path().to_owned();
        drop(socket);
        assert!(!path.exists());
    }

    #[test]
    fn a_message_without_a_descriptor_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::bind(tmp.path(), "c.sock").unwrap();
        let mut client = UnixStream::connect(socket.path()).unwrap();
        client.write_all(b"x").unwrap();
        let err = socket.receive_master().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn proxy_reads_master_output_until_eio() {
        // A real pty pair from the host's /dev/ptmx.
        let mut master: RawFd = -1;
        let mut slave: RawFd = -1;
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
        let master = unsafe { File::from_raw_fd(master) };
        let mut slave = unsafe { File::from_raw_fd(slave) };
        let mut proxy = PtyProxy::new(master, false).unwrap();
        slave.write_all(b"one\n").unwrap();
        drop(slave);
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        proxy
            .read_master(&mut buf, &mut |b| out.extend_from_slice(b))
            .unwrap();
        assert_eq!(out, b"one\r\n", "the pty's ONLCR turns \\n into \\r\\n");
        assert!(!proxy.is_open());
    }
}
