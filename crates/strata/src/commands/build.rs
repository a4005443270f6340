//! `strata build [OPTIONS] CONTEXT`: a Dockerfile and a context (a directory, or a tar on
//! stdin) → an image in the store, progress on stderr (plain, tty or json), optionally also
//! written out with `-o`; `--check` lints instead of building.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use strata_build::{BuildError, BuildOptions, Builder, Reporter, RunNetwork, RuntimeExecutor};
use strata_oci::{Platform, Reference};

use super::build_io::{BuildContext, Export};
use super::build_progress::{note, Json, Plain, Tty};
use crate::cli::{BuildArgs, BuildNetwork, GlobalOptions, LintArgs, LintFormat, Progress};
use crate::failure::{Context, Failure};
use crate::render::out;

/// Lines of a failed RUN's output the error repeats (the progress shows all of it).
const ERROR_TAIL_LINES: usize = 10;

pub(crate) fn run(g: &GlobalOptions, a: BuildArgs) -> Result<ExitCode, Failure> {
    let from_stdin = a.context.as_os_str() == "-";
    if a.check {
        let file = match &a.file {
            Some(f) => f.to_string_lossy().into_owned(),
            None if from_stdin => "-".to_string(),
            None => a.context.join("Dockerfile").to_string_lossy().into_owned(),
        };
        return super::lint::run(LintArgs {
            file,
            format: LintFormat::Tty,
            ignore: Vec::new(),
            failure_threshold: "error".to_string(),
        });
    }
    check_platform(a.platform.as_deref())?;
    for tag in &a.tags {
        Reference::parse(tag)?;
    }
    let exports = a
        .outputs
        .iter()
        .map(|o| Export::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    if exports.iter().filter(|e| e.to_stdout()).count() > usize::from(!a.quiet) {
        return Err(Failure::new("only one result can go to standard output")
            .with_hint("-q prints the image ID there; write the archive to a file instead"));
    }
    let ctx = if from_stdin {
        BuildContext::stdin(a.file.as_deref())?
    } else {
        BuildContext::dir(&a.context, a.file.as_deref())?
    };
    // Syntax errors get the located report before any work.
    super::dockerfile::parse_source(
        &ctx.dockerfile,
        super::dockerfile::display_name(&ctx.dockerfile_name),
    )?;
    let opts = BuildOptions {
        build_args: key_values(&a.build_args, true),
        target: a.target.clone(),
        source_date_epoch: source_date_epoch()?,
        no_cache: a.no_cache,
        secrets: strata_build::parse_secrets(&a.secrets).map_err(Failure::new)?,
        tags: a.tags.clone(),
        dockerfile_path: ctx.dockerfile_in_context.clone(),
        labels: key_values(&a.labels, false),
        network: match a.network {
            BuildNetwork::None => RunNetwork::None,
            BuildNetwork::Host | BuildNetwork::Default => RunNetwork::Host,
        },
        explain_cache: a.explain_cache,
    };
    let store = super::open_store(g)?;
    let program = std::env::current_exe().context("finding the strata binary for RUN steps")?;
    let executor = RuntimeExecutor::new(program);
    let view = ProgressView::new(if a.quiet { Progress::Quiet } else { a.progress });
    let result = Builder::new(&store)
        .with_reporter(view.reporter())
        .with_run_executor(&executor)
        .build(&ctx.dockerfile, &ctx.dir, &opts);
    view.finish();
    let output = result.map_err(build_failure)?;
    for export in &exports {
        export.write(&store, output.image_id.as_str(), &a.tags)?;
    }
    if let Some(path) = &a.iidfile {
        std::fs::write(path, output.image_id.as_str())
            .context(format!("writing {}", path.display()))?;
    }
    if a.quiet {
        out(&format!("{}\n", output.image_id));
    } else if matches!(view, ProgressView::Plain(_) | ProgressView::Tty(_)) {
        note(&format!(
            "writing image {} done ({} steps cached, {} executed)",
            output.image_id, output.cached_steps, output.executed_steps
        ));
        for tag in &a.tags {
            note(&format!("naming to {tag} done"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check_platform(platform: Option<&str>) -> Result<(), Failure> {
    let host = Platform::host();
    match platform {
        Some(p) if p != format!("{}/{}", host.os, host.architecture) => Err(Failure::new(format!(
            "cannot build for platform {p}: this machine builds {}/{} only",
            host.os, host.architecture
        ))),
        _ => Ok(()),
    }
}

/// A failed RUN as one line naming the command and exit code, the last lines of its output,
/// and the image to debug from; any other error as its cause chain.
fn build_failure(e: BuildError) -> Failure {
    if let BuildError::StepFailed {
        text,
        last_good,
        source,
    } = &e
    {
        let hint = match last_good {
            Some(id) => format!(
                "last good step: {id} (debug with: strata run --rm -it {} sh)",
                id.short()
            ),
            None => "the failed step was the first of its stage, on an empty base".to_string(),
        };
        if let BuildError::RunExit { line, code, tail } = source.as_ref() {
            let lines: Vec<&str> = tail.lines().collect();
            let last = lines[lines.len().saturating_sub(ERROR_TAIL_LINES)..].join("\n");
            let failure = Failure::new(format!("line {line}: {text}: exited with code {code}"));
            let failure = if last.is_empty() {
                failure
            } else {
                failure.with_detail(last)
            };
            return failure.with_hint(hint);
        }
        return Failure::new(crate::failure::chain(source.as_ref())).with_hint(hint);
    }
    Failure::from(e)
}

/// The progress display chosen for this build.
enum ProgressView {
    Quiet,
    Plain(Plain),
    Tty(Tty),
    Json(Json),
}

impl ProgressView {
    fn new(mode: Progress) -> ProgressView {
        let terminal = std::io::stderr().is_terminal();
        match mode {
            Progress::Quiet => ProgressView::Quiet,
            Progress::Json => ProgressView::Json(Json::default()),
            Progress::Tty => ProgressView::Tty(Tty::start()),
            Progress::Auto if terminal => ProgressView::Tty(Tty::start()),
            Progress::Auto | Progress::Plain => ProgressView::Plain(Plain::default()),
        }
    }

    fn reporter(&self) -> &dyn Reporter {
        match self {
            ProgressView::Quiet => &strata_build::SilentReporter,
            ProgressView::Plain(p) => p,
            ProgressView::Tty(t) => t,
            ProgressView::Json(j) => j,
        }
    }

    /// Ends a live view (the failed step's full log is printed then).
    fn finish(&self) {
        if let ProgressView::Tty(t) = self {
            t.finish();
        }
    }
}

/// `NAME=value`; a lone `NAME` takes the value from the environment for build args (as
/// Docker does; unset is left out) and is an empty value for labels.
fn key_values(items: &[String], from_env: bool) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                map.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    map.insert(item.clone(), v);
                }
            }
            None => {
                map.insert(item.clone(), String::new());
            }
        }
    }
    map
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
