//! How pulls and pushes show progress, as Docker's CLI does: on a terminal one line per
//! layer updated in place (`5cc84ad355aa: Downloading [=====>      ]  1.2MB/3.4MB`), else
//! one plain line per change of state; nothing with `-q`. `pull` and `push` write to
//! stdout like Docker; pulls started by `run`, `create` and `build` write to stderr.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_image::{LayerStatus, TransferEvent, TransferReporter};
use strata_oci::Digest;

use crate::render::human;

/// How often a layer's progress bar is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);
const BAR_WIDTH: usize = 50;

/// Where a view writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn write(self, text: &str) {
        // A closed pipe only loses progress lines; the command's result still counts.
        let _ = match self {
            Stream::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        };
    }
}

struct Line {
    id: Digest,
    text: String,
    last_draw: Option<Instant>,
}

struct State {
    /// Layer lines in the order they appeared (terminal view: their screen rows).
    lines: Vec<Line>,
}

/// Docker-style transfer progress.
pub(crate) struct TransferView {
    stream: Stream,
    live: bool,
    quiet: bool,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TransferView {
    pub(crate) fn new(stream: Stream, quiet: bool) -> TransferView {
        TransferView {
            stream,
            live: !quiet && stream.is_terminal(),
            quiet,
            state: Mutex::new(State { lines: Vec::new() }),
        }
    }

    /// A line outside the per-layer block (the block starts again under it).
    pub(crate) fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut state = lock(&self.state);
        state.lines.clear();
        self.stream.write(&format!("{text}\n"));
    }

    fn layer_line(&self, id: &Digest, text: String, throttle: bool) {
        if self.quiet {
            return;
        }
        let mut state = lock(&self.state);
        let now = Instant::now();
        let pos = match state.lines.iter().position(|l| &l.id == id) {
            Some(p) => p,
            None => {
                state.lines.push(Line {
                    id: id.clone(),
                    text: String::new(),
                    last_draw: None,
                });
                if self.live {
                    self.stream.write("\n");
                }
                state.lines.len() - 1
            }
        };
        let line = &mut state.lines[pos];
        if line.text == text
            || (throttle
                && line
                    .last_draw
                    .is_some_and(|t| now.duration_since(t) < REDRAW))
        {
            return;
        }
        line.text = text;
        line.last_draw = Some(now);
        let shown = format!("{}: {}", &id.hex()[..12], line.text);
        if self.live {
            let up = state.lines.len() - pos;
            // Up to the layer's row, rewrite it, back down to below the block.
            self.stream
                .write(&format!("\x1b[{up}A\r\x1b[2K{shown}\x1b[{up}B\r"));
        } else if !throttle {
            self.stream.write(&format!("{shown}\n"));
        }
    }
}

fn status_text(status: &LayerStatus) -> String {
    match status {
        LayerStatus::AlreadyExists => "Already exists".into(),
        LayerStatus::Queued => "Pulling fs layer".into(),
        LayerStatus::Waiting => "Waiting".into(),
        LayerStatus::Resuming { from } => {
            format!("Resuming download from {}", human::size(*from))
        }
        LayerStatus::Verifying => "Verifying Checksum".into(),
        LayerStatus::Downloaded => "Download complete".into(),
        LayerStatus::Extracting => "Extracting".into(),
        LayerStatus::PullComplete => "Pull complete".into(),
        LayerStatus::Retrying { attempt, error } => format!("Retrying ({attempt}): {error}"),
        LayerStatus::Preparing => "Preparing".into(),
        LayerStatus::LayerAlreadyExists => "Layer already exists".into(),
        LayerStatus::Mounted { from } => format!("Mounted from {from}"),
        LayerStatus::Pushed => "Pushed".into(),
    }
}

/// `[=========>         ]  1.2MB/3.4MB`, as Docker draws it.
fn bar(verb: &str, done: u64, total: Option<u64>) -> String {
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let filled = ((done.min(total) as f64 / total as f64) * BAR_WIDTH as f64) as usize;
            let mut b = "=".repeat(filled.saturating_sub(1));
            if filled > 0 {
                b.push(if filled == BAR_WIDTH { '=' } else { '>' });
            }
            format!(
                "{verb} [{b:<width$}]  {}/{}",
                human::size(done),
                human::size(total),
                width = BAR_WIDTH
            )
        }
        None => format!("{verb}  {}", human::size(done)),
    }
}

impl TransferReporter for TransferView {
    fn event(&self, event: TransferEvent<'_>) {
        match event {
            TransferEvent::NotFoundLocally { reference } => {
                // Docker says this on stderr even when the pull output is quiet.
                Stream::Stderr.write(&format!(
                    "Unable to find image '{}' locally\n",
                    reference.familiar()
                ));
            }
            TransferEvent::PullStarted { reference } => {
                let what = match (reference.digest(), reference.tag()) {
                    (Some(d), _) => d.to_string(),
                    (None, Some(t)) => t.to_string(),
                    (None, None) => "latest".to_string(),
                };
                self.line(&format!("{what}: Pulling from {}", reference.path()));
            }
            TransferEvent::PushStarted { reference } => {
                self.line(&format!(
                    "The push refers to repository [{}]",
                    reference.familiar_name()
                ));
            }
            TransferEvent::Layer { id, status } => {
                self.layer_line(id, status_text(status), false);
            }
            TransferEvent::Progress { id, done, total } => {
                if self.live {
                    let verb = if total.is_some_and(|t| done >= t) {
                        "Verifying Checksum".to_string()
                    } else {
                        bar("Downloading", done, total)
                    };
                    self.layer_line(id, verb, true);
                }
            }
            TransferEvent::Pushing { id, done, total } => {
                if self.live {
                    self.layer_line(id, bar("Pushing", done, total), true);
                }
            }
            TransferEvent::Pulled {
                reference,
                digest,
                fresh,
            } => {
                self.line(&format!("Digest: {digest}"));
                let status = if fresh {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                self.line(&format!("Status: {status} {}", reference.familiar()));
            }
            TransferEvent::Pushed {
                reference,
                digest,
                size,
            } => {
                let tag = reference.tag().unwrap_or("latest");
                self.line(&format!("{tag}: digest: {digest} size: {size}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_look_like_dockers() {
        let b = super::bar("Downloading", 50, Some(100));
        assert!(
            b.starts_with("Downloading [========================>"),
            "{b}"
        );
        assert!(b.ends_with("50B/100B"), "{b}");
        assert!(super::bar("Pushing", 100, Some(100)).contains(&"=".repeat(50)));
        assert_eq!(super::bar("Pushing", 3, None), "Pushing  3B");
    }
}
