//! Benchmarks: a 200-pattern `.dockerignore` against 10,000 paths, and walking + hashing a
//! generated 20,000-file context cold and warm. `cargo bench -p strata-context`.
#![allow(clippy::print_stdout)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_context::{walk, ContextHasher, DockerIgnore, StatCache};

/// A tiny deterministic generator (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const EXTS: &[&str] = &[
    "rs", "go", "js", "md", "txt", "log", "tmp", "pyc", "json", "o",
];
const DIRS: &[&str] = &[
    "src",
    "lib",
    "build",
    "node_modules",
    "docs",
    "test",
    "vendor",
    "target",
    "pkg",
    "cmd",
];

fn patterns(rng: &mut Rng) -> String {
    let mut out = String::new();
    for i in 0..200 {
        let d = DIRS[rng.below(DIRS.len() as u64) as usize];
        let e = EXTS[rng.below(EXTS.len() as u64) as usize];
        let n = rng.below(50);
        let line = match i % 8 {
            0 => format!("{d}/file{n}.{e}"),
            1 => format!("*.{e}{n}"),
            2 => format!("{d}/*.{e}"),
            3 => format!("**/{d}{n}"),
            4 => format!("{d}{n}/**"),
            5 => format!("**/*.{e}{n}"),
            6 => format!("!{d}/keep{n}.{e}"),
            _ => format!("{d}/sub{n}/**/x?.{e}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn paths(rng: &mut Rng, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let depth = 1 + rng.below(5);
            let mut parts: Vec<String> = (1..depth)
                .map(|_| {
                    format!(
                        "{}{}",
                        DIRS[rng.below(DIRS.len() as u64) as usize],
                        rng.below(4)
                    )
                })
                .collect();
            let e = EXTS[rng.below(EXTS.len() as u64) as usize];
            parts.push(format!("file{}.{e}", rng.below(60)));
            parts.join("/")
        })
        .collect()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.unwrap())
}

fn bench_matcher() {
    let mut rng = Rng(0x5eed);
    let ignore = DockerIgnore::parse(&patterns(&mut rng)).unwrap();
    let paths = paths(&mut rng, 10_000);
    let (best, excluded) = best_of(7, || {
        paths
            .iter()
            .filter(|p| ignore.is_excluded(p, false))
            .count()
    });
    let ms = best.as_secs_f64() * 1e3;
    println!(
        "dockerignore: 200 patterns x {} paths: best of 7 {ms:.2} ms, {:.0} paths/s ({excluded} excluded)",
        paths.len(),
        paths.len() as f64 / best.as_secs_f64()
    );
}

fn make_context(root: &Path, files: usize) {
    let mut rng = Rng(0xc0ffee);
    for i in 0..files {
        let dir = root.join(format!("d{}/e{}", i % 40, (i / 40) % 25));
        if i < 1000 {
            fs::create_dir_all(&dir).unwrap();
        }
        let size = 64 + rng.below(4096) as usize;
        fs::write(dir.join(format!("f{i}.dat")), vec![(i % 251) as u8; size]).unwrap();
    }
    fs::write(root.join(".dockerignore"), "d1/**\n**/*.tmp\n!d1/e3\n").unwrap();
}

fn bench_walk_and_hash() {
    let ctx = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let start = Instant::now();
    make_context(ctx.path(), 20_000);
    println!(
        "context: generated 20,000 files in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let ignore = DockerIgnore::read(&ctx.path().join(".dockerignore")).unwrap();
    let (walk_time, index) = best_of(5, || walk(ctx.path(), &ignore).unwrap());
    println!(
        "walk: {} entries, best of 5 {:.1} ms",
        index.entries().len(),
        walk_time.as_secs_f64() * 1e3
    );
    let cache_file = StatCache::file_for(store.path(), ctx.path());
    let start = Instant::now();
    let mut cache = StatCache::open(&cache_file).unwrap();
    let cold = ContextHasher::new(&index, &mut cache).hash(&["."]).unwrap();
    cache.save().unwrap();
    println!(
        "hash cold: {} files read, {:.1} ms (incl. saving the cache)",
        cache.files_read(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let (warm_time, reads) = best_of(5, || {
        let index = walk(ctx.path(), &ignore).unwrap();
        let mut cache = StatCache::open(&cache_file).unwrap();
        let warm = ContextHasher::new(&index, &mut cache).hash(&["."]).unwrap();
        assert_eq!(warm, cold);
        cache.files_read()
    });
    println!(
        "walk + hash warm (open cache, walk, hash): {reads} files read, best of 5 {:.1} ms",
        warm_time.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench -p strata-context -- matcher` runs only the matcher part.
    let only_matcher = std::env::args().any(|a| a == "matcher");
    bench_matcher();
    if !only_matcher {
        bench_walk_and_hash();
    }
}
