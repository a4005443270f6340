//! `Reporter`: how a build tells its caller what it is doing; the caller renders, never this crate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How far a COPY/ADD, or the reading of the build context, has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Regular files done so far, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Of those, files a COPY hard-linked from its previous layer (nothing read or written).
    pub linked: u64,
    /// The last report of this transfer.
    pub done: bool,
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
    /// A COPY/ADD that has run for more than a second: the files and bytes placed so far,
    /// about every second, then once with `done` when it has placed all of them.
    fn step_progress(&self, stage: usize, step: usize, transfer: &Transfer) {
        let _ = (stage, step, transfer);
    }
    /// Reading (hashing) build context files has taken more than a second: files and bytes
    /// read so far, about every second, then once with `done`. Files whose content the stat
    /// cache knows are not read and not counted.
    fn context_progress(&self, transfer: &Transfer) {
        let _ = transfer;
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
    /// A RUN exited with `exit_code` and `--debug-on-fail` is about to give the terminal to a
    /// shell in its container: stop drawing until [`Reporter::debug_shell_ended`]. Then
    /// [`Reporter::step_failed`] follows as usual.
    fn debug_shell_started(&self, stage: usize, step: usize, exit_code: i32) {
        let _ = (stage, step, exit_code);
    }
    /// The debug shell exited; the terminal is the reporter's again.
    fn debug_shell_ended(&self, stage: usize, step: usize) {
        let _ = (stage, step);
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

/// Throttles [`Transfer`] reports: nothing during the first second, then at most one a
/// second, and a final `done` report only if any was sent.
pub(crate) struct TransferTicker<'r> {
    started: Instant,
    interval: Duration,
    next: Mutex<Duration>,
    shown: AtomicBool,
    emit: Box<dyn Fn(&Transfer) + Send + Sync + 'r>,
}

const TICK: Duration = Duration::from_secs(1);

impl<'r> TransferTicker<'r> {
    /// `interval`: the quiet start and the time between reports (one second when None).
    pub(crate) fn new(
        interval: Option<Duration>,
        emit: impl Fn(&Transfer) + Send + Sync + 'r,
    ) -> TransferTicker<'r> {
        let interval = interval.unwrap_or(TICK);
        TransferTicker {
            started: Instant::now(),
            interval,
            next: Mutex::new(interval),
            shown: AtomicBool::new(false),
            emit: Box::new(emit),
        }
    }

    pub(crate) fn update(&self, transfer: &Transfer) {
        let elapsed = self.started.elapsed();
        {
            let mut next = crate::builder::lock(&self.next);
            if elapsed < *next {
                return;
            }
            *next = elapsed + self.interval;
        }
        self.shown.store(true, Ordering::Relaxed);
        (self.emit)(transfer);
    }

    pub(crate) fn finish(&self, transfer: &Transfer) {
        if self.shown.load(Ordering::Relaxed) {
            (self.emit)(&Transfer {
                done: true,
                ..*transfer
            });
        }
    }
}

impl std::fmt::Debug for TransferTicker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferTicker")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_transfer_reports_nothing_and_a_long_one_reports_its_end() {
        let seen = Mutex::new(Vec::new());
        let t = TransferTicker::new(None, |t: &Transfer| seen.lock().unwrap().push(*t));
        let one = Transfer {
            files: 1,
            bytes: 10,
            ..Transfer::default()
        };
        t.update(&one);
        t.finish(&one);
        assert!(seen.lock().unwrap().is_empty());
        let t = TransferTicker {
            started: Instant::now() - Duration::from_secs(2),
            ..TransferTicker::new(None, |t: &Transfer| seen.lock().unwrap().push(*t))
        };
        t.update(&one);
        t.update(&one); // within the same second: dropped
        t.finish(&one);
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert!(!got[0].done && got[1].done);
    }
}
