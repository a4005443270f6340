//! Names and link targets past ustar's 100 bytes, in PAX and GNU spelling, and past 255 bytes.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::RawTar;
use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use tar::EntryType;

fn opts() -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        preserve_owners: true,
    }
}

#[test]
fn pax_and_gnu_long_names_and_links() {
    let comp = "c".repeat(120);
    let dir150 = format!("p/{comp}/"); // > 100
    let deep = format!("g/{comp}/{comp}/{comp}/"); // > 255
    let cases = [
        (format!("{dir150}pax-file"), true),
        (format!("{deep}pax-file"), true),
        (format!("{dir150}gnu-file"), false),
        (format!("{deep}gnu-file"), false),
    ];
    let mut tar = RawTar::new();
    for (name, pax) in &cases {
        if *pax {
            tar.pax(&[("path", name.as_bytes())]);
        } else {
            tar.gnu_long(b'L', name.as_bytes());
        }
        // The header's own name is a truncated decoy; the long record wins.
        tar.entry(
            &name.as_bytes()[..100],
            EntryType::Regular,
            0o644,
            name.as_bytes(),
            b"",
        );
    }
    let long_target = format!("/{comp}/{comp}/{comp}");
    tar.pax(&[("linkpath", long_target.as_bytes())])
        .entry(b"pax-link", EntryType::Symlink, 0o777, b"", b"decoy")
        .gnu_long(b'K', long_target.as_bytes())
        .entry(b"gnu-link", EntryType::Symlink, 0o777, b"", b"decoy")
        .pax(&[("linkpath", cases[1].0.as_bytes())])
        .entry(b"pax-hardlink", EntryType::Link, 0o644, b"", b"decoy")
        .gnu_long(b'L', format!("{deep}gnu-hardlink").as_bytes())
        .gnu_long(b'K', cases[3].0.as_bytes())
        .entry(b"decoy", EntryType::Link, 0o644, b"", b"decoy");

    let root = tempfile::tempdir().unwrap();
    let stats = apply_layer(&tar.finish()[..], root.path(), &opts()).unwrap();
    assert_eq!(stats.entries, 8);
    for (name, _) in &cases {
        assert_eq!(fs::read(root.path().join(name)).unwrap(), name.as_bytes());
    }
    for link in ["pax-link", "gnu-link"] {
        let target = fs::read_link(root.path().join(link)).unwrap();
        assert_eq!(target.to_str().unwrap(), long_target);
    }
    let ino = |p: &str| fs::metadata(root.path().join(p)).unwrap().ino();
    assert_eq!(ino("pax-hardlink"), ino(&cases[1].0));
    assert_eq!(ino(&format!("{deep}gnu-hardlink")), ino(&cases[3].0));
    assert!(!root.path().join("decoy").exists());
}
