//! How `strata build` shows progress on stderr: BuildKit-style plain lines, a live terminal
//! view, or one JSON event per line (docs/build-progress-json.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_build::{CacheKey, MissReason, Reporter, StepFailure, StepLabel, Transfer};
use strata_oci::Digest;

/// Lines of a running step's output the terminal view shows.
const TAIL_LINES: usize = 6;
/// Bytes at the end of a running step's log that the view looks at for its tail.
const TAIL_BYTES: usize = 8 * 1024;
/// How often the terminal view redraws its timers and output tails.
const TICK: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// While a `--debug-on-fail` shell owns the terminal, progress is held here (live frames
/// are dropped, lines kept) and written when the shell exits: parallel stages keep going.
static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Writes `bytes` to stderr in one call, or holds them while a debug shell runs.
fn write_stderr(bytes: &[u8]) {
    let mut held = lock(&HELD);
    match held.as_mut() {
        Some(buf) => buf.extend_from_slice(bytes),
        None => {
            let _ = std::io::stderr().lock().write_all(bytes);
        }
    }
}

fn holding() -> bool {
    lock(&HELD).is_some()
}

/// The debug shell takes the terminal: hold progress from now on.
fn hold() {
    lock(&HELD).get_or_insert_with(Vec::new);
}

/// The debug shell exited: write what was held, and write directly again.
fn release() {
    let mut held = lock(&HELD);
    if let Some(buf) = held.take() {
        let _ = std::io::stderr().lock().write_all(&buf);
    }
}

/// One line on stderr, outside any live view.
pub(crate) fn note(text: &str) {
    write_stderr(format!("{text}\n").as_bytes());
}

/// The line shown when `--debug-on-fail` opens its shell.
fn debug_shell_line(at: &str, exit_code: i32) -> String {
    format!(
        "{at} exited with code {exit_code}: opening a debug shell in its container \
         (changes are discarded; exit the shell to end the build)"
    )
}

fn err_line(text: &str) {
    note(text);
}

/// `1200 files, 18.3MB (1100 linked)`: what a COPY or the context read has done so far.
fn transfer_text(t: &Transfer) -> String {
    let mut text = format!(
        "{} file{}, {}",
        t.files,
        if t.files == 1 { "" } else { "s" },
        crate::render::human::size(t.bytes)
    );
    if t.linked > 0 {
        text.push_str(&format!(" ({} linked from the previous build)", t.linked));
    }
    if t.done {
        text.push_str(" done");
    }
    text
}

/// The key of the context read among the terminal view's running steps (no step has it).
const CONTEXT: (usize, usize) = (usize::MAX, usize::MAX);

/// Numbers steps in the order they start, as BuildKit's `#N`; a stage's FROM is step `None`.
/// Metadata steps (no BuildKit label) get no number: the views do not show them, as BuildKit
/// shows none, but remember their text to name them in a cache-miss reason or an error.
#[derive(Default)]
struct Numbers {
    numbers: Mutex<BTreeMap<(usize, Option<usize>), usize>>,
    hidden: Mutex<BTreeMap<(usize, usize), String>>,
}

impl Numbers {
    fn of(&self, stage: usize, step: usize) -> usize {
        self.number((stage, Some(step)))
    }

    fn of_base(&self, stage: usize) -> usize {
        self.number((stage, None))
    }

    fn number(&self, key: (usize, Option<usize>)) -> usize {
        let mut map = lock(&self.numbers);
        let next = map.len() + 1;
        *map.entry(key).or_insert(next)
    }

    fn hide(&self, stage: usize, step: usize, text: &str) {
        lock(&self.hidden).insert((stage, step), text.to_owned());
    }

    /// The text of a hidden step.
    fn hidden(&self, stage: usize, step: usize) -> Option<String> {
        lock(&self.hidden).get(&(stage, step)).cloned()
    }

    /// `#N` for a shown step, `(TEXT)` for a hidden one.
    fn name(&self, stage: usize, step: usize) -> String {
        match self.hidden(stage, step) {
            Some(text) => format!("({text})"),
            None => format!("#{}", self.of(stage, step)),
        }
    }
}

/// BuildKit's plain progress: one numbered line per event, the whole output of every RUN.
#[derive(Default)]
pub(crate) struct Plain {
    numbers: Numbers,
    /// Output after the last newline of each step, printed when its line ends (or the step does).
    partial: Mutex<BTreeMap<(usize, usize), Vec<u8>>>,
}

impl Plain {
    /// Prints what is left of a step's last output line.
    fn flush(&self, stage: usize, step: usize) {
        if let Some(rest) = lock(&self.partial).remove(&(stage, step)) {
            let n = self.numbers.of(stage, step);
            err_line(&format!("#{n} {}", String::from_utf8_lossy(&rest)));
        }
    }
}

impl Reporter for Plain {
    fn base_resolved(&self, stage: usize, label: &StepLabel<'_>, text: &str) {
        let n = self.numbers.of_base(stage);
        err_line(&format!("#{n} {label} {text}"));
        err_line(&format!("#{n} CACHED"));
    }

    fn step_started(
        &self,
        stage: usize,
        step: usize,
        label: Option<&StepLabel<'_>>,
        text: &str,
        _key: &CacheKey,
    ) {
        // Metadata steps are not shown, as BuildKit shows none.
        match label {
            Some(label) => {
                let n = self.numbers.of(stage, step);
                err_line(&format!("#{n} {label} {text}"));
            }
            None => self.numbers.hide(stage, step, text),
        }
    }

    fn step_cached(&self, stage: usize, step: usize, image_id: &Digest) {
        if self.numbers.hidden(stage, step).is_some() {
            return;
        }
        let n = self.numbers.of(stage, step);
        err_line(&format!("#{n} CACHED (image {})", image_id.short()));
    }

    fn step_cache_miss(&self, stage: usize, step: usize, reasons: &[MissReason]) {
        let at = self.numbers.name(stage, step);
        for r in reasons {
            err_line(&format!("{at} cache miss: {r}"));
        }
    }

    fn step_progress(&self, stage: usize, step: usize, transfer: &Transfer) {
        let at = self.numbers.name(stage, step);
        err_line(&format!("{at} copying: {}", transfer_text(transfer)));
    }

    fn context_progress(&self, transfer: &Transfer) {
        err_line(&format!(
            "#0 transferring context: {}",
            transfer_text(transfer)
        ));
    }

    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let n = self.numbers.of(stage, step);
        let mut partial = lock(&self.partial);
        let buf = partial.entry((stage, step)).or_default();
        buf.extend_from_slice(bytes);
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = buf.drain(..=end).collect();
        if buf.is_empty() {
            partial.remove(&(stage, step));
        }
        drop(partial);
        for l in String::from_utf8_lossy(&complete).lines() {
            err_line(&format!("#{n} {l}"));
        }
    }

    fn step_finished(
        &self,
        stage: usize,
        step: usize,
        elapsed: Duration,
        image_id: Option<&Digest>,
    ) {
        if self.numbers.hidden(stage, step).is_some() {
            return;
        }
        self.flush(stage, step);
        let n = self.numbers.of(stage, step);
        let image = image_id.map_or(String::new(), |id| format!(" (image {})", id.short()));
        err_line(&format!("#{n} DONE {:.1}s{image}", elapsed.as_secs_f64()));
    }

    fn step_failed(&self, stage: usize, step: usize, failure: &StepFailure<'_>) {
        self.flush(stage, step);
        let first = failure.message.lines().next().unwrap_or("");
        err_line(&format!(
            "{} ERROR: {first}",
            self.numbers.name(stage, step)
        ));
    }

    fn debug_shell_started(&self, stage: usize, step: usize, exit_code: i32) {
        self.flush(stage, step);
        err_line(&debug_shell_line(
            &self.numbers.name(stage, step),
            exit_code,
        ));
        hold();
    }

    fn debug_shell_ended(&self, _stage: usize, _step: usize) {
        release();
    }
}

/// One JSON object per line on stderr.
#[derive(Default)]
pub(crate) struct Json {
    numbers: Numbers,
}

impl Json {
    fn emit(&self, value: serde_json::Value) {
        // One write per event, so lines from parallel stages never interleave.
        let mut line = value.to_string();
        line.push('\n');
        write_stderr(line.as_bytes());
    }

    fn step(&self, event: &str, stage: usize, step: usize) -> serde_json::Value {
        json!({ "event": event, "number": self.numbers.of(stage, step), "stage": stage, "step": step })
    }

    fn with(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
        if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        base
    }
}

impl Reporter for Json {
    fn build_started(&self, steps: usize) {
        self.emit(json!({ "event": "build_start", "steps": steps }));
    }

    fn base_resolved(&self, stage: usize, label: &StepLabel<'_>, text: &str) {
        self.emit(json!({
            "event": "base_resolved",
            "number": self.numbers.of_base(stage),
            "stage": stage,
            "label": label.to_string(),
            "text": text,
        }));
    }

    fn step_started(
        &self,
        stage: usize,
        step: usize,
        label: Option<&StepLabel<'_>>,
        text: &str,
        key: &CacheKey,
    ) {
        let base = self.step("step_start", stage, step);
        let label = label.map(ToString::to_string);
        self.emit(Json::with(
            base,
            json!({ "label": label, "text": text, "cache_key": key.to_string() }),
        ));
    }

    fn step_cached(&self, stage: usize, step: usize, image_id: &Digest) {
        let base = self.step("step_cached", stage, step);
        self.emit(Json::with(
            base,
            json!({ "image_id": image_id.to_string() }),
        ));
    }

    fn step_cache_miss(&self, stage: usize, step: usize, reasons: &[MissReason]) {
        let base = self.step("step_cache_miss", stage, step);
        let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        self.emit(Json::with(base, json!({ "reasons": reasons })));
    }

    fn step_progress(&self, stage: usize, step: usize, transfer: &Transfer) {
        let base = self.step("step_progress", stage, step);
        self.emit(Json::with(
            base,
            json!({
                "files": transfer.files,
                "bytes": transfer.bytes,
                "linked": transfer.linked,
                "done": transfer.done,
            }),
        ));
    }

    fn context_progress(&self, transfer: &Transfer) {
        self.emit(json!({
            "event": "context_progress",
            "files": transfer.files,
            "bytes": transfer.bytes,
            "done": transfer.done,
        }));
    }

    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let base = self.step("step_output", stage, step);
        let data = String::from_utf8_lossy(bytes);
        self.emit(Json::with(base, json!({ "data": data })));
    }

    fn step_finished(
        &self,
        stage: usize,
        step: usize,
        elapsed: Duration,
        image_id: Option<&Digest>,
    ) {
        let base = self.step("step_done", stage, step);
        let image_id = image_id.map(ToString::to_string);
        self.emit(Json::with(
            base,
            json!({ "duration_ms": elapsed.as_millis() as u64, "image_id": image_id }),
        ));
    }

    fn step_failed(&self, stage: usize, step: usize, failure: &StepFailure<'_>) {
        let base = self.step("step_failed", stage, step);
        self.emit(Json::with(
            base,
            json!({
                "error": failure.message,
                "exit_code": failure.exit_code,
                "last_good_image_id": failure.last_good.map(ToString::to_string),
                "duration_ms": failure.elapsed.as_millis() as u64,
            }),
        ));
    }

    fn debug_shell_started(&self, stage: usize, step: usize, exit_code: i32) {
        let base = self.step("debug_shell_start", stage, step);
        self.emit(Json::with(base, json!({ "exit_code": exit_code })));
        hold();
    }

    fn debug_shell_ended(&self, stage: usize, step: usize) {
        release();
        self.emit(self.step("debug_shell_end", stage, step));
    }

    fn build_finished(&self, image_id: &Digest) {
        self.emit(json!({ "event": "build_done", "image_id": image_id.to_string() }));
    }
}

/// A step the terminal view shows while it runs.
struct Running {
    number: usize,
    text: String,
    started: Instant,
    /// The whole output so far (the view shows its tail; a failure prints all of it).
    log: Vec<u8>,
    /// A COPY's files and bytes so far, shown after its timer.
    transfer: Option<String>,
}

#[derive(Default)]
struct TtyState {
    running: BTreeMap<(usize, usize), Running>,
    /// Lines of the live region drawn last time (erased before the next frame).
    drawn: usize,
    /// Full logs of failed steps, printed once the view is gone.
    failed: Vec<(String, Vec<u8>)>,
    done: bool,
}

/// The live terminal view: finished steps become permanent one-line records; running steps
/// stay in a region at the bottom with a timer and the tail of their output, redrawn in one
/// write per frame (no flicker) and erased when the build ends.
pub(crate) struct Tty {
    numbers: Numbers,
    state: Arc<(Mutex<TtyState>, Condvar)>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Tty {
    pub(crate) fn start() -> Tty {
        let state: Arc<(Mutex<TtyState>, Condvar)> = Arc::default();
        let shared = state.clone();
        let ticker = std::thread::spawn(move || {
            let (m, cv) = &*shared;
            let mut st = lock(m);
            while !st.done {
                redraw(&mut st, None);
                st = cv
                    .wait_timeout(st, TICK)
                    .map(|r| r.0)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        });
        Tty {
            numbers: Numbers::default(),
            state,
            ticker: Mutex::new(Some(ticker)),
        }
    }

    /// Prints `line` above the live region.
    fn record(&self, line: String) {
        let mut st = lock(&self.state.0);
        redraw(&mut st, Some(line));
    }

    /// Erases the view and prints the full log of every failed step.
    pub(crate) fn finish(&self) {
        {
            let mut st = lock(&self.state.0);
            st.done = true;
            st.running.clear();
            redraw(&mut st, None);
            for (title, log) in std::mem::take(&mut st.failed) {
                let mut out = format!("------ full output of {title} ------\n");
                out.push_str(&String::from_utf8_lossy(&log));
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str("------\n");
                write_stderr(out.as_bytes());
            }
        }
        self.state.1.notify_all();
        if let Some(t) = lock(&self.ticker).take() {
            let _ = t.join();
        }
    }
}

/// Erases the live region, prints `permanent` (if any), and draws the region again.
fn redraw(st: &mut TtyState, permanent: Option<String>) {
    let width = terminal_width();
    if holding() {
        // A debug shell owns the screen: no frames, lines kept for later.
        st.drawn = 0;
        if let Some(line) = permanent {
            write_stderr(format!("{}\n", clip(&line, width)).as_bytes());
        }
        return;
    }
    let mut frame = String::new();
    if st.drawn > 0 {
        frame.push_str(&format!("\x1b[{}A", st.drawn));
    }
    frame.push_str("\r\x1b[J");
    if let Some(line) = permanent {
        frame.push_str(&clip(&line, width));
        frame.push('\n');
    }
    let mut lines = 0;
    if !st.done {
        for r in st.running.values() {
            let number = if r.number == 0 {
                String::new()
            } else {
                format!("#{} ", r.number)
            };
            let mut head = format!(
                "=> {number}{} {:.1}s",
                r.text,
                r.started.elapsed().as_secs_f64()
            );
            if let Some(t) = &r.transfer {
                head.push_str("  ");
                head.push_str(t);
            }
            frame.push_str(&clip(&head, width));
            frame.push('\n');
            lines += 1;
            // Only the end of the log: a frame costs the same whatever the RUN printed.
            let text = String::from_utf8_lossy(&r.log[r.log.len().saturating_sub(TAIL_BYTES)..]);
            let all: Vec<&str> = text.lines().collect();
            for l in &all[all.len().saturating_sub(TAIL_LINES)..] {
                frame.push_str(&clip(&format!("   {l}"), width));
                frame.push('\n');
                lines += 1;
            }
        }
    }
    st.drawn = lines;
    write_stderr(frame.as_bytes());
}

/// `line` cut to the terminal's width, control characters dropped (they would break the frame).
fn clip(line: &str, width: usize) -> String {
    line.chars()
        .filter(|c| !c.is_control())
        .take(width.saturating_sub(1).max(10))
        .collect()
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ only fills the winsize struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

impl Reporter for Tty {
    fn base_resolved(&self, stage: usize, label: &StepLabel<'_>, text: &str) {
        let n = self.numbers.of_base(stage);
        self.record(format!("=> #{n} {label} {text}"));
    }

    fn step_started(
        &self,
        stage: usize,
        step: usize,
        label: Option<&StepLabel<'_>>,
        text: &str,
        _key: &CacheKey,
    ) {
        let Some(label) = label else {
            self.numbers.hide(stage, step, text);
            return;
        };
        let number = self.numbers.of(stage, step);
        let mut st = lock(&self.state.0);
        st.running.insert(
            (stage, step),
            Running {
                number,
                text: format!("{label} {text}"),
                started: Instant::now(),
                log: Vec::new(),
                transfer: None,
            },
        );
        redraw(&mut st, None);
    }

    fn step_cached(&self, stage: usize, step: usize, image_id: &Digest) {
        if self.numbers.hidden(stage, step).is_some() {
            return;
        }
        let text = lock(&self.state.0)
            .running
            .remove(&(stage, step))
            .map(|r| r.text);
        let n = self.numbers.of(stage, step);
        self.record(format!(
            "=> CACHED #{n} {} ({})",
            text.unwrap_or_default(),
            image_id.short()
        ));
    }

    fn step_cache_miss(&self, stage: usize, step: usize, reasons: &[MissReason]) {
        let at = self.numbers.name(stage, step);
        for r in reasons {
            self.record(format!("   {at} cache miss: {r}"));
        }
    }

    fn step_progress(&self, stage: usize, step: usize, transfer: &Transfer) {
        let mut st = lock(&self.state.0);
        if let Some(r) = st.running.get_mut(&(stage, step)) {
            r.transfer = Some(transfer_text(transfer));
        }
    }

    fn context_progress(&self, transfer: &Transfer) {
        let mut st = lock(&self.state.0);
        if transfer.done {
            let started = st.running.remove(&CONTEXT).map(|r| r.started);
            let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
            let line = format!(
                "=> transferring context: {} {secs:.1}s",
                transfer_text(transfer)
            );
            redraw(&mut st, Some(line));
            return;
        }
        // The first report comes a second after the read began.
        let r = st.running.entry(CONTEXT).or_insert_with(|| Running {
            number: 0,
            text: "transferring context".to_string(),
            started: Instant::now() - Duration::from_secs(1),
            log: Vec::new(),
            transfer: None,
        });
        r.transfer = Some(transfer_text(transfer));
    }

    fn step_output(&self, stage: usize, step: usize, bytes: &[u8]) {
        let mut st = lock(&self.state.0);
        if let Some(r) = st.running.get_mut(&(stage, step)) {
            r.log.extend_from_slice(bytes);
        }
        // The ticker draws the new tail: a chatty RUN costs no more frames than a quiet one.
    }

    fn step_finished(
        &self,
        stage: usize,
        step: usize,
        elapsed: Duration,
        image_id: Option<&Digest>,
    ) {
        if self.numbers.hidden(stage, step).is_some() {
            return;
        }
        let text = lock(&self.state.0)
            .running
            .remove(&(stage, step))
            .map(|r| r.text);
        let n = self.numbers.of(stage, step);
        let image = image_id.map_or(String::new(), |id| format!(" ({})", id.short()));
        self.record(format!(
            "=> #{n} {} {:.1}s{image}",
            text.unwrap_or_default(),
            elapsed.as_secs_f64(),
        ));
    }

    fn step_failed(&self, stage: usize, step: usize, failure: &StepFailure<'_>) {
        let at = self.numbers.name(stage, step);
        let mut st = lock(&self.state.0);
        let run = st.running.remove(&(stage, step));
        let line = format!(
            "=> ERROR {at} {} {:.1}s",
            run.as_ref().map(|r| r.text.as_str()).unwrap_or(""),
            failure.elapsed.as_secs_f64()
        );
        if let Some(r) = run.filter(|r| !r.log.is_empty()) {
            st.failed.push((format!("{at} {}", r.text), r.log));
        }
        redraw(&mut st, Some(line));
    }

    fn debug_shell_started(&self, stage: usize, step: usize, exit_code: i32) {
        let at = self.numbers.name(stage, step);
        let mut st = lock(&self.state.0);
        // Erase the live region, then the step's whole output (not printed again at the
        // end) and what is happening, before the shell draws on the screen.
        let mut frame = String::new();
        if st.drawn > 0 {
            frame.push_str(&format!("\x1b[{}A", st.drawn));
        }
        frame.push_str("\r\x1b[J");
        if let Some(r) = st.running.get_mut(&(stage, step)) {
            let log = std::mem::take(&mut r.log);
            frame.push_str(&format!("------ output of {at} {} ------\n", r.text));
            frame.push_str(&String::from_utf8_lossy(&log));
            if !frame.ends_with('\n') {
                frame.push('\n');
            }
            frame.push_str("------\n");
        }
        frame.push_str(&debug_shell_line(&at, exit_code));
        frame.push('\n');
        write_stderr(frame.as_bytes());
        st.drawn = 0;
        hold();
    }

    fn debug_shell_ended(&self, _stage: usize, _step: usize) {
        let mut st = lock(&self.state.0);
        release();
        redraw(&mut st, None);
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.finish();
    }
}
