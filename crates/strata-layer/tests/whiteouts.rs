//! Whiteouts and opaque directories in both modes, and a real overlayfs mount over the markers.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::RawTar;
use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};

fn apply(tar: &RawTar, root: &Path, whiteouts: WhiteoutMode) {
    let opts = ApplyOptions {
        whiteouts,
        preserve_owners: true,
    };
    apply_layer(&tar.finish()[..], root, &opts).unwrap();
}

fn lower() -> RawTar {
    let mut t = RawTar::new();
    t.file("a", b"a")
        .file("b", b"b")
        .dir("d/")
        .file("d/x", b"x")
        .dir("d/sub/")
        .file("d/sub/z", b"z")
        .dir("e/")
        .file("e/keep", b"k")
        .file("e/other", b"o");
    t
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn remove_mode_deletes_and_empties_whatever_the_entry_order() {
    // The opaque marker before and after the layer's own entries in that directory.
    let uppers: [&dyn Fn(&mut RawTar); 2] = [
        &|t| {
            t.file(".wh.a", b"")
                .dir("d/")
                .file("d/.wh..wh..opq", b"")
                .file("d/new", b"n")
                .dir("d/sub/")
                .file("e/.wh.missing", b"");
        },
        &|t| {
            t.file(".wh.a", b"")
                .dir("d/")
                .file("d/new", b"n")
                .dir("d/sub/")
                .file("d/.wh..wh..opq", b"")
                .file("e/.wh.missing", b"");
        },
    ];
    for upper in uppers {
        let tmp = tempfile::tempdir().unwrap();
        apply(&lower(), tmp.path(), WhiteoutMode::Remove);
        let mut t = RawTar::new();
        upper(&mut t);
        apply(&t, tmp.path(), WhiteoutMode::Remove);
        assert_eq!(names(tmp.path()), ["b", "d", "e"]);
        assert_eq!(names(&tmp.path().join("d")), ["new", "sub"]);
        // d/sub came again in this layer, but what lower layers put in it is hidden.
        assert!(names(&tmp.path().join("d/sub")).is_empty());
        assert_eq!(names(&tmp.path().join("e")), ["keep", "other"]);
    }
}

#[test]
fn remove_mode_whiteout_of_a_directory_removes_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    apply(&lower(), tmp.path(), WhiteoutMode::Remove);
    let mut t = RawTar::new();
    t.file(".wh.d", b"");
    let stats = apply_layer(
        &t.finish()[..],
        tmp.path(),
        &ApplyOptions {
            whiteouts: WhiteoutMode::Remove,
            preserve_owners: false,
        },
    )
    .unwrap();
    assert_eq!(stats.entries, 1);
    assert_eq!(names(tmp.path()), ["a", "b", "e"]);
}

#[test]
fn overlay_markers_mode_writes_overlay_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = RawTar::new();
    t.file(".wh.a", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file("deep/er/.wh.gone", b"");
    apply(&t, tmp.path(), WhiteoutMode::OverlayMarkers);
    assert_eq!(names(tmp.path()), ["a", "d", "deep"]);
    let a = fs::symlink_metadata(tmp.path().join("a")).unwrap();
    assert!(a.file_type().is_char_device());
    assert_eq!(a.rdev(), 0);
    let gone = fs::symlink_metadata(tmp.path().join("deep/er/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(names(&tmp.path().join("d")), ["new"]);
    let x = common::xattrs(&tmp.path().join("d"));
    assert_eq!(x.get(&b"trusted.overlay.opaque"[..]).unwrap(), b"y");
}

#[test]
#[allow(clippy::print_stderr)]
fn overlayfs_merged_view_hides_whited_out_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (l1, l2, merged) = (
        tmp.path().join("l1"),
        tmp.path().join("l2"),
        tmp.path().join("m"),
    );
    for d in [&l1, &l2, &merged] {
        fs::create_dir(d).unwrap();
    }
    apply(&lower(), &l1, WhiteoutMode::OverlayMarkers);
    let mut t = RawTar::new();
    t.file(".wh.a", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file("e/.wh.keep", b"");
    apply(&t, &l2, WhiteoutMode::OverlayMarkers);

    let data =
        std::ffi::CString::new(format!("lowerdir={}:{}", l2.display(), l1.display())).unwrap();
    let mounted = rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        rustix::mount::MountFlags::RDONLY,
        data.as_c_str(),
    );
    if let Err(e) = mounted {
        eprintln!("note: overlayfs mount failed ({e}); skipping the merged-view check");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        assert_eq!(names(&merged), ["b", "d", "e"]);
        assert_eq!(names(&merged.join("d")), ["new"]);
        assert_eq!(names(&merged.join("e")), ["other"]);
        assert_eq!(fs::read(merged.join("b")).unwrap(), b"b");
    });
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    result.unwrap();
}

#[test]
fn later_entries_replace_earlier_ones_but_directories_merge() {
    let tmp = tempfile::tempdir().unwrap();
    apply(&lower(), tmp.path(), WhiteoutMode::Remove);
    let mut t = RawTar::new();
    t.dir("a/") // file → dir
        .file("a/inside", b"i")
        .file("d", b"now a file") // dir with contents → file
        .symlink("b", "a") // file → symlink
        .entry(b"e/", tar::EntryType::Directory, 0o700, b"", b"") // dir → dir: merged
        .hardlink("e/keep", "a/inside"); // file → hardlink
    apply(&t, tmp.path(), WhiteoutMode::Remove);
    assert!(tmp.path().join("a").is_dir());
    assert_eq!(fs::read(tmp.path().join("d")).unwrap(), b"now a file");
    assert_eq!(fs::read_link(tmp.path().join("b")).unwrap(), Path::new("a"));
    assert_eq!(fs::read(tmp.path().join("e/other")).unwrap(), b"o");
    let e = fs::metadata(tmp.path().join("e")).unwrap();
    assert_eq!(e.mode() & 0o7777, 0o700);
    assert_eq!(
        fs::metadata(tmp.path().join("e/keep")).unwrap().ino(),
        fs::metadata(tmp.path().join("a/inside")).unwrap().ino()
    );
}
