//! write_layer → apply_layer gives back the same tree; write_layer is deterministic.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};
use strata_layer::{
    apply_layer, write_layer, ApplyOptions, ChangeSource, WhiteoutMode, WriteOptions,
};

const LONG_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn set_time(path: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 123_456_789,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    rustix::fs::chmod(path, Mode::from_raw_mode(mode)).unwrap();
}

fn setx(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).unwrap();
}

/// A tree with every entry type and every piece of metadata a layer carries.
fn build_tree(root: &Path) {
    let p = |s: &str| root.join(s);
    fs::create_dir_all(p("dir/sub")).unwrap();
    fs::create_dir(p("empty")).unwrap();
    fs::create_dir(p("tmp")).unwrap();
    chmod(&p("tmp"), 0o1777);
    fs::create_dir(p("sgid")).unwrap();
    chmod(&p("sgid"), 0o2755);
    fs::write(p("dir/file"), b"hello").unwrap();
    fs::write(p("dir/sub/big"), vec![7u8; 1_000_003]).unwrap();
    fs::write(p("suid"), b"#!/bin/sh\n").unwrap();
    fs::write(p("cap"), b"ping").unwrap();
    fs::write(p("h1"), b"shared").unwrap();
    fs::hard_link(p("h1"), p("dir/h2")).unwrap();
    fs::hard_link(p("h1"), p("h3")).unwrap();
    symlink("dir/file", p("rel-link")).unwrap();
    symlink("/etc/passwd", p("abs-link")).unwrap();
    symlink(format!("/{LONG_A}/{LONG_A}"), p("long-link")).unwrap();
    fs::create_dir_all(p(&format!("long/{LONG_A}/{LONG_A}"))).unwrap();
    fs::write(p(&format!("long/{LONG_A}/{LONG_A}/file-{LONG_A}")), b"deep").unwrap();
    let latin1 = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::write(&latin1, b"bytes").unwrap();
    let mk = |name: &str, ft: FileType, dev| {
        rustix::fs::mknodat(CWD, p(name), ft, Mode::from_raw_mode(0o640), dev).unwrap()
    };
    mk("null", FileType::CharacterDevice, rustix::fs::makedev(1, 3));
    mk("loop9", FileType::BlockDevice, rustix::fs::makedev(7, 9));
    mk("fifo", FileType::Fifo, 0);

    chmod(&p("suid"), 0o4755);
    chown(&p("dir/file"), 1000, 1000);
    chown(&p("dir"), 1000, 100);
    chown(&p("fifo"), 3_000_000, 4_000_000); // beyond ustar's octal fields: PAX uid/gid
    chown(&p("abs-link"), 12, 34);
    chown(&p("suid"), 0, 0);
    chmod(&p("suid"), 0o4755);
    setx(&p("dir/file"), "user.note", b"v\0binary\xff");
    setx(&p("dir"), "user.dirnote", b"d");
    setx(&p("abs-link"), "trusted.linknote", b"t");
    // cap_net_bind_service+ep, VFS_CAP_REVISION_2.
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    setx(&p("cap"), "security.capability", &cap);
    chmod(&p("cap"), 0o755);

    // mtimes last, directories after their contents.
    let mut all: Vec<_> = common::snapshot(root).into_keys().collect();
    all.sort_by_key(|k| std::cmp::Reverse(k.components().count()));
    for (i, rel) in all.iter().enumerate() {
        set_time(&root.join(rel), 1_500_000_000 + i as i64 * 1000);
    }
}

fn write(dir: &Path, source: ChangeSource, clamp: Option<i64>) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = WriteOptions {
        source,
        mtime_clamp: clamp,
    };
    write_layer(dir, &mut out, &opts).unwrap();
    out
}

fn apply(tar: &[u8], root: &Path) {
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        preserve_owners: true,
    };
    apply_layer(tar, root, &opts).unwrap();
}

#[test]
fn round_trip_keeps_everything() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let tar = write(src.path(), ChangeSource::PlainTree, None);

    let dst = tempfile::tempdir().unwrap();
    apply(&tar, dst.path());
    let (a, b) = (common::snapshot(src.path()), common::snapshot(dst.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, node) in &a {
        assert_eq!(Some(node), b.get(path), "{}", path.display());
    }
    // Hardlinks share one inode again.
    let ino = |p: &str| fs::symlink_metadata(dst.path().join(p)).unwrap().ino();
    assert_eq!(ino("h1"), ino("dir/h2"));
    assert_eq!(ino("h1"), ino("h3"));
    assert_eq!(b[Path::new("h1")].nlink, 3);
    assert_eq!(b[Path::new("null")].rdev, rustix::fs::makedev(1, 3));
    assert_eq!(b[Path::new("fifo")].uid, 3_000_000);
    assert!(b[Path::new("cap")]
        .xattrs
        .contains_key(&b"security.capability"[..]));
}

#[test]
fn writing_is_deterministic_across_runs_and_copies() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let first = write(src.path(), ChangeSource::PlainTree, None);
    assert_eq!(first, write(src.path(), ChangeSource::PlainTree, None));
    // A copy has other inode numbers and directory order on disk, and the same tar.
    let copy = tempfile::tempdir().unwrap();
    apply(&first, copy.path());
    assert_eq!(first, write(copy.path(), ChangeSource::PlainTree, None));
}

/// What the tests look at in one written entry.
struct TarEntry {
    name: String,
    kind: char,
    mode: u32,
    mtime: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    link: String,
}

fn entries(tar: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            TarEntry {
                name: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                kind: h.entry_type().as_byte() as char,
                mode: h.mode().unwrap(),
                mtime: h.mtime().unwrap(),
                uname: h.username_bytes().unwrap_or_default().to_vec(),
                gname: h.groupname_bytes().unwrap_or_default().to_vec(),
                link: String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default())
                    .into_owned(),
            }
        })
        .collect()
}

#[test]
fn entries_are_ordered_named_and_linked_like_docker() {
    let src = tempfile::tempdir().unwrap();
    let p = |s: &str| src.path().join(s);
    fs::create_dir(p("a")).unwrap();
    fs::write(p("a/x"), b"1").unwrap();
    fs::write(p("a-b"), b"2").unwrap();
    fs::write(p("a.txt"), b"3").unwrap();
    fs::hard_link(p("a.txt"), p("A")).unwrap();
    fs::write(p("b"), b"4").unwrap();
    let tar = write(src.path(), ChangeSource::PlainTree, None);
    let got: Vec<(String, char, String)> = entries(&tar)
        .into_iter()
        .map(|e| {
            assert!(
                e.uname.is_empty() && e.gname.is_empty(),
                "{}: owners must be numeric only",
                e.name
            );
            (e.name, e.kind, e.link)
        })
        .collect();
    let want = [
        ("A", '0', ""),
        ("a/", '5', ""),
        ("a/x", '0', ""),
        ("a-b", '0', ""),
        ("a.txt", '1', "A"),
        ("b", '0', ""),
    ];
    let want: Vec<(String, char, String)> = want
        .iter()
        .map(|(n, t, l)| (n.to_string(), *t, l.to_string()))
        .collect();
    assert_eq!(got, want);
    // ustar magic, then two zero blocks and nothing else.
    assert_eq!(&tar[257..265], b"ustar\x0000");
    assert!(tar.len().is_multiple_of(512) && tar[tar.len() - 1024..].iter().all(|b| *b == 0));
}

#[test]
fn mtimes_are_clamped() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("old"), b"o").unwrap();
    fs::write(src.path().join("new"), b"n").unwrap();
    set_time(&src.path().join("old"), 1_000);
    set_time(&src.path().join("new"), 2_000_000_000);
    let tar = write(src.path(), ChangeSource::PlainTree, Some(1_700_000_000));
    let times: Vec<(String, u64)> = entries(&tar)
        .into_iter()
        .map(|e| (e.name, e.mtime))
        .collect();
    assert_eq!(
        times,
        [
            ("new".to_string(), 1_700_000_000),
            ("old".to_string(), 1_000)
        ]
    );
}

#[test]
fn overlay_upper_becomes_whiteouts_and_opaque_markers() {
    let up = tempfile::tempdir().unwrap();
    let p = |s: &str| up.path().join(s);
    fs::write(p("f"), b"f").unwrap();
    rustix::fs::mknodat(CWD, p("gone"), FileType::CharacterDevice, Mode::empty(), 0).unwrap();
    fs::hard_link(p("gone"), p("gone2")).unwrap(); // overlayfs shares whiteout inodes
    fs::create_dir(p("op")).unwrap();
    chmod(&p("op"), 0o755);
    chmod(&p("f"), 0o644);
    setx(&p("op"), "trusted.overlay.opaque", b"y");
    fs::write(p("op/inner"), b"i").unwrap();
    fs::create_dir(p("plain")).unwrap();
    setx(&p("plain"), "trusted.overlay.origin", b"\x00\xfb");
    setx(&p("plain"), "trusted.overlay.opaque", b"x");
    setx(&p("plain"), "user.overlay.impure", b"y");
    setx(&p("plain"), "user.kept", b"k");

    let tar = write(up.path(), ChangeSource::OverlayUpper, None);
    let names: Vec<(String, char)> = entries(&tar)
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    let want = [
        ("f", '0'),
        (".wh.gone", '0'),
        (".wh.gone2", '0'),
        ("op/", '5'),
        ("op/.wh..wh..opq", '0'),
        ("op/inner", '0'),
        ("plain/", '5'),
    ];
    let want: Vec<(String, char)> = want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    assert_eq!(names, want);
    // Whiteout headers as Docker's overlay2 driver writes them; modes carry type bits.
    let modes: Vec<(String, u32, u64)> = entries(&tar)
        .into_iter()
        .map(|e| (e.name, e.mode, e.mtime))
        .collect();
    let gone_mtime = fs::symlink_metadata(p("gone")).unwrap().mtime() as u64;
    assert_eq!(modes[1], (".wh.gone".to_string(), 0o600, gone_mtime));
    assert_eq!(modes[3].1, 0o40755);
    assert_eq!(modes[4], ("op/.wh..wh..opq".to_string(), 0o755, 0));
    assert_eq!(modes[0].1, 0o100644);
    let text = String::from_utf8_lossy(&tar);
    assert!(
        !text.contains("overlay."),
        "overlay xattrs leaked into the tar"
    );
    assert!(text.contains("SCHILY.xattr.user.kept=k"));

    // The same dir as a plain tree: the whiteout is just a device, nothing is opaque.
    let plain = write(up.path(), ChangeSource::PlainTree, None);
    let names: Vec<(String, char)> = entries(&plain)
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert!(names.contains(&("gone".to_string(), '3')));
    assert!(names.contains(&("gone2".to_string(), '1')));
    assert!(!names.iter().any(|(n, _)| n.contains(".wh.")));
}
