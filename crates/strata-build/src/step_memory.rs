//! What the builder remembers about each step besides its cache entry: the step's result as
//! an untagged image (to run and debug), and the inputs of its key (to explain a later miss).

use strata_context::ContextHasher;
use strata_oci::Digest;
use strata_store::ImageRecord;

use crate::builder::{lock, Builder, Session, StageState};
use crate::cache_key::CacheKey;
use crate::explain::{recorded_args, StepRecord, MAX_FILES};
use crate::op::{CopyOp, CopySource, Op, PlannedStep};
use crate::BuildError;

impl Builder<'_> {
    /// Records the result of a step as an untagged image (config + the layers so far), the
    /// child of the previous step's image, so it can be run and debugged; as Docker's
    /// classic builder, `images -a` lists it and `image prune` keeps it while a kept image
    /// descends from it. Costs one database write: the config blob and layers exist already.
    pub(crate) fn record_step_image(
        &self,
        state: &mut StageState,
        config: &Digest,
    ) -> Result<(), BuildError> {
        let record = ImageRecord {
            id: config.clone(),
            manifest: None,
            layers: state.layers.clone(),
            created: state.config.created.clone(),
            added_at: chrono::Utc::now().timestamp(),
            parent: state.image.clone().filter(|_| !state.image_is_base),
        };
        self.store.put_image(&record, &[])?;
        state.image = Some(config.clone());
        state.image_is_base = false;
        Ok(())
    }

    /// The inputs of a step's key, as recorded for `--explain-cache`.
    pub(crate) fn step_record(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
        state: &StageState,
        instruction: &str,
        key: &CacheKey,
        content: Option<&Digest>,
    ) -> Result<StepRecord, BuildError> {
        let files = match &step.op {
            Op::Copy(CopyOp {
                from: CopySource::Context,
                sources,
                ..
            }) => {
                // URL sources are fetched, not read from the context (their digest is the
                // step's content).
                let patterns: Vec<&str> = sources
                    .iter()
                    .filter(|p| !crate::op::is_http(p))
                    .map(String::as_str)
                    .collect();
                let ctx_err = |source| BuildError::Context {
                    line: step.line,
                    source,
                };
                let entries = s.context.select_all(&patterns).map_err(ctx_err)?;
                if entries.len() > MAX_FILES {
                    None
                } else {
                    let mut cache = lock(&s.stat_cache);
                    let mut hasher = ContextHasher::new(&s.context, &mut cache)
                        .include_mtime(s.opts.source_date_epoch.is_none());
                    let mut files = Vec::with_capacity(entries.len());
                    for e in entries {
                        let d = hasher.hash_entries(&[e]).map_err(ctx_err)?;
                        // Directories end in `/`, so a reason can tell them apart.
                        let path = match e.kind {
                            strata_context::EntryKind::Dir => format!("{}/", e.path),
                            _ => e.path.clone(),
                        };
                        files.push((path, d.to_string()));
                    }
                    Some(files)
                }
            }
            _ => None,
        };
        let source = match &step.op {
            Op::Copy(CopyOp {
                from: CopySource::Stage(j),
                ..
            }) => Some(format!(
                "stage {j} ({})",
                content.map(Digest::short).unwrap_or("-")
            )),
            Op::Copy(CopyOp {
                from: CopySource::Image(name),
                ..
            }) => Some(format!(
                "{name} {}",
                content.map(Digest::to_string).unwrap_or_default()
            )),
            _ => None,
        };
        Ok(StepRecord {
            key: key.digest().to_string(),
            parent: state.key.digest().to_string(),
            base: state.base.clone(),
            text: step.text.clone(),
            expanded: instruction.to_string(),
            build_args: recorded_args(&step.build_args),
            env: step.env.clone(),
            content: content.map(Digest::to_string),
            files,
            source,
        })
    }

    pub(crate) fn save_record(
        &self,
        position: &str,
        record: &StepRecord,
    ) -> Result<(), BuildError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.store
            .build_step_record(position, &record.key, &record.parent, &bytes)?;
        Ok(())
    }

    /// The closest earlier build of a step: the same position on the same parent, else any
    /// step on the same parent (only this step differs: another Dockerfile sharing the
    /// prefix, a moved line), else the same position.
    pub(crate) fn closest_earlier(
        &self,
        position: &str,
        record: &StepRecord,
    ) -> Result<Option<StepRecord>, BuildError> {
        let decode = |bytes: Vec<u8>| serde_json::from_slice::<StepRecord>(&bytes).ok();
        let at_position = self.store.build_step_inputs(position)?.and_then(decode);
        Ok(match at_position {
            Some(r) if r.parent == record.parent => Some(r),
            other => self
                .store
                .build_step_inputs_by_parent(&record.parent)?
                .and_then(decode)
                .or(other),
        })
    }
}
