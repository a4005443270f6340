//! `Reporter`: how a build tells its caller what it is doing; the caller renders, never this crate.

use std::time::Duration;

use strata_oci::Digest;

use crate::cache_key::CacheKey;
use crate::explain::MissReason;
use crate::op::StepLabel;

/// Why a step stopped the build.
#[derive(Debug, Clone)]
pub struct StepFailure<'a> {
    /// The error, on one line.
    pub message: &'a str,
    /// The exit code of a RUN that ran and failed.
    pub exit_code: Option<i32>,
    /// The image of the stage's last completed step (or its base image), to debug from.
    pub last_good: Option<&'a Digest>,
    pub elapsed: Duration,
}

/// Progress of a build. Every method has an empty default, so a caller implements only what
/// it shows. Steps are named by (stage index, step index within the stage).
pub trait Reporter: Send + Sync {
    /// The build is planned: `steps` steps in the stages the target needs.
    fn build_started(&self, steps: usize) {
        let _ = steps;
    }
    /// A stage's `FROM` named an image, now resolved: `text` is BuildKit's
    /// `FROM docker.io/library/busybox:1.36` (with `@sha256:…` when the image came from a
    /// registry). It is step 1 of its stage in BuildKit's numbering; it has no step index here.
    fn base_resolved(&self, stage: usize, label: &StepLabel<'_>, text: &str) {
        let _ = (stage, label, text);
    }
    /// A step is about to be looked up in the cache and, on a miss, executed.
    /// `text` is the instruction as written (its logical line), e.g. `COPY a /b`; `label`
    /// is BuildKit's name for it (`[build 2/4]`), `None` for a metadata instruction, which
    /// BuildKit does not show.
    fn step_started(
        &self,
        stage: usize,
        step: usize,
        label: Option<&StepLabel<'_>>,
        text: &str,
        key: &CacheKey,
    ) {
        let _ = (stage, step, label, text, key);
    }
    /// The step's result came from the build cache; `image_id` is the image of that result.
    fn step_cached(&self, stage: usize, step: usize, image_id: &Digest) {
        let _ = (stage, step, image_id);
    }
    /// The step missed the cache, and why (only when explaining was asked for).
    fn step_cache_miss(&self, stage: usize, step: usize, reasons: &[MissReason]) {
        let _ = (stage, step, reasons);
    }
    /// Output of a RUN step, as it was captured.
    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let _ = (stage, step, bytes);
    }
    /// The step was executed; `image_id` is the image of its result (untagged, in the store),
    /// `None` for a metadata step followed by another one: only the last of such a run is
    /// recorded (recording each would cost a config per ENV line: quadratic in their number).
    fn step_finished(
        &self,
        stage: usize,
        step: usize,
        elapsed: Duration,
        image_id: Option<&Digest>,
    ) {
        let _ = (stage, step, elapsed, image_id);
    }
    /// The step failed; the build stops.
    fn step_failed(&self, stage: usize, step: usize, failure: &StepFailure<'_>) {
        let _ = (stage, step, failure);
    }
    /// The build recorded its image.
    fn build_finished(&self, image_id: &Digest) {
        let _ = image_id;
    }
}

/// A reporter that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentReporter;

impl Reporter for SilentReporter {}
