//! Measures `run(true)` latency on a busybox rootfs (root only): in-process, through the
//! re-exec helper, and on a fresh overlay per container. Prints milliseconds; asserts nothing.
//!
//! `cargo run --release --example run_latency -p strata-runtime -- [iterations]`
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports on its streams

#[allow(dead_code)] // shares the test fixture, of which it needs only part
#[path = "../tests/support/busybox.rs"]
mod busybox;

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use strata_exit::ErrorChain;
use strata_runtime::{
    helper_command, helper_spec_from_env, run, run_in_helper, ContainerSpec, RuntimeError,
};

fn spec(tmp: &Path, rootfs: &Path, n: usize) -> ContainerSpec {
    let id = format!("strata-bench-{}-{n}", std::process::id());
    ContainerSpec::new(id, rootfs, tmp.join(format!("c{n}")), vec!["true".into()])
}

fn report(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    println!(
        "{label:<28} n={:<4} min {:6.2} ms  median {:6.2} ms  max {:6.2} ms",
        ms.len(),
        ms[0],
        median,
        ms[ms.len() - 1]
    );
}

fn bench(iterations: usize) -> Result<(), String> {
    let err = |e: RuntimeError| ErrorChain(&e).to_string();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = tmp.path().join("rootfs");
    busybox::make_busybox_rootfs(&rootfs).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;

    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    // Warm the page cache and the cgroup parent once.
    run(&spec(tmp.path(), &rootfs, next())).map_err(err)?;

    let mut in_process = Vec::new();
    for _ in 0..iterations {
        let s = spec(tmp.path(), &rootfs, next());
        let started = Instant::now();
        run(&s).map_err(err)?;
        in_process.push(started.elapsed().as_secs_f64() * 1e3);
    }
    report("in-process run(true)", in_process);

    let mut helper = Vec::new();
    for _ in 0..iterations {
        let s = spec(tmp.path(), &rootfs, next());
        let started = Instant::now();
        let status = helper_command(&exe, &s)
            .map_err(err)?
            .stdin(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        helper.push(started.elapsed().as_secs_f64() * 1e3);
        if !status.success() {
            return Err(format!("helper exited with {status}"));
        }
    }
    report("re-exec helper run(true)", helper);

    let mut overlay = Vec::new();
    for _ in 0..iterations {
        let n = next();
        let mut s = spec(tmp.path(), &rootfs, n);
        let started = Instant::now();
        let mount = busybox::Overlay::mount(&rootfs, &tmp.path().join(format!("ov{n}")))
            .map_err(|e| e.to_string())?;
        s.rootfs = mount.merged.clone();
        run(&s).map_err(err)?;
        drop(mount);
        overlay.push(started.elapsed().as_secs_f64() * 1e3);
    }
    report("overlay mount + run(true)", overlay);
    Ok(())
}

fn main() -> ExitCode {
    match helper_spec_from_env() {
        Ok(Some(spec)) => {
            return match run_in_helper(&spec) {
                Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(u8::MAX)),
                Err(e) => {
                    eprintln!("error: {}", ErrorChain(&e));
                    ExitCode::from(e.exit_status())
                }
            };
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {}", ErrorChain(&e));
            return ExitCode::from(strata_exit::ExitStatus::StrataFailed);
        }
    }
    let iterations = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    match bench(iterations) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
