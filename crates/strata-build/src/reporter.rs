//! `Reporter`: how a build tells its caller what it is doing; the caller renders, never this crate.

use std::time::Duration;

/// Progress of a build. Every method has an empty default, so a caller implements only what
/// it shows.
pub trait Reporter: Send + Sync {
    /// A step is about to be looked up in the cache and, on a miss, executed.
    /// `text` is the instruction as written (its logical line), e.g. `COPY a /b`.
    fn step_started(&self, stage: usize, step: usize, text: &str) {
        let _ = (stage, step, text);
    }
    /// The step's result came from the build cache.
    fn step_cached(&self, stage: usize, step: usize) {
        let _ = (stage, step);
    }
    /// The step was executed.
    fn step_finished(&self, stage: usize, step: usize, elapsed: Duration) {
        let _ = (stage, step, elapsed);
    }
    /// Output of a RUN step, as it was captured.
    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let _ = (stage, step, bytes);
    }
}

/// A reporter that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentReporter;

impl Reporter for SilentReporter {}
