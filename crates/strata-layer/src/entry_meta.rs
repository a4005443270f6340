//! The metadata of a tar entry: reading it from the header and PAX records, and setting
//! it on what an entry created, never following a symlink.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, XattrFlags};

use crate::in_root::{open_path_nofollow, proc_fd_path};

/// The metadata of one entry, as the header and its PAX records give it.
pub(crate) struct EntryMeta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Timespec,
    pub(crate) xattrs: Vec<(CString, Vec<u8>)>,
}

/// Mode (permission bits only), owner, mtime (PAX `mtime` wins, with its fraction) and the
/// `SCHILY.xattr.*` records of an entry; overlayfs' own xattrs are dropped here.
pub(crate) fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<EntryMeta, String> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| format!("bad mode field: {e}"))? & 0o7777;
    // The tar crate already applied PAX uid/gid records to the header.
    let uid = header.uid().map_err(|e| format!("bad uid field: {e}"))?;
    let gid = header.gid().map_err(|e| format!("bad gid field: {e}"))?;
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} does not fit 32 bits"))?;
    let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} does not fit 32 bits"))?;
    let header_mtime = header
        .mtime()
        .map_err(|e| format!("bad mtime field: {e}"))?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(header_mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| format!("bad pax records: {e}"))?
    {
        for record in pax {
            let record = record.map_err(|e| format!("bad pax record: {e}"))?;
            let key = record.key_bytes();
            if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes())
                    .ok_or_else(|| "bad pax mtime record".to_string())?;
            } else if key.starts_with(b"GNU.sparse.") {
                // Its data is a sparse map plus fragments; written as is it would be garbage.
                return Err("PAX-format GNU sparse files are not supported".into());
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if is_overlay_xattr(name) {
                    continue;
                }
                let name = CString::new(name).map_err(|_| "xattr name with a NUL byte")?;
                xattrs.push((name, record.value_bytes().to_vec()));
            }
        }
    }
    Ok(EntryMeta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// overlayfs' own xattrs: they would change what the merged view shows, so no layer may set them.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// A PAX time: `<seconds>[.<fraction>]`, possibly negative.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if !negative {
        Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        }
    } else if nanos == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        }
    })
}

pub(crate) fn device_numbers(header: &tar::Header) -> Result<(u32, u32), String> {
    let major = header
        .device_major()
        .map_err(|e| format!("bad device major: {e}"))?
        .unwrap_or(0);
    let minor = header
        .device_minor()
        .map_err(|e| format!("bad device minor: {e}"))?
        .unwrap_or(0);
    Ok((major, minor))
}

pub(crate) fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

fn ignore_unsupported(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Err(rustix::io::Errno::NOTSUP) => Ok(()),
        other => Ok(other?),
    }
}

/// Ownership, xattrs and mode on an open regular file or directory.
pub(crate) fn set_fd_meta(
    preserve_owners: bool,
    fd: BorrowedFd<'_>,
    meta: &EntryMeta,
) -> io::Result<()> {
    if preserve_owners {
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
        )?;
    }
    // Xattrs after chown, which clears security.capability; chmod last, as chown also
    // clears setuid/setgid.
    for (name, value) in &meta.xattrs {
        ignore_unsupported(rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty()))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    Ok(())
}

/// Metadata on a just-created symlink, device or fifo, without following or opening it.
pub(crate) fn set_special_meta(
    preserve_owners: bool,
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &EntryMeta,
    chmod: bool,
) -> io::Result<()> {
    if preserve_owners {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if !meta.xattrs.is_empty() || chmod {
        let opath = open_path_nofollow(dir, name)?;
        let proc_path = proc_fd_path(opath.as_fd());
        for (xname, value) in &meta.xattrs {
            // setxattr through the magic link reaches the O_PATH inode itself.
            ignore_unsupported(rustix::fs::setxattr(
                proc_path.as_str(),
                xname,
                value,
                XattrFlags::empty(),
            ))?;
        }
        if chmod {
            rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(meta.mode))?;
        }
    }
    rustix::fs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("1700000000", Some((1_700_000_000, 0))),
            ("1700000000.5", Some((1_700_000_000, 500_000_000))),
            ("1.123456789123", Some((1, 123_456_789))),
            ("-1.25", Some((-2, 750_000_000))),
            ("-3", Some((-3, 0))),
            ("", None),
            ("abc", None),
            ("1.x", None),
        ];
        for (text, want) in cases {
            let got = parse_pax_time(text.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn overlay_xattrs_are_recognised() {
        assert!(is_overlay_xattr(b"trusted.overlay.opaque"));
        assert!(is_overlay_xattr(b"user.overlay.redirect"));
        assert!(!is_overlay_xattr(b"security.capability"));
        assert!(!is_overlay_xattr(b"user.overlayish"));
    }
}
