//! The COPY/ADD step: resolving owner, mode and destination in the stage's rootfs, placing
//! the files of the context (or of an earlier stage or image) in a new layer, committing it.

use std::sync::atomic::Ordering;

use strata_context::{walk, DockerIgnore};
use strata_layer::ChangeSource;
use strata_store::LayerRecord;

use crate::builder::{now_secs, Builder, Session, StageState};
use crate::cache_key::CacheKey;
use crate::copy_files::{copy_into, place_file, CopySpec};
use crate::copy_reuse::{save_index, PreviousLayer, Reuse};
use crate::layer_commit::{commit_layer, MountedRootfs};
use crate::op::{is_http, CopyOp, CopySource, PlannedStep};
use crate::owner::{parse_chmod, resolve_owner, Owner};
use crate::remote::fetch;
use crate::reporter::{Transfer, TransferTicker};
use crate::rootfs::{absolute, RootfsView};
use crate::BuildError;
use strata_inroot::clean_relative;

impl Builder<'_> {
    pub(crate) fn copy(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
        c: &CopyOp,
        state: &StageState,
        reuse_key: Option<&CacheKey>,
        (stage, n): (usize, usize),
    ) -> Result<LayerRecord, BuildError> {
        let sde = s.opts.source_date_epoch;
        let rootfs = RootfsView::open(self.store, state.chain().as_ref())?;
        let owner = match &c.chown {
            Some(spec) => resolve_owner(spec, &rootfs, step.line)?,
            None => Owner::default(),
        };
        let chmod = c
            .chmod
            .as_deref()
            .map(|m| parse_chmod(m, step.line))
            .transpose()?;
        let (urls, locals): (Vec<String>, Vec<String>) =
            c.sources.iter().cloned().partition(|src| is_http(src));
        let total = locals.len() + urls.len() + c.inline.len();
        if total > 1 && !c.dest.ends_with('/') {
            return Err(BuildError::at(
                step.line,
                "when using COPY with more than one source file, the destination must be a directory and end with a /",
            ));
        }
        let workdir = state.container_config().working_dir;
        let mut dest = rootfs.resolve(&absolute(&workdir, &c.dest));
        if c.dest.ends_with('/') && !dest.ends_with('/') {
            dest.push('/');
        }
        let exclude = if c.exclude.is_empty() {
            None
        } else {
            Some(
                DockerIgnore::parse(&c.exclude.join("\n")).map_err(|source| {
                    BuildError::Context {
                        line: step.line,
                        source,
                    }
                })?,
            )
        };
        // A copy from the context links unchanged files from the step's previous layer
        // (never with --no-cache: that builds everything afresh).
        let reuse = reuse_key.map(|key| Reuse {
            digests: &s.stat_cache,
            previous: if s.opts.no_cache {
                None
            } else {
                PreviousLayer::find(self.store, key, sde)
            },
        });
        let progress = TransferTicker::new(s.opts.progress_interval, |t: &Transfer| {
            self.reporter.step_progress(stage, n, t);
        });
        let spec = CopySpec {
            line: step.line,
            sources: &locals,
            dest: &dest,
            owner,
            keep_source_owners: c.chown.is_none() && !matches!(c.from, CopySource::Context),
            chmod,
            now: now_secs(sde),
            add: c.add,
            inline: &c.inline,
            parents: c.parents,
            exclude,
            reuse: reuse.as_ref(),
            progress: Some(&progress),
        };
        let dir = s.area.scratch()?;
        for url in &urls {
            let f = fetch(&s.area, url, c.checksum.as_deref(), step.line)?;
            let dest_rel = clean_relative(&dest);
            let target = if dest.ends_with('/') || rootfs.is_dir(&dest) || total > 1 {
                dest_rel.join(&f.name)
            } else {
                dest_rel
            };
            // Remote files are never extracted; 0600 unless --chmod, as BuildKit.
            place_file(
                dir.path(),
                &target,
                &f.path,
                spec.chmod.unwrap_or(0o600),
                &rootfs,
                &spec,
                // No Last-Modified: BuildKit dates the file at the epoch.
                f.mtime.unwrap_or(0),
            )?;
        }
        if locals.is_empty() && c.inline.is_empty() {
            return commit_layer(
                self.store,
                &state.diff_ids(),
                dir.path(),
                ChangeSource::PlainTree,
                sde,
                step.line,
            );
        }
        let report = match &c.from {
            CopySource::Context => copy_into(dir.path(), &s.context, &rootfs, &spec)?,
            CopySource::Stage(_) | CopySource::Image(_) => {
                let chain = match &c.from {
                    CopySource::Stage(j) => s.stage(*j).and_then(|st| st.chain()),
                    CopySource::Image(name) => {
                        let img = s.images.get(name, step.line)?;
                        self.store.unpack_image(&img.record)?
                    }
                    CopySource::Context => None,
                };
                let source = MountedRootfs::open(self.store, &s.area, chain.as_ref())?;
                let index = walk(source.path(), &DockerIgnore::default()).map_err(|source| {
                    BuildError::Context {
                        line: step.line,
                        source,
                    }
                })?;
                copy_into(dir.path(), &index, &rootfs, &spec)?
            }
        };
        progress.finish(&report.transfer());
        s.reused
            .fetch_add(report.linked as usize, Ordering::Relaxed);
        let layer = commit_layer(
            self.store,
            &state.diff_ids(),
            dir.path(),
            ChangeSource::PlainTree,
            sde,
            step.line,
        )?;
        if spec.reuse.is_some() {
            save_index(self.store, &layer.diff_id, &report.indexed);
        }
        Ok(layer)
    }
}
