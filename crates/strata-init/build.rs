//! Compiles `src/init.c` into a fully static executable in `OUT_DIR`, embedded by `lib.rs`.
//! The system C compiler (`$CC`, else `cc`) and glibc's `libc.a` (Debian's `libc6-dev`, which
//! linking any Rust program for a gnu target needs anyway) are all it takes.

#![allow(
    clippy::print_stdout,
    reason = "cargo reads build script instructions from stdout"
)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/init.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let host = std::env::var("HOST").expect("cargo sets HOST");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    // A cross build needs the target's compiler: `CC_<target>` as the cc crate spells it.
    let compiler = std::env::var(format!("CC_{}", target.replace('-', "_")))
        .ok()
        .or_else(|| std::env::var("CC").ok().filter(|_| host == target))
        .unwrap_or_else(|| "cc".to_owned());
    let output = out_dir.join("strata-init");
    let status = Command::new(&compiler)
        .args(["-static", "-Os", "-s", "-std=c11", "-Wall", "-Wextra", "-o"])
        .arg(&output)
        .arg("src/init.c")
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler `{compiler}`: {e}"));
    assert!(
        status.success(),
        "`{compiler} -static` failed for src/init.c ({status}): install a C compiler and a static libc (apt-get install gcc libc6-dev)"
    );
}
