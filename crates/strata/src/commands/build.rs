//! `strata build [OPTIONS] CONTEXT`: a Dockerfile and a context (a directory, or a tar on
//! stdin) → an image in the store, progress on stderr (plain, tty or json), optionally also
//! written out with `-o`; `--check` lints instead of building.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::Arc;
use strata_exit::ExitStatus;

use strata_build::{
    BuildError, BuildOptions, Builder, DebugOnFail, Reporter, RunNetwork, RuntimeExecutor,
};
use strata_image::{ImageSource, LocalImages, PullPolicy, RegistryImages};
use strata_oci::{Platform, Reference};

use super::build_io::{BuildContext, Export};
use super::build_progress::{note, Json, Plain, Tty};
use super::transfer_view::{Stream, TransferView};
use crate::cli::{BuildArgs, BuildNetwork, GlobalOptions, LintArgs, LintFormat, Progress};
use crate::failure::{Context, Failure};
use crate::render::out;

/// Lines of a failed RUN's output the error repeats (the progress shows all of it).
const ERROR_TAIL_LINES: usize = 10;

pub(crate) fn run(g: &GlobalOptions, a: BuildArgs) -> Result<ExitStatus, Failure> {
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
    // Before any thread starts (threads inherit it): every mount of the build (RUN rootfs,
    // `--mount=from=`, `COPY --from` views) goes into a namespace that dies with the build,
    // so a killed build leaves none behind.
    strata_store::enter_private_mount_namespace()
        .context("isolating the build's mounts from the host")?;
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
            BuildNetwork::Host => RunNetwork::Host,
            BuildNetwork::Default => RunNetwork::Default,
        },
        explain_cache: a.explain_cache,
        debug_on_fail: debug_on_fail(&a, from_stdin)?,
        // Tests ask for every report (0); users get one a second.
        progress_interval: std::env::var("STRATA_BUILD_PROGRESS_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis),
    };
    let policy = pull_policy(&a.pull)?;
    let debug_unavailable = a.debug_on_fail && opts.debug_on_fail.is_none();
    let store = super::open_store(g)?;
    let program = std::env::current_exe().context("finding the strata binary for RUN steps")?;
    let executor = RuntimeExecutor::new(program);
    let view = ProgressView::new(if a.quiet { Progress::Quiet } else { a.progress });
    let client = match policy {
        PullPolicy::Never => None,
        _ => Some(super::registry_client()?),
    };
    // Pulls report plain lines on stderr, except where that would break the chosen output.
    let quiet_pulls = a.quiet || matches!(a.progress, Progress::Json | Progress::Quiet);
    let pull_view = TransferView::new(Stream::Stderr, quiet_pulls);
    let registry_images;
    let images: &dyn ImageSource = match &client {
        None => &LocalImages,
        Some(client) => {
            registry_images = RegistryImages {
                client,
                policy,
                platform: None,
                reporter: &pull_view,
            };
            &registry_images
        }
    };
    let result = Builder::new(&store)
        .with_reporter(view.reporter())
        .with_run_executor(&executor)
        .with_image_source(images)
        .build(&ctx.dockerfile, &ctx.dir, &opts);
    view.finish();
    if debug_unavailable && matches!(&result, Err(e) if is_failed_run(e)) {
        note(NO_TERMINAL_NOTE);
    }
    // The budget holds after every build, failed ones too (they leave cache as well); not
    // meeting it fails nothing.
    let shown = matches!(view, ProgressView::Plain(_) | ProgressView::Tty(_));
    match super::prune::enforce_cache_budget(&store, result.as_ref().ok().map(|o| &o.image_id)) {
        Ok(Some(report)) if shown => note(&format!(
            "build cache over its budget: {} entries and {} step images removed, {} freed",
            report.entries,
            report.images.len(),
            crate::render::human::size(report.reclaimed)
        )),
        Ok(_) => {}
        Err(e) => note(&format!(
            "warning: build cache budget not enforced: {}",
            e.message
        )),
    }
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
    Ok(ExitStatus::Success)
}

/// What `--debug-on-fail` says when it cannot open a shell.
const NO_TERMINAL_NOTE: &str = "--debug-on-fail: no shell opened, standard input is not a \
     terminal: run the same command from an interactive terminal (with the context not on \
     standard input) to get a shell in the failed step's container";

/// `--debug-on-fail` with a terminal on stdin: the shell reads stdin and writes to stdout,
/// or to stderr when stdout is not a terminal (`-o -`, a pipe). `None` without a terminal
/// (the failure then says how to get one).
fn debug_on_fail(a: &BuildArgs, from_stdin: bool) -> Result<Option<Arc<DebugOnFail>>, Failure> {
    let command: Vec<String> = a.debug_shell.split_whitespace().map(String::from).collect();
    if command.is_empty() {
        return Err(Failure::new(
            "--debug-shell needs a command, e.g. --debug-shell sh",
        ));
    }
    let stdin = std::io::stdin();
    if !a.debug_on_fail || from_stdin || !stdin.is_terminal() {
        return Ok(None);
    }
    let input = stdin
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating standard input for --debug-on-fail")?;
    let output = if std::io::stdout().is_terminal() {
        std::io::stdout().as_fd().try_clone_to_owned()
    } else {
        std::io::stderr().as_fd().try_clone_to_owned()
    }
    .context("duplicating the terminal for --debug-on-fail")?;
    Ok(Some(Arc::new(DebugOnFail::new(command, input, output))))
}

/// A RUN that ran and exited non-zero (what `--debug-on-fail` is for).
fn is_failed_run(e: &BuildError) -> bool {
    matches!(e, BuildError::StepFailed { source, .. } if matches!(**source, BuildError::RunExit { .. }))
}

/// `--pull` (always), `--pull=true|false` (Docker's boolean) or a policy name.
fn pull_policy(value: &str) -> Result<PullPolicy, Failure> {
    match value {
        "true" => Ok(PullPolicy::Always),
        "false" => Ok(PullPolicy::Missing),
        other => other.parse().map_err(Failure::new),
    }
}

fn check_platform(platform: Option<&str>) -> Result<(), Failure> {
    if let Some(p) = platform {
        Platform::host_only(p)?;
    }
    Ok(())
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
        return Failure::new(strata_exit::ErrorChain(source.as_ref())).with_hint(hint);
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
