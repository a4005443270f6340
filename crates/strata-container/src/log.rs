//! Container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"…","stream":"stdout","time":"2026-…Z"}`, appended by the monitor as output arrives
//! and read back by `logs` (`--tail`, `--timestamps`, `-f`).
//!
//! Logs rotate like Docker's json-file driver with `max-size`/`max-file`: when `container.log`
//! would pass `max-size`, it becomes `container.log.1` (`.1` becomes `.2`, …, the oldest beyond
//! `max-file` is dropped). Readers stream: memory stays flat whatever the log's size, `--tail`
//! reads backwards from the end, `-f` follows across rotations and stops when its reader goes
//! away. A full disk stops the writing (the container runs on, its output is dropped) instead
//! of starving the store, and writing resumes once space is back.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ContainerError;
use crate::record::now_rfc3339;

/// Which stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: LogStream,
    pub time: String,
}

/// Docker's `--log-driver` / `--log-opt` for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `json-file` when true; `none` (nothing is kept, `logs` has nothing to show) when false.
    pub enabled: bool,
    /// Rotate when the current file would pass this many bytes; 0 = never.
    pub max_size: u64,
    /// Files kept, the current one included (≥ 1).
    pub max_file: u32,
}

impl LogConfig {
    /// Docker's `local` driver caps (20 MB × 5): a chatty container cannot fill the disk
    /// by default. The store's `log-max-size`/`log-max-file` settings change this.
    pub const DEFAULT: LogConfig = LogConfig {
        enabled: true,
        max_size: 20 * 1000 * 1000,
        max_file: 5,
    };
}

impl Default for LogConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `container.log.N`: the N-th newest rotated file (`N = 0` is the current one).
pub(crate) fn log_file(current: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return current.to_path_buf();
    }
    let mut name = current.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Appends entries to a container's log file, rotating it.
pub(crate) struct LogWriter {
    /// `None` for `--log-driver none`.
    file: Option<File>,
    path: PathBuf,
    config: LogConfig,
    /// Bytes in the current file.
    size: u64,
    /// Bytes of an incomplete UTF-8 sequence or line carried to the next write, per stream.
    pending: [Vec<u8>; 2],
    /// Set when the disk filled up: output is dropped until then.
    paused_until: Option<Instant>,
    /// Output bytes dropped since the disk filled up.
    dropped: u64,
    /// Bytes written since the free space was last looked at.
    unchecked: u64,
}

/// Mode of log files: root and its group (Docker's json-file logs are 0640).
const LOG_MODE: u32 = 0o640;

/// Longest partial line kept back waiting for its newline (Docker's 16 KiB buffer).
const MAX_PARTIAL: usize = 16 * 1024;

/// How long a full disk pauses the log before the next try.
const FULL_DISK_PAUSE: Duration = Duration::from_secs(5);

/// Free space the log leaves on its filesystem: the store's metadata and the commands that
/// free space (`stop`, `rm`) need some, so the log pauses before the disk is completely full.
const MIN_FREE_BYTES: u64 = 16 << 20;

/// How much is written between two looks at the free space.
const SPACE_CHECK_EVERY: u64 = 1 << 20;

/// What happened to output the writer could not keep.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogPause {
    /// The disk is full: output is dropped from now on (retried every few seconds).
    Started,
    /// Writing works again; this many bytes of output were dropped meanwhile.
    Ended { dropped: u64 },
}

impl LogWriter {
    pub(crate) fn open(path: &Path, config: LogConfig) -> Result<Self, ContainerError> {
        let (file, size) = if config.enabled {
            let file = File::options()
                .create(true)
                .append(true)
                // Docker's json-file logs: root and its group only.
                .mode(LOG_MODE)
                .open(path)
                .map_err(ContainerError::io("opening log", path))?;
            let size = file
                .metadata()
                .map_err(ContainerError::io("opening log", path))?
                .len();
            (Some(file), size)
        } else {
            (None, 0)
        };
        Ok(Self {
            file,
            path: path.to_owned(),
            config,
            size,
            pending: [Vec::new(), Vec::new()],
            paused_until: None,
            dropped: 0,
            unchecked: SPACE_CHECK_EVERY,
        })
    }

    /// Records `bytes` written by the container: each complete line becomes an entry; a partial
    /// line waits for its end (or until it is 16 KiB long, or [`LogWriter::flush_partial`]).
    /// Returns a change of the full-disk pause for the caller to report.
    pub(crate) fn write(
        &mut self,
        stream: LogStream,
        bytes: &[u8],
    ) -> Result<Option<LogPause>, ContainerError> {
        let slot = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[slot]);
        buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            append_entry(&mut out, stream, &buf[start..end]);
            start = end;
        }
        let rest = buf.split_off(start);
        if rest.len() >= MAX_PARTIAL {
            append_entry(&mut out, stream, &rest);
        } else {
            self.pending[slot] = rest;
        }
        self.append(&out)
    }

    /// Writes out partial lines (the stream ended, or output paused without a newline).
    pub(crate) fn flush_partial(&mut self) -> Result<Option<LogPause>, ContainerError> {
        let mut out = Vec::new();
        for (slot, stream) in [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let rest = std::mem::take(&mut self.pending[slot]);
            if !rest.is_empty() {
                append_entry(&mut out, stream, &rest);
            }
        }
        self.append(&out)
    }

    fn append(&mut self, out: &[u8]) -> Result<Option<LogPause>, ContainerError> {
        if out.is_empty() || self.file.is_none() {
            return Ok(None);
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                self.dropped += out.len() as u64;
                return Ok(None);
            }
        }
        if self.unchecked >= SPACE_CHECK_EVERY {
            self.unchecked = 0;
            if self.free_space().is_some_and(|free| free < MIN_FREE_BYTES) {
                let started = self.paused_until.is_none();
                self.paused_until = Some(Instant::now() + FULL_DISK_PAUSE);
                self.unchecked = SPACE_CHECK_EVERY;
                self.dropped += out.len() as u64;
                return Ok(started.then_some(LogPause::Started));
            }
        }
        self.unchecked += out.len() as u64;
        match self.write_rotating(out) {
            Ok(()) => Ok(self.paused_until.take().map(|_| LogPause::Ended {
                dropped: std::mem::take(&mut self.dropped),
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                // Whatever part of `out` landed stays; the next entry starts on a new line.
                let started = self.paused_until.is_none();
                self.paused_until = Some(Instant::now() + FULL_DISK_PAUSE);
                self.unchecked = SPACE_CHECK_EVERY;
                self.dropped += out.len() as u64;
                let _ = self.file.as_mut().map(|f| f.write_all(b"\n"));
                Ok(started.then_some(LogPause::Started))
            }
            Err(e) => Err(ContainerError::io("writing log", &self.path)(e)),
        }
    }

    /// Bytes an unprivileged writer may still use on the log's filesystem.
    fn free_space(&self) -> Option<u64> {
        let fs = rustix::fs::fstatvfs(self.file.as_ref()?).ok()?;
        Some(fs.f_bavail.saturating_mul(fs.f_frsize))
    }

    /// Writes whole entries (lines of `out`), rotating before one that would pass `max_size`.
    fn write_rotating(&mut self, mut out: &[u8]) -> std::io::Result<()> {
        let max = self.config.max_size;
        while !out.is_empty() {
            let room = if max == 0 {
                out.len()
            } else {
                max.saturating_sub(self.size) as usize
            };
            // The longest run of whole entries that fits; an entry larger than a whole file
            // gets a file of its own.
            let fits = match out[..room.min(out.len())].iter().rposition(|&b| b == b'\n') {
                _ if room >= out.len() => out.len(),
                Some(end) => end + 1,
                None if self.size == 0 => out
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(out.len(), |end| end + 1),
                None => 0,
            };
            if fits == 0 {
                self.rotate()?;
                continue;
            }
            if let Some(file) = self.file.as_mut() {
                file.write_all(&out[..fits])?;
            }
            self.size += fits as u64;
            out = &out[fits..];
        }
        Ok(())
    }

    /// `container.log` → `.1` → `.2` …; the oldest beyond `max_file` goes; a new current file.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.config.max_file.max(1);
        if keep == 1 {
            // Nothing is kept but the current file: start it again.
            if let Some(file) = &self.file {
                file.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        match std::fs::remove_file(log_file(&self.path, keep - 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..keep - 1).rev() {
            match std::fs::rename(log_file(&self.path, n), log_file(&self.path, n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, log_file(&self.path, 1))?;
        self.file = Some(
            File::options()
                .create(true)
                .append(true)
                .mode(LOG_MODE)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn append_entry(out: &mut Vec<u8>, stream: LogStream, bytes: &[u8]) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(bytes).into_owned(),
        stream,
        time: now_rfc3339(),
    };
    // A struct of strings always serialises.
    if let Ok(line) = serde_json::to_string(&entry) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// How to read a log back.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Keep reading as the container writes, until `still_writing` says it stopped.
    pub follow: bool,
}

/// Where `read_log`'s output goes; an error of kind `BrokenPipe` ends the read quietly.
/// Writes may be buffered: `flush` is called whenever the reader has caught up with the
/// log (before `-f` waits for more) and at the end.
pub trait LogSink {
    fn write(&mut self, stream: LogStream, bytes: &[u8]) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Whether the reader still wants more.
enum Flow {
    More,
    Stop,
}

/// Reads the log at `path` (with its rotated files, oldest first) and hands each entry (with
/// its text prefixed by a timestamp when asked) to `sink`, streaming: memory does not grow with
/// the log. With `follow`, waits for more while `still_writing()` is true, across rotations.
/// Returns early, without error, when `sink` reports a broken pipe (`logs -f | head -1`).
pub fn read_log(
    path: &Path,
    opts: LogOptions,
    still_writing: &mut dyn FnMut() -> bool,
    sink: &mut dyn LogSink,
) -> Result<(), ContainerError> {
    let mut out = Emitter { path, opts, sink };
    let result = read_into(path, opts, still_writing, &mut out);
    match out.flush() {
        Ok(Flow::More | Flow::Stop) => result,
        Err(e) => result.and(Err(e)),
    }
}

fn read_into(
    path: &Path,
    opts: LogOptions,
    still_writing: &mut dyn FnMut() -> bool,
    out: &mut Emitter<'_, '_>,
) -> Result<(), ContainerError> {
    let files = existing_files(path);
    if files.is_empty() && !opts.follow {
        return Ok(());
    }
    // Everything before the current file, then the current file from `start`.
    let start = match opts.tail {
        Some(n) => match tail_start(&files, n).map_err(ContainerError::io("reading log", path))? {
            Some(at) => at,
            None => return Ok(()),
        },
        None => TailStart { file: 0, offset: 0 },
    };
    let current = files.len().saturating_sub(1);
    for (i, file) in files.iter().enumerate().skip(start.file) {
        let offset = if i == start.file { start.offset } else { 0 };
        if i == current && opts.follow {
            break;
        }
        let f = match File::open(file) {
            Ok(f) => f,
            // Rotated away meanwhile: what it held is in the next file's predecessor.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ContainerError::io("opening log", file)(e)),
        };
        let mut reader = BufReader::new(f);
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(ContainerError::io("reading log", file))?;
        if let Flow::Stop = out.complete_lines(&mut reader, false)? {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    let offset = if start.file == current {
        start.offset
    } else {
        0
    };
    follow(path, offset, still_writing, out)
}

/// Keeps reading the current file (from `offset`), reopening it when it is rotated, until
/// the writer is gone and everything it wrote was read.
fn follow(
    path: &Path,
    offset: u64,
    still_writing: &mut dyn FnMut() -> bool,
    out: &mut Emitter<'_, '_>,
) -> Result<(), ContainerError> {
    let mut reader = None;
    let mut offset = offset;
    loop {
        if reader.is_none() {
            match File::open(path) {
                Ok(f) => {
                    let mut r = BufReader::new(f);
                    r.seek(SeekFrom::Start(offset))
                        .map_err(ContainerError::io("reading log", path))?;
                    offset = 0;
                    reader = Some(r);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ContainerError::io("opening log", path)(e)),
            }
        }
        // Checked before reading: whatever it wrote before stopping is read below.
        let writing = still_writing();
        if let Some(r) = reader.as_mut() {
            if let Flow::Stop = out.complete_lines(r, !writing)? {
                return Ok(());
            }
            if rotated(r.get_ref(), path) {
                // The old file is complete: finish it, then every file rotated after it
                // (several rotations may have happened since the last look), then follow
                // the new current file from its start.
                if let Flow::Stop = out.complete_lines(r, true)? {
                    return Ok(());
                }
                let ours = r
                    .get_ref()
                    .metadata()
                    .map(|m| (m.dev(), m.ino()))
                    .map_err(ContainerError::io("reading log", path))?;
                let files = existing_files(path);
                let after = files
                    .iter()
                    .position(|f| std::fs::metadata(f).is_ok_and(|m| (m.dev(), m.ino()) == ours))
                    .map_or(0, |p| p + 1);
                for file in files.iter().skip(after).filter(|f| f.as_path() != path) {
                    let Ok(f) = File::open(file) else { continue };
                    if let Flow::Stop = out.complete_lines(&mut BufReader::new(f), true)? {
                        return Ok(());
                    }
                }
                reader = None;
                continue;
            }
        }
        if !writing {
            return Ok(());
        }
        if let Flow::Stop = out.flush()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `path` no longer names the file `open` reads (renamed to `.1`, or truncated).
fn rotated(open: &File, path: &Path) -> bool {
    let (Ok(now), Ok(ours)) = (std::fs::metadata(path), open.metadata()) else {
        return false;
    };
    (now.dev(), now.ino()) != (ours.dev(), ours.ino()) || now.len() < ours.len()
}

/// The log's files that exist, oldest first, the current one last.
fn existing_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    let mut n = 1;
    while log_file(path, n).exists() {
        rotated.push(log_file(path, n));
        n += 1;
    }
    rotated.reverse();
    if path.exists() {
        rotated.push(path.to_path_buf());
    }
    rotated
}

/// Where the last `n` lines begin: an index into the files and a byte offset in it.
struct TailStart {
    file: usize,
    offset: u64,
}

/// Reads backwards from the end of the newest file (into older ones when needed) to where the
/// last `n` complete lines begin: just after the (n+1)-th newline from the end. `None` when
/// `n` is 0. A half-written last line has no newline, so it is neither counted nor shown.
fn tail_start(files: &[PathBuf], n: usize) -> std::io::Result<Option<TailStart>> {
    const CHUNK: usize = 64 * 1024;
    if n == 0 {
        return Ok(None);
    }
    let mut lines_needed = n;
    let mut buf = vec![0; CHUNK];
    for (i, path) in files.iter().enumerate().rev() {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut end = f.metadata()?.len();
        let mut newlines = 0;
        while end > 0 {
            let start = end.saturating_sub(CHUNK as u64);
            let len = (end - start) as usize;
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut buf[..len])?;
            for (j, _) in buf[..len]
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, &b)| b == b'\n')
            {
                newlines += 1;
                if newlines == lines_needed + 1 {
                    return Ok(Some(TailStart {
                        file: i,
                        offset: start + j as u64 + 1,
                    }));
                }
            }
            end = start;
        }
        // Every complete line of this file is in the tail.
        if newlines >= lines_needed {
            return Ok(Some(TailStart { file: i, offset: 0 }));
        }
        lines_needed -= newlines;
    }
    Ok(Some(TailStart { file: 0, offset: 0 }))
}

/// Hands entries to the sink.
struct Emitter<'p, 's> {
    path: &'p Path,
    opts: LogOptions,
    sink: &'s mut dyn LogSink,
}

impl Emitter<'_, '_> {
    /// Emits every complete line `reader` has; a half-written last line is left for later
    /// (or, with `take_partial`, emitted: its writer is gone).
    fn complete_lines(
        &mut self,
        reader: &mut BufReader<File>,
        take_partial: bool,
    ) -> Result<Flow, ContainerError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(ContainerError::io("reading log", self.path))?;
            if n == 0 {
                return Ok(Flow::More);
            }
            if !line.ends_with(b"\n") && !take_partial {
                reader
                    .seek(SeekFrom::Current(-(n as i64)))
                    .map_err(ContainerError::io("reading log", self.path))?;
                return Ok(Flow::More);
            }
            if let Ok(entry) = serde_json::from_slice::<LogEntry>(&line) {
                if let Flow::Stop = self.emit(&entry)? {
                    return Ok(Flow::Stop);
                }
            }
        }
    }

    fn emit(&mut self, entry: &LogEntry) -> Result<Flow, ContainerError> {
        let result = if self.opts.timestamps {
            self.sink.write(
                entry.stream,
                format!("{} {}", entry.time, entry.log).as_bytes(),
            )
        } else {
            self.sink.write(entry.stream, entry.log.as_bytes())
        };
        self.flow(result)
    }

    fn flush(&mut self) -> Result<Flow, ContainerError> {
        let result = self.sink.flush();
        self.flow(result)
    }

    fn flow(&self, result: std::io::Result<()>) -> Result<Flow, ContainerError> {
        match result {
            Ok(()) => Ok(Flow::More),
            // The reader went away (`logs | head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
            Err(e) => Err(ContainerError::io("writing log output", self.path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that hands every write to a closure.
    struct FnSink<F>(F);

    impl<F: FnMut(LogStream, &[u8]) -> std::io::Result<()>> LogSink for FnSink<F> {
        fn write(&mut self, stream: LogStream, bytes: &[u8]) -> std::io::Result<()> {
            (self.0)(stream, bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn collect(path: &Path, opts: LogOptions) -> Vec<(LogStream, String)> {
        let mut out = Vec::new();
        read_log(
            path,
            opts,
            &mut || false,
            &mut FnSink(|s, b: &[u8]| {
                out.push((s, String::from_utf8_lossy(b).into_owned()));
                Ok(())
            }),
        )
        .unwrap();
        out
    }

    fn texts(path: &Path, opts: LogOptions) -> Vec<String> {
        collect(path, opts).into_iter().map(|(_, t)| t).collect()
    }

    fn tail(n: usize) -> LogOptions {
        LogOptions {
            tail: Some(n),
            ..Default::default()
        }
    }

    const UNLIMITED: LogConfig = LogConfig {
        enabled: true,
        max_size: 0,
        max_file: 1,
    };

    #[test]
    fn lines_become_entries_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, UNLIMITED).unwrap();
        w.write(LogStream::Stdout, b"one\ntw").unwrap();
        w.write(LogStream::Stderr, b"err\n").unwrap();
        w.write(LogStream::Stdout, b"o\nthree").unwrap();
        w.flush_partial().unwrap();
        let all = collect(&path, LogOptions::default());
        let expected = [
            (LogStream::Stdout, "one\n"),
            (LogStream::Stderr, "err\n"),
            (LogStream::Stdout, "two\n"),
            (LogStream::Stdout, "three"),
        ];
        let got: Vec<(LogStream, &str)> = all.iter().map(|(s, l)| (*s, l.as_str())).collect();
        assert_eq!(got, expected);

        assert_eq!(texts(&path, tail(2)), ["two\n", "three"]);
        assert_eq!(texts(&path, tail(4)).len(), 4);
        assert_eq!(texts(&path, tail(40)).len(), 4);
        assert!(texts(&path, tail(0)).is_empty());

        let stamped = collect(
            &path,
            LogOptions {
                timestamps: true,
                ..Default::default()
            },
        );
        assert!(stamped[0].1.ends_with("Z one\n"), "{:?}", stamped[0].1);
        assert!(stamped[0].1.starts_with("20"), "{:?}", stamped[0].1);
    }

    #[test]
    fn tail_reads_from_the_end_across_chunks_and_ignores_a_half_written_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, UNLIMITED).unwrap();
        // Entries of ~1 KiB: the tail crosses several 64 KiB chunks.
        for i in 0..500 {
            w.write(
                LogStream::Stdout,
                format!("{i:04} {}\n", "x".repeat(1000)).as_bytes(),
            )
            .unwrap();
        }
        let got = texts(&path, tail(150));
        assert_eq!(got.len(), 150);
        assert!(got[0].starts_with("0350 "), "{}", &got[0][..8]);
        assert!(got[149].starts_with("0499 "));
        // A writer caught mid-line: its line is not counted or shown.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"log\":\"half")
            .unwrap();
        assert!(texts(&path, tail(1))[0].starts_with("0499 "));
    }

    #[test]
    fn rotation_keeps_max_file_files_and_readers_see_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let config = LogConfig {
            enabled: true,
            max_size: 1000,
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, config).unwrap();
        for i in 0..100 {
            w.write(LogStream::Stdout, format!("line {i:03}\n").as_bytes())
                .unwrap();
        }
        assert!(log_file(&path, 1).exists() && log_file(&path, 2).exists());
        assert!(!log_file(&path, 3).exists(), "at most max-file files");
        for n in 0..3 {
            assert!(std::fs::metadata(log_file(&path, n)).unwrap().len() <= 1000);
        }
        let all = texts(&path, LogOptions::default());
        assert!(all.len() < 100 && all.len() > 20, "{}", all.len());
        assert_eq!(all.last().unwrap(), "line 099\n");
        let numbers: Vec<u32> = all.iter().map(|l| l[5..8].parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "in order");
        // The tail reaches back into rotated files.
        let tail_all = texts(&path, tail(all.len()));
        assert_eq!(tail_all, all);
        // max-file 1 truncates in place.
        let one = dir.path().join("one.log");
        let mut w = LogWriter::open(
            &one,
            LogConfig {
                max_file: 1,
                ..config
            },
        )
        .unwrap();
        for i in 0..100 {
            w.write(LogStream::Stdout, format!("line {i:03}\n").as_bytes())
                .unwrap();
        }
        assert!(!log_file(&one, 1).exists());
        assert_eq!(
            texts(&one, LogOptions::default()).last().unwrap(),
            "line 099\n"
        );
    }

    #[test]
    fn follow_reads_what_arrives_across_a_rotation_until_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let config = LogConfig {
            enabled: true,
            max_size: 200,
            max_file: 2,
        };
        let mut w = LogWriter::open(&path, config).unwrap();
        w.write(LogStream::Stdout, b"first\n").unwrap();
        let mut rounds = 0;
        let mut got = Vec::new();
        read_log(
            &path,
            LogOptions {
                follow: true,
                ..Default::default()
            },
            &mut || {
                rounds += 1;
                if rounds == 2 {
                    // Enough to rotate once while the reader holds the old file.
                    for i in 0..4 {
                        w.write(LogStream::Stdout, format!("more {i}\n").as_bytes())
                            .unwrap();
                    }
                }
                rounds < 5
            },
            &mut FnSink(|_, b: &[u8]| {
                got.push(String::from_utf8_lossy(b).into_owned());
                Ok(())
            }),
        )
        .unwrap();
        assert_eq!(
            got,
            ["first\n", "more 0\n", "more 1\n", "more 2\n", "more 3\n"]
        );
    }

    #[test]
    fn a_broken_pipe_ends_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, UNLIMITED).unwrap();
        w.write(LogStream::Stdout, b"one\ntwo\n").unwrap();
        let mut calls = 0;
        read_log(
            &path,
            LogOptions {
                follow: true,
                ..Default::default()
            },
            // The writer never stops: only the broken pipe can end this.
            &mut || true,
            &mut FnSink(|_, _: &[u8]| {
                calls += 1;
                Err(std::io::ErrorKind::BrokenPipe.into())
            }),
        )
        .unwrap();
        assert_eq!(calls, 1);
    }

    #[test]
    fn long_lines_without_newline_are_cut_at_16_kib() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, UNLIMITED).unwrap();
        w.write(LogStream::Stdout, &vec![b'x'; 20_000]).unwrap();
        let all = collect(&path, LogOptions::default());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.len(), 20_000);
    }

    #[test]
    fn log_driver_none_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(
            &path,
            LogConfig {
                enabled: false,
                ..LogConfig::DEFAULT
            },
        )
        .unwrap();
        w.write(LogStream::Stdout, b"one\n").unwrap();
        assert!(!path.exists());
        assert!(collect(&path, LogOptions::default()).is_empty());
    }
}
