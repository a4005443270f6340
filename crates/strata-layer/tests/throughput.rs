//! Throughput of write and apply over a ~256 MB tree, and of the codecs on its tar.
//! `cargo test --release -p strata-layer --test throughput -- --ignored --nocapture`
#![allow(clippy::print_stderr)]

use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::time::Instant;

use strata_layer::{
    apply_layer, write_layer, ApplyOptions, ChangeSource, CompressWriter, Compression,
    DigestWriter, WhiteoutMode, WriteOptions,
};

/// Text-like, compressible data that is not trivially repetitive.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"layer ",
        b"strata ",
        b"tar ",
        b"digest ",
        b"0xdeadbeef ",
        b"\n",
        b"{\"k\": 1} ",
        b"lib.so ",
    ];
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if x >> 60 == 0 {
            out.extend_from_slice(&x.to_le_bytes()); // some incompressible noise
        } else {
            out.extend_from_slice(words[(x >> 61) as usize]);
        }
    }
    out.truncate(len);
    out
}

/// ~265 MB: 64 dirs × (2 files of 1 MiB + 60 small files of 4-64 KiB).
fn build(root: &Path) -> u64 {
    let mut total = 0;
    for d in 0..64u64 {
        let dir = root.join(format!("dir{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..62u64 {
            let len = if f < 2 {
                1 << 20
            } else {
                4096 + ((d * 63 + f) * 7919 % 61440) as usize
            };
            fs::write(dir.join(format!("f{f:02}")), content(d * 100 + f, len)).unwrap();
            total += len as u64;
        }
    }
    total
}

fn mb_s(bytes: u64, start: Instant) -> f64 {
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore]
fn throughput() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = build(&src);
    let opts = WriteOptions {
        source: ChangeSource::PlainTree,
        mtime_clamp: None,
    };

    let start = Instant::now();
    let mut hashed = DigestWriter::new(io::sink());
    write_layer(&src, &mut hashed, &opts).unwrap();
    eprintln!(
        "write_layer → sha256 only: {:.0} MB/s ({} MB tar)",
        mb_s(hashed.len(), start),
        hashed.len() / 1_000_000
    );

    let tar_path = tmp.path().join("layer.tar");
    let start = Instant::now();
    let mut out = File::create(&tar_path).unwrap();
    write_layer(&src, &mut out, &opts).unwrap();
    out.sync_all().unwrap();
    eprintln!(
        "write_layer → file (fsync): {:.0} MB/s",
        mb_s(hashed.len(), start)
    );

    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let start = Instant::now();
    let apply_opts = ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        preserve_owners: true,
    };
    let stats = apply_layer(
        BufReader::new(File::open(&tar_path).unwrap()),
        &dst,
        &apply_opts,
    )
    .unwrap();
    rustix::fs::syncfs(File::open(&dst).unwrap()).unwrap();
    eprintln!(
        "apply_layer from file (syncfs): {:.0} MB/s ({} entries)",
        mb_s(data, start),
        stats.entries
    );

    let tar = fs::read(&tar_path).unwrap();
    for (c, level) in [
        (Compression::Gzip, 1),
        (Compression::Gzip, 6),
        (Compression::Zstd, 3),
    ] {
        let start = Instant::now();
        let mut w = CompressWriter::with_level(Vec::new(), c, level).unwrap();
        w.write_all(&tar).unwrap();
        let blob = w.finish().unwrap();
        let speed = mb_s(tar.len() as u64, start);
        let start = Instant::now();
        let (_, mut r) = strata_layer::decompress(&blob[..]).unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        eprintln!(
            "{c:?} level {level}: compress {speed:.0} MB/s, decompress {:.0} MB/s, ratio {:.3}",
            mb_s(tar.len() as u64, start),
            blob.len() as f64 / tar.len() as f64
        );
    }
}
