//! Property test of the build cache: random edits to a context and a Dockerfile never give a
//! stale hit. After every edit, a cached build must produce exactly what a `--no-cache` build
//! of the same inputs produces (with `SOURCE_DATE_EPOCH`, so the image IDs can be compared).
//! A cached build that misses a COPY reuses the files of that step's previous layer
//! (`copy_reuse`), so the same comparison covers reuse: same-size rewrites within the same
//! mtime, mode changes and hard links in the context must never be linked stale.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use strata_store::{DriverKind, Store, StoreOptions};

use crate::test_support::{sde, write};
use crate::{BuildOptions, Builder};

/// A small deterministic generator (xorshift64*), so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The Dockerfile is assembled from lines that an edit switches on and off or rewrites.
struct Recipe {
    copy_all_dest: &'static str,
    label: bool,
    workdir: bool,
    copy_glob: bool,
    chmod: bool,
}

impl Recipe {
    fn text(&self) -> String {
        let mut df = String::from("FROM scratch\nARG A=1\nENV E=$A\n");
        if self.label {
            df.push_str("LABEL l=$A\n");
        }
        df.push_str(&format!("COPY . {}\n", self.copy_all_dest));
        if self.workdir {
            df.push_str("WORKDIR /w\n");
        }
        if self.copy_glob {
            df.push_str("COPY *.txt t/\n");
        }
        let chmod = if self.chmod { "--chmod=0700 " } else { "" };
        df.push_str(&format!("COPY {chmod}sub/ /sub/\n"));
        df
    }
}

const NAMES: &[&str] = &["a.txt", "b.txt", "c.log", "sub/x", "sub/deep/y", "d.txt"];

/// Same length as every `content N` body: a rewrite keeps the size.
fn body(n: usize) -> String {
    format!("content {n}")
}

fn edit(
    rng: &mut Rng,
    ctx: &Path,
    recipe: &mut Recipe,
    args: &mut BTreeMap<String, String>,
) -> String {
    let name = NAMES[rng.below(NAMES.len())];
    let path = ctx.join(name);
    match rng.below(10) {
        0 => {
            let body = body(rng.below(4));
            write(ctx, &[(name, &body)]);
            format!("write {name} {body:?}")
        }
        8 => {
            // Same size and the old mtime: only the content digest tells them apart.
            let old = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let body = body(rng.below(4));
            write(ctx, &[(name, &body)]);
            if let Some(t) = old {
                let f = std::fs::File::options().append(true).open(&path).unwrap();
                f.set_modified(t).unwrap();
            }
            format!("rewrite {name} {body:?} keeping its mtime")
        }
        9 => {
            // A hard link in the context (the layer links the two names too).
            let link = ctx.join("sub/link");
            if link.exists() {
                std::fs::remove_file(&link).unwrap();
                "unlink sub/link".to_string()
            } else if path.is_file() {
                std::fs::hard_link(&path, &link).unwrap();
                format!("link sub/link to {name}")
            } else {
                "nothing".to_string()
            }
        }
        1 => {
            if path.exists() {
                let mode = [0o644, 0o755, 0o600][rng.below(3)];
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                format!("chmod {mode:o} {name}")
            } else {
                write(ctx, &[(name, "new")]);
                format!("add {name}")
            }
        }
        2 => {
            // Keep sub/ non-empty so `COPY sub/` always has a source.
            if path.exists() && name != "sub/x" {
                std::fs::remove_file(&path).unwrap();
                format!("remove {name}")
            } else {
                write(ctx, &[(name, "again")]);
                format!("add {name}")
            }
        }
        3 => {
            let ignore = ["", "*.log\n", "b.txt\n", "sub/deep\n", "*.txt\n!a.txt\n"][rng.below(5)];
            std::fs::write(ctx.join(".dockerignore"), ignore).unwrap();
            format!(".dockerignore {ignore:?}")
        }
        4 => {
            let v = ["1", "2", "x y"][rng.below(3)];
            args.insert("A".into(), v.into());
            format!("--build-arg A={v:?}")
        }
        5 => {
            recipe.copy_all_dest = ["/all/", "/other/", "/"][rng.below(3)];
            format!("COPY . {}", recipe.copy_all_dest)
        }
        6 => {
            match rng.below(4) {
                0 => recipe.label = !recipe.label,
                1 => recipe.workdir = !recipe.workdir,
                2 => recipe.copy_glob = !recipe.copy_glob,
                _ => recipe.chmod = !recipe.chmod,
            }
            "toggle a line".to_string()
        }
        _ => {
            // Only the mtime changes: with SOURCE_DATE_EPOCH nothing in the result does.
            let f = std::fs::File::options()
                .append(true)
                .open(ctx.join("sub/x"))
                .unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
            "touch sub/x".to_string()
        }
    }
}

#[test]
fn random_edits_never_give_a_stale_hit() {
    random_edits(None, 0x5eed_1234_abcd_0001, 40);
}

#[test]
fn random_edits_never_give_a_stale_hit_on_vfs() {
    random_edits(Some(DriverKind::Vfs), 0x5eed_1234_abcd_0002, 20);
}

fn random_edits(driver: Option<DriverKind>, seed: u64, rounds: usize) {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path(), &StoreOptions { driver }).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("a.txt", "a"), ("b.txt", "b"), ("sub/x", "x")],
    );
    let mut rng = Rng(seed);
    let mut recipe = Recipe {
        copy_all_dest: "/all/",
        label: false,
        workdir: false,
        copy_glob: true,
        chmod: false,
    };
    let mut args = BTreeMap::new();
    let mut log = Vec::new();
    let mut hits = 0;
    let mut reused = 0;
    for round in 0..rounds {
        log.push(edit(&mut rng, ctx.path(), &mut recipe, &mut args));
        // Without the glob line, *.txt may match nothing, which is an error; keep it valid.
        let df = recipe.text();
        let opts = BuildOptions {
            build_args: args.clone(),
            ..sde(1_700_000_000)
        };
        let cached = Builder::new(&store).build(&df, ctx.path(), &opts);
        let fresh = Builder::new(&store).build(
            &df,
            ctx.path(),
            &BuildOptions {
                no_cache: true,
                ..opts.clone()
            },
        );
        match (cached, fresh) {
            (Ok(c), Ok(f)) => {
                hits += c.cached_steps;
                reused += c.reused_files;
                assert_eq!(f.reused_files, 0, "--no-cache links nothing");
                assert_eq!(
                    (&c.image_id, &c.config.rootfs.diff_ids),
                    (&f.image_id, &f.config.rootfs.diff_ids),
                    "round {round}: stale result after {log:?}\n{df}"
                );
            }
            (Err(c), Err(f)) => assert_eq!(c.to_string(), f.to_string(), "round {round}"),
            (c, f) => panic!(
                "round {round}: cached {:?} vs fresh {:?} after {log:?}",
                c.err(),
                f.err()
            ),
        }
    }
    assert!(hits > rounds, "the cache was used ({hits} hits)");
    assert!(
        reused > rounds,
        "previous layers were reused ({reused} files)"
    );
}
