//! The COPY/ADD step: resolving owner, mode and destination in the stage's rootfs, placing
//! the files of the context (or of an earlier stage or image) in a new layer, committing it.

use strata_context::{walk, DockerIgnore};
use strata_layer::ChangeSource;
use strata_store::LayerRecord;

use crate::builder::{now_secs, Builder, Session, StageState};
use crate::copy_files::{copy_into, CopySpec};
use crate::layer_commit::{commit_layer, MountedRootfs};
use crate::op::{is_http, CopyOp, CopySource, PlannedStep};
use crate::owner::{parse_chmod, resolve_owner, Owner};
use crate::rootfs::{absolute, RootfsView};
use crate::BuildError;

impl Builder<'_> {
    pub(crate) fn copy(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
        c: &CopyOp,
        state: &StageState,
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
        if c.add && c.sources.iter().any(|src| is_http(src)) {
            return Err(BuildError::Unsupported {
                line: step.line,
                instruction: "ADD",
                what: "remote URLs".to_string(),
            });
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
        let spec = CopySpec {
            line: step.line,
            sources: &c.sources,
            dest: &dest,
            owner,
            chmod,
            now: now_secs(sde),
            add: c.add,
            inline: &c.inline,
            parents: c.parents,
            exclude,
        };
        let dir = s.area.scratch()?;
        match &c.from {
            CopySource::Context => copy_into(dir.path(), &s.context, &rootfs, &spec)?,
            CopySource::Stage(_) | CopySource::Image(_) => {
                let chain = match &c.from {
                    CopySource::Stage(j) => s.stage(*j).and_then(|st| st.chain()),
                    CopySource::Image(name) => {
                        let img =
                            strata_image::resolve_image(self.store, name).map_err(|source| {
                                BuildError::BaseImage {
                                    line: step.line,
                                    name: name.clone(),
                                    source: Box::new(source),
                                }
                            })?;
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
                copy_into(dir.path(), &index, &rootfs, &spec)?;
            }
        }
        commit_layer(
            self.store,
            &state.diff_ids(),
            dir.path(),
            ChangeSource::PlainTree,
            sde,
            step.line,
        )
    }
}
