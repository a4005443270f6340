//! `strata build [OPTIONS] CONTEXT`: a Dockerfile and a context directory → an image in the
//! store, with BuildKit-style plain progress on stderr; `--check` lints instead of building.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use strata_build::{BuildOptions, Builder, Reporter, RuntimeExecutor};
use strata_oci::{Platform, Reference};

use crate::cli::{BuildArgs, GlobalOptions, LintArgs, LintFormat, Progress};
use crate::failure::{Context, Failure};
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: BuildArgs) -> Result<ExitCode, Failure> {
    let dockerfile_arg = match &a.file {
        Some(f) if f.as_os_str() == "-" => "-".to_string(),
        Some(f) => f.to_string_lossy().into_owned(),
        None => a.context.join("Dockerfile").to_string_lossy().into_owned(),
    };
    if a.check {
        return super::lint::run(LintArgs {
            file: dockerfile_arg,
            format: LintFormat::Tty,
            ignore: Vec::new(),
            failure_threshold: "error".to_string(),
        });
    }
    if a.context.as_os_str() == "-" {
        return Err(
            Failure::new("a build context on standard input is not supported yet")
                .with_hint("pass a context directory, and the Dockerfile with -f FILE or -f -"),
        );
    }
    if let Some(p) = &a.platform {
        let host = Platform::host();
        if *p != format!("{}/{}", host.os, host.architecture) {
            return Err(Failure::new(format!(
                "cannot build for platform {p}: this machine builds {}/{} only",
                host.os, host.architecture
            )));
        }
    }
    for tag in &a.tags {
        Reference::parse(tag)?;
    }
    let source = super::read_input(&dockerfile_arg)?;
    // Syntax errors get the located report before any work.
    super::dockerfile::parse_source(&source, super::dockerfile::display_name(&dockerfile_arg))?;
    let opts = BuildOptions {
        build_args: build_args(&a.build_args),
        target: a.target.clone(),
        source_date_epoch: source_date_epoch()?,
        no_cache: a.no_cache,
        secrets: strata_build::parse_secrets(&a.secrets).map_err(Failure::new)?,
        tags: a.tags.clone(),
        dockerfile_path: a
            .file
            .as_ref()
            .filter(|f| f.as_os_str() != "-")
            .map(|f| f.strip_prefix(&a.context).unwrap_or(f).to_path_buf()),
    };
    let store = super::open_store(g)?;
    let program = std::env::current_exe().context("finding the strata binary for RUN steps")?;
    let executor = RuntimeExecutor::new(program);
    let reporter = PlainProgress {
        quiet: a.quiet || a.progress == Progress::Quiet,
        state: Mutex::new(BTreeMap::new()),
    };
    let output = Builder::new(&store)
        .with_reporter(&reporter)
        .with_run_executor(&executor)
        .build(&source, &a.context, &opts)
        .map_err(|e| {
            Failure::from(e)
                .with_hint("each finished step's image can be inspected with `strata images -a`")
        })?;
    if let Some(path) = &a.iidfile {
        std::fs::write(path, output.image_id.as_str())
            .context(format!("writing {}", path.display()))?;
    }
    if a.quiet {
        out(&format!("{}\n", output.image_id));
    } else {
        reporter.line(&format!(
            "writing image {} done ({} steps cached, {} executed)",
            output.image_id, output.cached_steps, output.executed_steps
        ));
        for tag in &a.tags {
            reporter.line(&format!("naming to {tag} done"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAME=value`, or `NAME` alone to take the value from the environment (as Docker does;
/// an unset variable is left out).
fn build_args(items: &[String]) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(item) {
                    args.insert(item.clone(), v);
                }
            }
        }
    }
    args
}

/// `SOURCE_DATE_EPOCH` from the environment: reproducible timestamps with no other flag.
fn source_date_epoch() -> Result<Option<i64>, Failure> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().map(Some).map_err(|_| {
            Failure::new(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"
            ))
        }),
        _ => Ok(None),
    }
}

/// BuildKit's plain progress: one numbered line per event on stderr, the whole output of
/// every RUN (never clipped).
struct PlainProgress {
    quiet: bool,
    /// (stage, step) → the number shown for that step.
    state: Mutex<BTreeMap<(usize, usize), usize>>,
}

impl PlainProgress {
    #[allow(clippy::print_stderr)]
    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn number(&self, stage: usize, step: usize) -> usize {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let next = state.len() + 1;
        *state.entry((stage, step)).or_insert(next)
    }
}

impl Reporter for PlainProgress {
    fn step_started(&self, stage: usize, step: usize, text: &str) {
        let n = self.number(stage, step);
        self.line(&format!("#{n} [stage-{stage} {step}] {text}"));
    }

    fn step_cached(&self, stage: usize, step: usize) {
        let n = self.number(stage, step);
        self.line(&format!("#{n} CACHED"));
    }

    fn step_finished(&self, stage: usize, step: usize, elapsed: Duration) {
        let n = self.number(stage, step);
        self.line(&format!("#{n} DONE {:.1}s", elapsed.as_secs_f64()));
    }

    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let n = self.number(stage, step);
        for l in String::from_utf8_lossy(bytes).lines() {
            self.line(&format!("#{n} {l}"));
        }
    }
}
