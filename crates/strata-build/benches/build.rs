//! Benchmark: building `COPY . /app` of a generated 5,000-file (~20 MiB) context into a temp
//! store, cold and then fully cached, and a rebuild after one file changed.
//! `cargo bench -p strata-build` (set `STRATA_BENCH_DIR` to put the store elsewhere than /tmp).
#![allow(clippy::print_stdout)]

use std::fs;
use std::path::Path;
use std::time::Instant;

use strata_build::{BuildOptions, Builder};
use strata_store::{Store, StoreOptions};

const FILES: usize = 5_000;

fn make_context(dir: &Path) {
    for i in 0..FILES {
        let path = dir.join(format!("d{}/f{i}.txt", i % 50));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // 1..8 KiB of non-repeating bytes.
        let len = 1024 * (1 + i % 8);
        let body: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        fs::write(path, body).unwrap();
    }
}

fn main() {
    let base = std::env::var_os("STRATA_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let ctx = tempfile::tempdir_in(&base).unwrap();
    let root = tempfile::tempdir_in(&base).unwrap();
    make_context(ctx.path());
    let store = Store::open(root.path(), &StoreOptions::default()).unwrap();
    let df = "FROM scratch\nENV A=1\nCOPY . /app\nCMD [\"/app/run\"]\n";
    let opts = BuildOptions {
        source_date_epoch: Some(0),
        ..BuildOptions::default()
    };
    let builder = Builder::new(&store);
    for label in ["cold", "cached", "one file changed"] {
        if label == "one file changed" {
            fs::write(ctx.path().join("d0/f0.txt"), "changed").unwrap();
        }
        let t = Instant::now();
        let out = builder.build(df, ctx.path(), &opts).unwrap();
        println!(
            "{label:>18}: {:>8.1} ms  ({} cached, {} executed, driver {})",
            t.elapsed().as_secs_f64() * 1e3,
            out.cached_steps,
            out.executed_steps,
            store.driver()
        );
    }
}
