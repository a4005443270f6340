//! One pass: compressed blob → digest → decompress → digest → apply, every byte consumed.

mod common;

use std::io::{Read, Write};

use common::RawTar;
use strata_layer::{
    apply_layer, decompress, ApplyOptions, CompressWriter, Compression, DigestReader, WhiteoutMode,
};
use strata_oci::Digest;

#[test]
fn apply_reads_to_the_very_end_and_hashes_in_one_pass() {
    let mut t = RawTar::new();
    t.dir("d/").file("d/f", &[5u8; 3000]).file("g", b"");
    let mut tar = t.finish();
    // Writers pad to a 10 KiB record; the padding is part of the diff_id.
    tar.resize(10240, 0);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut w = CompressWriter::new(Vec::new(), c).unwrap();
        w.write_all(&tar).unwrap();
        let blob = w.finish().unwrap();

        let mut outer = DigestReader::new(&blob[..]);
        let (found, inner) = decompress(&mut outer).unwrap();
        assert_eq!(found, c);
        let mut inner = DigestReader::new(inner);
        let root = tempfile::tempdir().unwrap();
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Remove,
            preserve_owners: false,
        };
        let stats = apply_layer(&mut inner, root.path(), &opts).unwrap();
        assert_eq!((stats.entries, stats.bytes), (3, 3000));
        assert_eq!(
            inner.len(),
            tar.len() as u64,
            "{c:?}: tar not read to its end"
        );
        assert_eq!(inner.digest(), Digest::sha256_of(&tar));
        drop(inner);
        let mut rest = Vec::new();
        outer.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "{c:?}: compressed blob not read to its end"
        );
        assert_eq!(outer.digest(), Digest::sha256_of(&blob));
    }
}

#[test]
fn a_truncated_tar_is_an_error() {
    let mut t = RawTar::new();
    t.file("f", &[1u8; 2000]);
    let tar = t.finish();
    let root = tempfile::tempdir().unwrap();
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        preserve_owners: false,
    };
    let err = apply_layer(&tar[..1000], root.path(), &opts).unwrap_err();
    assert!(
        matches!(err, strata_layer::LayerError::ReadTar { .. }),
        "{err}"
    );
}
