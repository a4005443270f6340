//! Brings up `lo` in a created container's new network namespace, as Docker's `none` network has it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

/// Enters the network namespace of `pid`, sets `lo` up, and comes back.
///
/// Runs on the calling (single) thread between create and start, while the container's init
/// waits: libcontainer's `unshare(CLONE_NEWNET)` leaves loopback down.
pub(crate) fn bring_up_loopback(pid: i32) -> io::Result<()> {
    let own = File::open("/proc/thread-self/ns/net")?;
    let target = File::open(format!("/proc/{pid}/ns/net"))?;
    move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network))?;
    let result = set_loopback_up();
    // Coming back must not be skipped, whatever happened inside.
    move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network))?;
    result
}

/// Sets `lo` up in the calling thread's network namespace.
pub(crate) fn set_loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `request` is a valid ifreq naming an interface; the kernel fills in its flags.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS initialised the `ifru_flags` member of the union.
    unsafe {
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; the kernel reads the flags.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
