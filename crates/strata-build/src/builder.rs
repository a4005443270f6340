//! `Builder`: runs the op chains of a target stage against the store, consulting the build
//! cache before every step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use strata_context::{
    find_ignore_file, walk, ContextHasher, ContextIndex, DockerIgnore, StatCache,
};
use strata_dockerfile::{parse, resolve, Base, ResolveOptions};
use strata_image::{ImageSource, LocalImages, ResolvedImage};
use strata_layer::ChangeSource;
use strata_oci::{
    chain_ids, to_canonical_json, ConfigShape, ContainerConfig, Digest, History, ImageConfig,
    Platform, Reference, RootFs,
};
use strata_store::{BuildCacheEntry, ImageRecord, LayerRecord, Store};

use crate::cache_key::{BaseKey, CacheKey, StepInputs};
use crate::copy_files::ensure_parents;
use crate::copy_reuse::{record_previous, reuse_key};
use crate::explain::{explain, position};
use crate::layer_commit::commit_layer;
use crate::metadata::apply;
use crate::op::{plan, CopyOp, CopySource, FromOp, MetadataOp, Op, PlannedStep, RunOp, StagePlan};
use crate::owner::workdir_owner;
use crate::reporter::{Reporter, SilentReporter, StepFailure, Transfer, TransferTicker};
use crate::rootfs::{absolute, RootfsView};
use crate::run_executor::{DebugOnFail, RunExecutor, RunNetwork};
use crate::temp_area::TempArea;
use crate::BuildError;
use strata_inroot::clean_relative;

/// BuildKit's history comment for Dockerfile steps.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`; the last stage when None.
    pub target: Option<String>,
    /// `SOURCE_DATE_EPOCH`: every `created` time and every layer mtime is clamped to it.
    pub source_date_epoch: Option<i64>,
    /// `--no-cache`: execute every step (results are still recorded for later builds).
    pub no_cache: bool,
    /// Tags given to the result (`app:1`, normalized as image references).
    pub tags: Vec<String>,
    /// The Dockerfile's path relative to the context, to find `<name>.dockerignore`
    /// next to it; `Dockerfile` when None.
    pub dockerfile_path: Option<PathBuf>,
    /// `--secret id=…,src=…`: secret id → file, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--label`: set on the final image's config only (no history entry, as BuildKit).
    pub labels: BTreeMap<String, String>,
    /// `--network`: what a RUN without its own `--network` gets.
    pub network: RunNetwork,
    /// `--explain-cache`: report why each missed step missed ([`Reporter::step_cache_miss`]).
    /// The inputs are recorded for the next build either way.
    pub explain_cache: bool,
    /// `--debug-on-fail`: a shell in the container of the first RUN that fails.
    pub debug_on_fail: Option<Arc<DebugOnFail>>,
    /// How long a COPY or context read runs before its files and bytes are reported, and
    /// how often after that ([`Reporter::step_progress`]); one second when None.
    pub progress_interval: Option<std::time::Duration>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The image ID (digest of the config blob).
    pub image_id: Digest,
    pub config: ImageConfig,
    pub layers: Vec<LayerRecord>,
    /// Steps whose result came from the build cache.
    pub cached_steps: usize,
    /// Steps that were executed.
    pub executed_steps: usize,
    /// Files that COPY steps hard-linked from their previous layer instead of copying.
    pub reused_files: usize,
}

/// Builds images into one store.
pub struct Builder<'a> {
    pub(crate) store: &'a Store,
    pub(crate) reporter: &'a dyn Reporter,
    pub(crate) executor: Option<&'a dyn RunExecutor>,
    /// Where FROM, `COPY --from` and `RUN --mount from=` images come from.
    pub(crate) images: &'a dyn ImageSource,
}

/// The images a build names, each resolved once when the build is planned, by normalized
/// name (`busybox` and `docker.io/library/busybox:latest` are one image).
#[derive(Debug, Default)]
pub(crate) struct NamedImages(BTreeMap<String, ResolvedImage>);

impl NamedImages {
    fn key(name: &str) -> String {
        match strata_oci::Reference::parse(name) {
            Ok(r) if !name.starts_with("sha256:") => r.to_string(),
            _ => name.to_string(),
        }
    }

    /// The image `name` resolved to when the build was planned.
    pub(crate) fn get(&self, name: &str, line: usize) -> Result<&ResolvedImage, BuildError> {
        self.0.get(&Self::key(name)).ok_or_else(|| {
            BuildError::at(
                line,
                format!("image {name:?} was not resolved when the build was planned"),
            )
        })
    }
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("store", self.store)
            .field("executor", &self.executor.is_some())
            .finish_non_exhaustive()
    }
}

/// A stage as far as it has been built.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRecord>,
    pub(crate) key: CacheKey,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The image of the last completed step, or of the base image before the first.
    pub(crate) image: Option<Digest>,
    /// `image` is the stage's base image (not a build result, so no build parent).
    pub(crate) image_is_base: bool,
    /// What the stage starts from, as `--explain-cache` names it.
    pub(crate) base: String,
    /// Metadata steps applied since the last recorded step (counted when the run ends).
    pub(crate) unrecorded: usize,
}

impl StageState {
    pub(crate) fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The cache key of the stage's last step.
    pub(crate) fn key_digest(&self) -> Digest {
        self.key.digest().clone()
    }

    pub(crate) fn chain(&self) -> Option<Digest> {
        chain_ids(&self.diff_ids()).pop()
    }

    fn push_layer(&mut self, layer: LayerRecord) {
        self.config.rootfs.diff_ids.push(layer.diff_id.clone());
        self.layers.push(layer);
    }

    pub(crate) fn container_config(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }
}

/// Per-build context shared by every step (and by stages built in parallel).
pub(crate) struct Session<'b> {
    pub(crate) opts: &'b BuildOptions,
    pub(crate) context: ContextIndex,
    /// Where step dirs, mounts and RUN upper dirs live during the build.
    pub(crate) area: TempArea,
    pub(crate) stat_cache: Mutex<StatCache>,
    platform: String,
    /// Every image the build names, resolved once.
    pub(crate) images: NamedImages,
    stages: Mutex<BTreeMap<usize, StageState>>,
    /// Identifies "the same Dockerfile in the same context" for step positions.
    identity: (PathBuf, PathBuf),
    cached: AtomicUsize,
    executed: AtomicUsize,
    /// Files hard-linked from previous COPY layers.
    pub(crate) reused: AtomicUsize,
}

impl Session<'_> {
    /// A copy of a finished stage's state.
    pub(crate) fn stage(&self, index: usize) -> Option<StageState> {
        lock(&self.stages).get(&index).cloned()
    }
}

/// Locks `m`; a panic elsewhere cannot leave these maps half-updated (inserts are single calls).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stages a stage needs finished before it starts: its base and its `COPY --from`s.
fn stage_deps(stage: &StagePlan) -> BTreeSet<usize> {
    let mut deps = BTreeSet::new();
    if let FromOp::Stage(j) = stage.from {
        deps.insert(j);
    }
    for step in &stage.steps {
        match &step.op {
            Op::Copy(CopyOp {
                from: CopySource::Stage(j),
                ..
            }) => {
                deps.insert(*j);
            }
            Op::Run(r) => deps.extend(r.mounts.iter().filter_map(|m| match m.from {
                Some(CopySource::Stage(j)) => Some(j),
                _ => None,
            })),
            _ => {}
        }
    }
    deps
}

impl<'a> Builder<'a> {
    pub fn new(store: &'a Store) -> Builder<'a> {
        Builder {
            store,
            reporter: &SilentReporter,
            executor: None,
            images: &LocalImages,
        }
    }

    /// Without one, only images already in the store can be used.
    pub fn with_image_source(mut self, images: &'a dyn ImageSource) -> Builder<'a> {
        self.images = images;
        self
    }

    pub fn with_reporter(mut self, reporter: &'a dyn Reporter) -> Builder<'a> {
        self.reporter = reporter;
        self
    }

    /// Without one, a RUN step fails with [`BuildError::NoRunExecutor`].
    pub fn with_run_executor(mut self, executor: &'a dyn RunExecutor) -> Builder<'a> {
        self.executor = Some(executor);
        self
    }

    /// Builds `dockerfile` (its text) with `context_dir` as the build context.
    pub fn build(
        &self,
        dockerfile: &str,
        context_dir: &Path,
        opts: &BuildOptions,
    ) -> Result<BuildOutput, BuildError> {
        // Bad tags fail before any work, and are stored normalized (`app` → `docker.io/library/app:latest`).
        let tags = opts
            .tags
            .iter()
            .map(|t| {
                strata_oci::Reference::parse(t)
                    .map(|r| r.to_string())
                    .map_err(|source| BuildError::BadTag {
                        tag: t.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // BuildKit also takes SOURCE_DATE_EPOCH as a build arg.
        let from_arg = opts
            .build_args
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse::<i64>().ok());
        let opts = &BuildOptions {
            source_date_epoch: opts.source_date_epoch.or(from_arg),
            ..opts.clone()
        };
        let (target, stages, images) = self.plan_build(dockerfile, opts)?;
        self.reporter
            .build_started(stages.iter().map(|st| st.steps.len()).sum());
        let context = read_context(context_dir, opts)?;
        let cache_file = StatCache::file_for(
            &self
                .store
                .private_dir(strata_store::StoreDir::BuildContext)?,
            context_dir,
        );
        let stat_cache = StatCache::open(&cache_file).unwrap_or_else(|_| StatCache::in_memory());
        let host = Platform::host();
        let identity = (
            context_dir
                .canonicalize()
                .unwrap_or_else(|_| context_dir.to_path_buf()),
            opts.dockerfile_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("Dockerfile")),
        );
        let _lease = self.store.writer_lease()?;
        let session = Session {
            opts,
            context,
            area: TempArea::create(self.store)?,
            stat_cache: Mutex::new(stat_cache),
            platform: host.to_string(),
            images,
            stages: Mutex::new(BTreeMap::new()),
            identity,
            cached: AtomicUsize::new(0),
            executed: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
        };
        self.build_stages(&session, &stages)?;
        // The stat cache only speeds up the next build: failing to save it is not an error.
        let _ = lock(&session.stat_cache).save();
        let mut state = lock(&session.stages)
            .remove(&target)
            .ok_or_else(|| BuildError::at(0, "the target stage was not built"))?;
        // The image is as old as its newest step (as BuildKit dates it), so a fully cached
        // rebuild gives the same config, hence the same image ID.
        state.config.created = match opts.source_date_epoch {
            Some(_) => Some(timestamp(opts.source_date_epoch)),
            None => state
                .config
                .history
                .last()
                .and_then(|h| h.created.clone())
                .or_else(|| Some(timestamp(None))),
        };
        if !opts.labels.is_empty() {
            let mut config = state.container_config();
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            state.config.config = Some(config);
        }
        let config_bytes = to_canonical_json(&state.config);
        let (image_id, _) = self.store.content().ingest(&config_bytes[..], None)?;
        let record = ImageRecord {
            id: image_id.clone(),
            manifest: None,
            layers: state.layers.clone(),
            created: state.config.created.clone(),
            added_at: chrono::Utc::now().timestamp(),
            // When the result is the last step's image, that record (and its parent) stays.
            parent: state
                .image
                .clone()
                .filter(|p| !state.image_is_base && p != &image_id),
        };
        self.store.put_image(&record, &tags)?;
        self.reporter.build_finished(&image_id);
        Ok(BuildOutput {
            image_id,
            config: state.config,
            layers: state.layers,
            cached_steps: session.cached.load(Ordering::Relaxed),
            executed_steps: session.executed.load(Ordering::Relaxed),
            reused_files: session.reused.load(Ordering::Relaxed),
        })
    }

    /// Parses and resolves the Dockerfile (twice: the second time with the base images' env)
    /// and turns it into op chains; returns the target stage's index, the chains and every
    /// image they name, each resolved (and pulled, per the image source) exactly once.
    fn plan_build(
        &self,
        dockerfile: &str,
        opts: &BuildOptions,
    ) -> Result<(usize, Vec<StagePlan>, NamedImages), BuildError> {
        let df = parse(dockerfile)?;
        let mut ropts = ResolveOptions {
            build_args: opts.build_args.clone(),
            target: opts.target.clone(),
            ..ResolveOptions::default()
        };
        let mut images = NamedImages::default();
        // Resolve once to learn the base images, then again with their env.
        let first = resolve(&df, &ropts)?;
        for &i in &first.build_order {
            if let Base::Image(name) = &first.stages[i].base {
                let line = df.instructions[first.stages[i].from_instruction]
                    .span
                    .start_line;
                let img = self.resolve_named(&mut images, name, line)?;
                let env = img.config.config_or_default().env.unwrap_or_default();
                let pairs = env
                    .iter()
                    .filter_map(|e| e.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                ropts.base_env.insert(name.clone(), pairs);
            }
        }
        // ONBUILD triggers of the bases run right after their FROM.
        let df = crate::onbuild::with_triggers(&images, &df, &first)?.unwrap_or(df);
        let resolved = resolve(&df, &ropts)?;
        let stages = plan(&df, &resolved)?;
        for stage in &stages {
            if let FromOp::Image(name) = &stage.from {
                self.resolve_named(&mut images, name, stage.line)?;
            }
            for step in &stage.steps {
                let named = match &step.op {
                    Op::Copy(c) => vec![&c.from],
                    Op::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_ref()).collect(),
                    _ => Vec::new(),
                };
                for from in named {
                    if let CopySource::Image(name) = from {
                        self.resolve_named(&mut images, name, step.line)?;
                    }
                }
            }
        }
        Ok((resolved.target, stages, images))
    }

    /// Resolves `name` through the image source unless this build already did.
    fn resolve_named<'i>(
        &self,
        images: &'i mut NamedImages,
        name: &str,
        line: usize,
    ) -> Result<&'i ResolvedImage, BuildError> {
        let key = NamedImages::key(name);
        if !images.0.contains_key(&key) {
            let img =
                self.images
                    .image(self.store, name)
                    .map_err(|source| BuildError::BaseImage {
                        line,
                        name: name.to_string(),
                        source: Box::new(source),
                    })?;
            images.0.insert(key.clone(), img);
        }
        images.get(name, line)
    }

    /// Builds `stages` in waves: every stage whose dependencies are done starts at once, each
    /// on its own thread.
    fn build_stages(&self, s: &Session<'_>, stages: &[StagePlan]) -> Result<(), BuildError> {
        let mut pending: Vec<&StagePlan> = stages.iter().collect();
        let mut done = BTreeSet::new();
        while !pending.is_empty() {
            let (ready, rest): (Vec<&StagePlan>, Vec<&StagePlan>) = pending
                .into_iter()
                .partition(|st| stage_deps(st).is_subset(&done));
            if ready.is_empty() {
                return Err(BuildError::at(
                    rest[0].line,
                    "stage depends on a stage that is not built",
                ));
            }
            let results: Vec<Result<StageState, BuildError>> = if ready.len() == 1 {
                vec![self.build_stage(s, ready[0])]
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = ready
                        .iter()
                        .map(|st| scope.spawn(move || self.build_stage(s, st)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                })
            };
            for (st, result) in ready.iter().zip(results) {
                lock(&s.stages).insert(st.index, result?);
                done.insert(st.index);
            }
            pending = rest;
        }
        Ok(())
    }

    fn build_stage(&self, s: &Session<'_>, stage: &StagePlan) -> Result<StageState, BuildError> {
        let sde = s.opts.source_date_epoch;
        if let Some(p) = &stage.platform {
            // Only the host's platform can be built (no emulation), in any spelling of it.
            if Platform::host_only(p).is_err() {
                return Err(BuildError::Unsupported {
                    line: stage.line,
                    instruction: "FROM",
                    what: format!("--platform={p} on a {} host", s.platform),
                });
            }
        }
        let mut state = match &stage.from {
            FromOp::Scratch => StageState {
                config: new_config(ImageConfig::default()),
                layers: Vec::new(),
                key: CacheKey::base(BaseKey::Scratch, &s.platform, sde),
                cmd_set: false,
                image: None,
                image_is_base: false,
                base: "scratch".to_string(),
                unrecorded: 0,
            },
            FromOp::Image(name) => {
                let img = s.images.get(name, stage.line)?.clone();
                self.store.unpack_image(&img.record)?;
                let shown = Reference::parse(name).map_or_else(|_| name.clone(), |r| r.to_string());
                if let Some(label) = stage.label(None) {
                    self.reporter
                        .base_resolved(stage.index, &label, &format!("FROM {shown}"));
                }
                StageState {
                    config: new_config(img.config),
                    layers: img.record.layers.clone(),
                    key: CacheKey::base(BaseKey::Image(&img.record.id), &s.platform, sde),
                    cmd_set: false,
                    image: Some(img.record.id.clone()),
                    image_is_base: true,
                    base: format!("{name} {}", img.record.id),
                    unrecorded: 0,
                }
            }
            FromOp::Stage(j) => {
                let parent = s.stage(*j).ok_or_else(|| {
                    BuildError::at(
                        stage.line,
                        format!("stage {j} was not built before its use"),
                    )
                })?;
                StageState {
                    key: CacheKey::base(BaseKey::Stage(&parent.key), &s.platform, sde),
                    cmd_set: false,
                    base: format!("stage {j} (key {})", parent.key),
                    unrecorded: 0,
                    ..parent
                }
            }
        };
        // The base's ONBUILD triggers ran (spliced in by `plan_build`); they do not carry on.
        state
            .config
            .config
            .get_or_insert_with(ContainerConfig::default)
            .on_build = None;
        for (n, step) in stage.steps.iter().enumerate() {
            let started = Instant::now();
            if let Err(e) = self.step(s, stage, n, step, &mut state) {
                let exit_code = match &e {
                    BuildError::RunExit { code, .. } => Some(*code),
                    _ => None,
                };
                let message = e.to_string();
                self.reporter.step_failed(
                    stage.index,
                    n,
                    &StepFailure {
                        message: &message,
                        exit_code,
                        last_good: state.image.as_ref(),
                        elapsed: started.elapsed(),
                    },
                );
                // A failed RUN names its command and the image to debug it from; other
                // errors already say what is wrong where.
                return Err(match e {
                    BuildError::RunExit { .. } | BuildError::RunFailed { .. } => {
                        BuildError::StepFailed {
                            text: step.text.clone(),
                            last_good: state.image.clone(),
                            source: Box::new(e),
                        }
                    }
                    e => e,
                });
            }
        }
        Ok(state)
    }

    fn step(
        &self,
        s: &Session<'_>,
        plan: &StagePlan,
        n: usize,
        step: &PlannedStep,
        state: &mut StageState,
    ) -> Result<(), BuildError> {
        let stage = plan.index;
        let content = self.step_content(s, step)?;
        // A RUN without its own --network gets the build's; `none` can change its result.
        let instruction = match (&step.op, s.opts.network) {
            (Op::Run(RunOp { network: None, .. }), RunNetwork::None) => {
                format!("{}\0network=none", step.key_text)
            }
            _ => step.key_text.clone(),
        };
        let key = state.key.child(&StepInputs {
            instruction: &instruction,
            build_args: &step.build_args,
            env: &step.env,
            content: content.as_ref(),
        });
        let reuse_key = reuse_key(&state.key, step, &instruction);
        self.reporter
            .step_started(stage, n, plan.label(Some(n)).as_ref(), &step.text, &key);
        // A metadata step followed by another is not recorded: the last of the run is, under
        // a key that covers the whole run, and the others are re-applied (cheaply) each build.
        let recorded = !matches!(step.op, Op::Metadata(_))
            || plan
                .steps
                .get(n + 1)
                .is_none_or(|next| !matches!(next.op, Op::Metadata(_)));
        if matches!(step.op, Op::Metadata(MetadataOp::Cmd(_))) {
            state.cmd_set = true;
        }
        let position = position(&s.identity.0, &s.identity.1, stage, n);
        if recorded && !s.opts.no_cache {
            if let Some((hit, config)) = self.cache_hit(&key, state)? {
                // Keep the position's record current, but only write when it names another key.
                if self.store.build_step_key(&position)?.as_deref() != Some(key.digest().as_str()) {
                    let record =
                        self.step_record(s, step, state, &instruction, &key, content.as_ref())?;
                    self.save_record(&position, &record)?;
                }
                let unrecorded = std::mem::take(&mut state.unrecorded);
                *state = StageState { key, ..hit };
                self.record_step_image(state, &config)?;
                s.cached.fetch_add(1 + unrecorded, Ordering::Relaxed);
                self.reporter.step_cached(stage, n, &config);
                return Ok(());
            }
        }
        if recorded {
            let record = self.step_record(s, step, state, &instruction, &key, content.as_ref())?;
            if s.opts.explain_cache {
                let reasons = if s.opts.no_cache {
                    vec![crate::MissReason::NoCache]
                } else {
                    let old = self.closest_earlier(&position, &record)?;
                    explain(old.as_ref(), &record, n)
                };
                self.reporter.step_cache_miss(stage, n, &reasons);
            }
            self.save_record(&position, &record)?;
        }
        let started = Instant::now();
        let sde = s.opts.source_date_epoch;
        let created = timestamp(sde);
        let mut cmd_set = state.cmd_set;
        let (created_by, layer) = match &step.op {
            Op::Metadata(m) => (apply(m, &mut state.config, &mut cmd_set), None),
            Op::Workdir(path) => {
                let mut config = state.container_config();
                let wd = absolute(&config.working_dir, path);
                let dir = s.area.scratch()?;
                let rootfs = RootfsView::open(self.store, state.chain().as_ref())?;
                let resolved = rootfs.resolve(&wd);
                let rel = clean_relative(&resolved);
                // An existing directory gives an empty layer, as with BuildKit's mkdir -p.
                if !rel.as_os_str().is_empty() && !rootfs.is_dir(&resolved) {
                    // Created as the stage's USER, as BuildKit's mkdir does.
                    ensure_parents(
                        dir.path(),
                        &rel.join("x"),
                        &rootfs,
                        workdir_owner(&config.user, &rootfs),
                        now_secs(sde),
                    )?;
                }
                let layer = commit_layer(
                    self.store,
                    &state.diff_ids(),
                    dir.path(),
                    ChangeSource::PlainTree,
                    sde,
                    step.line,
                )?;
                config.working_dir = wd.clone();
                state.config.config = Some(config);
                (Some(format!("WORKDIR {wd}")), Some(layer))
            }
            Op::Copy(c) => {
                let layer = self.copy(s, step, c, state, reuse_key.as_ref(), (stage, n))?;
                (Some(c.history_text()), Some(layer))
            }
            Op::Run(r) => {
                let (text, layer) = self.run(s, stage, n, step, r, state)?;
                (Some(text), Some(layer))
            }
        };
        state.cmd_set = cmd_set;
        if let Some(created_by) = created_by {
            state.config.history.push(History {
                created: Some(created.clone()),
                created_by: Some(created_by),
                comment: Some(HISTORY_COMMENT.to_string()),
                empty_layer: layer.is_none(),
                ..History::default()
            });
        }
        let diff_id = layer.as_ref().map(|l| l.diff_id.clone());
        if let Some(layer) = layer {
            state.push_layer(layer);
        }
        // Dated by its newest step, as the final image is: a build's last step image is then
        // its result (unless --label changes it), as with Docker's classic builder.
        state.config.created = state.config.history.last().and_then(|h| h.created.clone());
        if !recorded {
            state.key = key;
            state.unrecorded += 1;
            self.reporter
                .step_finished(stage, n, started.elapsed(), None);
            return Ok(());
        }
        let config_bytes = to_canonical_json(&state.config);
        let (config_digest, _) = self.store.content().ingest(&config_bytes[..], None)?;
        let now = chrono::Utc::now().timestamp();
        let entry = BuildCacheEntry {
            config: config_digest.clone(),
            diff_id,
            created: now,
            last_used: now,
        };
        self.store.build_cache_put(key.digest().as_str(), &entry)?;
        if let (Some(reuse_key), Some(diff_id)) = (&reuse_key, &entry.diff_id) {
            // The next miss of this step starts from this layer.
            record_previous(self.store, reuse_key, &entry.config, diff_id);
        }
        state.key = key;
        self.record_step_image(state, &config_digest)?;
        s.executed
            .fetch_add(1 + std::mem::take(&mut state.unrecorded), Ordering::Relaxed);
        self.reporter
            .step_finished(stage, n, started.elapsed(), Some(&config_digest));
        Ok(())
    }

    /// The digest of what a step reads besides its parent: the selected context files for
    /// COPY/ADD, the source stage's key or image ID for `--from`.
    fn step_content(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
    ) -> Result<Option<Digest>, BuildError> {
        let c = match &step.op {
            Op::Copy(c) => c,
            Op::Run(r) => return self.mount_content(s, step, r),
            _ => return Ok(None),
        };
        Ok(Some(match &c.from {
            CopySource::Context if c.sources.iter().any(|p| crate::op::is_http(p)) => {
                self.url_content(s, step, c)?
            }
            CopySource::Context => {
                let patterns: Vec<&str> = c.sources.iter().map(String::as_str).collect();
                let mut cache = lock(&s.stat_cache);
                let ticker = TransferTicker::new(s.opts.progress_interval, |t: &Transfer| {
                    self.reporter.context_progress(t)
                });
                let last = Mutex::new(Transfer::default());
                let progress = |files, bytes| {
                    let t = Transfer {
                        files,
                        bytes,
                        ..Transfer::default()
                    };
                    // Reading threads report out of order: keep the largest count.
                    let mut l = lock(&last);
                    if files > l.files {
                        *l = t;
                    }
                    drop(l);
                    ticker.update(&t);
                };
                let digest = ContextHasher::new(&s.context, &mut cache)
                    .include_mtime(s.opts.source_date_epoch.is_none())
                    .on_progress(&progress)
                    .hash(&patterns);
                ticker.finish(&lock(&last));
                digest.map_err(|source| BuildError::Context {
                    line: step.line,
                    source,
                })?
            }
            CopySource::Stage(j) => s
                .stage(*j)
                .map(|st| st.key.digest().clone())
                .ok_or_else(|| BuildError::at(step.line, format!("stage {j} was not built")))?,
            CopySource::Image(name) => s.images.get(name, step.line)?.record.id.clone(),
        }))
    }

    /// The state a cache entry describes, if everything it names is still in the store.
    fn cache_hit(
        &self,
        key: &CacheKey,
        state: &StageState,
    ) -> Result<Option<(StageState, Digest)>, BuildError> {
        let Some(entry) = self.store.build_cache_get(key.digest().as_str())? else {
            return Ok(None);
        };
        if !self.store.content().contains(&entry.config) {
            return Ok(None);
        }
        let bytes = self.store.content().read_all(&entry.config)?;
        let config: ImageConfig =
            serde_json::from_slice(&bytes).map_err(|e| BuildError::CachedConfig {
                digest: entry.config.clone(),
                message: e.to_string(),
            })?;
        let mut next = state.clone();
        next.config = config;
        next.layers = state.layers.clone();
        if let Some(diff_id) = entry.diff_id {
            let content = self.store.content();
            if !content.contains(&diff_id) {
                return Ok(None);
            }
            let blob_size = content.size(&diff_id)?;
            next.layers.push(LayerRecord {
                diff_id: diff_id.clone(),
                blob: diff_id,
                media_type: strata_oci::media_type::OCI_LAYER_TAR.to_string(),
                blob_size,
            });
            let Some(chain) = next.chain() else {
                return Ok(None);
            };
            if !self.store.snapshotter().exists(&chain)? {
                return Ok(None);
            }
        }
        // A config that disagrees with the layers would be a corrupt entry: treat as a miss.
        if next.config.rootfs.diff_ids != next.diff_ids() {
            return Ok(None);
        }
        next.config.shape = ConfigShape::Oci;
        // Last use orders `builder prune --keep-storage` and the build cache budget.
        self.store
            .build_cache_touch(key.digest().as_str(), chrono::Utc::now().timestamp())?;
        Ok(Some((next, entry.config)))
    }
}

/// Walks the context with its `.dockerignore` (the Dockerfile-specific one first).
fn read_context(context_dir: &Path, opts: &BuildOptions) -> Result<ContextIndex, BuildError> {
    let ignore = match find_ignore_file(
        context_dir,
        opts.dockerfile_path
            .as_deref()
            .unwrap_or(Path::new("Dockerfile")),
    ) {
        Some(file) => DockerIgnore::read(&file).map_err(|source| BuildError::ContextWalk {
            path: file.clone(),
            source,
        })?,
        None => DockerIgnore::default(),
    };
    walk(context_dir, &ignore).map_err(|source| BuildError::ContextWalk {
        path: context_dir.to_path_buf(),
        source,
    })
}

/// The config a stage starts from: what BuildKit keeps of a base config (OCI image fields),
/// in BuildKit's shape, with PATH set when the base has none.
fn new_config(base: ImageConfig) -> ImageConfig {
    let host = Platform::host();
    let mut config = base.config.unwrap_or_default();
    let env = config.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", strata_dockerfile::DEFAULT_PATH));
    }
    ImageConfig {
        architecture: if base.architecture.is_empty() {
            host.architecture
        } else {
            base.architecture
        },
        os: if base.os.is_empty() { host.os } else { base.os },
        variant: base.variant,
        os_version: base.os_version,
        os_features: base.os_features,
        author: base.author,
        config: Some(config),
        history: base.history,
        rootfs: RootFs::layers(base.rootfs.diff_ids),
        shape: ConfigShape::Oci,
        ..ImageConfig::default()
    }
}

/// RFC 3339 time of a step: `SOURCE_DATE_EPOCH` when set, else now.
fn timestamp(sde: Option<i64>) -> String {
    let t = match sde.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => t,
        None => chrono::Utc::now(),
    };
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub(crate) fn now_secs(sde: Option<i64>) -> i64 {
    sde.unwrap_or_else(|| chrono::Utc::now().timestamp())
}
