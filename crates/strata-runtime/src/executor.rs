//! The last code strata runs inside a container's process before the user's program: the
//! libcontainer `Executor` hook, used for inits and exec'd processes alike.
//!
//! - `validate` (before the container is reported created, so a refusal fails the start
//!   cleanly): the working directory must be inside the container. libcontainer `chdir`s
//!   while descriptors of the runtime process are still open, so a cwd of
//!   `/proc/self/fd/N` lands in a host directory (CVE-2024-21626); its own check trusts glibc's
//!   `getcwd`, which hides the kernel's "(unreachable)" answer. We ask the kernel directly and
//!   compare the directory with the cwd resolved inside the root.
//! - `exec`: every signal disposition and the signal mask back to their defaults (ignored
//!   signals survive exec, and every strata process ignores SIGPIPE, as Rust's std sets it),
//!   every descriptor above stderr close-on-exec, for an exec'd process the container's
//!   seccomp filter (libcontainer 0.7 drops `linux.seccomp` when it builds the spec of a
//!   process joining a container), then libcontainer's default exec.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libcontainer::seccomp::initialize_seccomp;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::{LinuxSeccomp, Spec};
use rustix::fs::OFlags;
use rustix::io::Errno;

/// strata's executor: [`DefaultExecutor`] plus the checks and resets above.
#[derive(Clone, Default)]
pub(crate) struct ContainerExecutor {
    /// A filter to load right before exec (for exec'd processes; libcontainer loads an
    /// init's itself).
    pub(crate) seccomp: Option<LinuxSeccomp>,
}

impl Executor for ContainerExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        close_on_exec_above_stderr();
        if let Some(seccomp) = &self.seccomp {
            load_seccomp(seccomp)?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        if let Some(process) = spec.process() {
            verify_cwd(process.cwd()).map_err(ExecutorValidationError::ArgValidationError)?;
        }
        DefaultExecutor {}.validate(spec)
    }
}

/// Loads `seccomp` into this process. Without CAP_SYS_ADMIN the kernel wants no_new_privs
/// first: an exec'd process of a container run with `no-new-privileges=false` gets it, so
/// that it is filtered like the container's init (whose filter libcontainer loads before
/// dropping capabilities).
fn load_seccomp(seccomp: &LinuxSeccomp) -> Result<(), ExecutorError> {
    if initialize_seccomp(seccomp).is_ok() {
        return Ok(());
    }
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    initialize_seccomp(seccomp)
        .map(drop)
        .map_err(|e| ExecutorError::Other(format!("loading the seccomp filter: {e}")))
}

/// Checks that this process's working directory is `expected` resolved inside its root.
fn verify_cwd(expected: &Path) -> Result<(), String> {
    let outside = || {
        format!(
            "working directory {} resolves outside the container",
            expected.display()
        )
    };
    // The kernel prefixes a directory that is not below our root with "(unreachable)".
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: getcwd writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err(format!(
            "reading the working directory {}: {}",
            expected.display(),
            std::io::Error::last_os_error()
        ));
    }
    if buf.first() != Some(&b'/') {
        return Err(outside());
    }
    let here = stat_fd(libc::AT_FDCWD, c".").map_err(|e| format!("stat of the cwd: {e}"))?;
    let root = open(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| format!("opening the root: {e}"))?;
    match strata_inroot::open_in_root(&root, expected, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(dir) => {
            let there = stat_fd(dir.as_raw_fd(), c"").map_err(|e| format!("stat: {e}"))?;
            if (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino) {
                Ok(())
            } else {
                Err(outside())
            }
        }
        // Not ours to search (a non-root user), or openat2 refused by a custom seccomp
        // profile: the kernel's getcwd answer above stands alone.
        Err(Errno::ACCESS | Errno::PERM | Errno::NOSYS) => Ok(()),
        // A magic link (/proc/self/fd/N, /proc/1/cwd) or a mount crossing.
        Err(Errno::LOOP | Errno::XDEV) => Err(outside()),
        Err(e) => Err(format!("working directory {}: {e}", expected.display())),
    }
}

fn open(dir: libc::c_int, path: &std::ffi::CStr, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the result is a new descriptor or -1.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_fd(dir: libc::c_int, path: &std::ffi::CStr) -> std::io::Result<libc::stat> {
    // SAFETY: stat is plain old data; fstatat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if path.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `st` is writable, `path` NUL-terminated.
    if unsafe { libc::fstatat(dir, path.as_ptr(), &mut st, flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

/// The kernel's `struct sigaction` (glibc's wrapper refuses its two internal real-time
/// signals, which a parent may have left ignored too).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Every signal to its default disposition, none blocked.
fn reset_signals() {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a valid kernel sigaction, no old action requested, the kernel's set size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    let empty: u64 = 0;
    // SAFETY: an 8-byte signal set, the kernel's size; no old mask requested.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

/// Marks every descriptor above 2 close-on-exec (libcontainer did once already; this also
/// covers anything opened since, ours included).
fn close_on_exec_above_stderr() {
    // SAFETY: close_range only changes descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: one by one.
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect();
        for fd in fds {
            // SAFETY: F_SETFD on a descriptor number; a closed one just fails.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_process_cwd_verifies_against_itself() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(verify_cwd(&cwd), Ok(()));
        let err = verify_cwd(Path::new("/")).unwrap_err();
        assert!(err.contains("outside the container"), "{err}");
    }
}
