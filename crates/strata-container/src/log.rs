//! Container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"…","stream":"stdout","time":"2026-…Z"}`, appended by the monitor as output arrives
//! and read back by `logs` (`--tail`, `--timestamps`, `-f`).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Appends entries to a container's log file.
pub(crate) struct LogWriter {
    file: File,
    path: PathBuf,
    /// Bytes of an incomplete UTF-8 sequence or line carried to the next write, per stream.
    pending: [Vec<u8>; 2],
}

/// Longest partial line kept back waiting for its newline (Docker's 16 KiB buffer).
const MAX_PARTIAL: usize = 16 * 1024;

impl LogWriter {
    pub(crate) fn open(path: &Path) -> Result<Self, ContainerError> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(ContainerError::io("opening log", path))?;
        Ok(Self {
            file,
            path: path.to_owned(),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records `bytes` written by the container: each complete line becomes an entry; a partial
    /// line waits for its end (or until it is 16 KiB long, or [`LogWriter::flush_partial`]).
    pub(crate) fn write(&mut self, stream: LogStream, bytes: &[u8]) -> Result<(), ContainerError> {
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
    pub(crate) fn flush_partial(&mut self) -> Result<(), ContainerError> {
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

    fn append(&mut self, out: &[u8]) -> Result<(), ContainerError> {
        if out.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(out)
            .map_err(ContainerError::io("writing log", &self.path))
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

/// Reads `path` and hands each entry (with its text already prefixed by a timestamp when asked)
/// to `sink`. With `follow`, waits for more while `still_writing()` is true.
pub fn read_log(
    path: &Path,
    opts: LogOptions,
    still_writing: &mut dyn FnMut() -> bool,
    sink: &mut dyn FnMut(LogStream, &[u8]) -> std::io::Result<()>,
) -> Result<(), ContainerError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) => return Err(ContainerError::io("opening log", path)(e)),
    };
    let mut reader = BufReader::new(file);
    let emit = |entry: &LogEntry,
                sink: &mut dyn FnMut(LogStream, &[u8]) -> std::io::Result<()>|
     -> Result<(), ContainerError> {
        let result = if opts.timestamps {
            sink(
                entry.stream,
                format!("{} {}", entry.time, entry.log).as_bytes(),
            )
        } else {
            sink(entry.stream, entry.log.as_bytes())
        };
        match result {
            // The reader went away (`logs | head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(ContainerError::io("writing log output", path)),
        }
    };

    // Existing entries, keeping only the last `tail`.
    let mut entries = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(ContainerError::io("reading log", path))?;
        if n == 0 || !line.ends_with('\n') {
            // A half-written last line is read again once complete.
            if n > 0 {
                reader
                    .seek(SeekFrom::Current(-(n as i64)))
                    .map_err(ContainerError::io("reading log", path))?;
            }
            break;
        }
        if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
            entries.push(entry);
            if let Some(tail) = opts.tail {
                if entries.len() > tail.saturating_mul(2).max(1024) {
                    let cut = entries.len() - tail;
                    entries.drain(..cut);
                }
            }
        }
    }
    let skip = opts.tail.map_or(0, |t| entries.len().saturating_sub(t));
    for entry in &entries[skip..] {
        emit(entry, sink)?;
    }
    if !opts.follow {
        return Ok(());
    }
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(ContainerError::io("reading log", path))?;
        if n > 0 && line.ends_with('\n') {
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
                emit(&entry, sink)?;
            }
            continue;
        }
        if n > 0 {
            reader
                .seek(SeekFrom::Current(-(n as i64)))
                .map_err(ContainerError::io("reading log", path))?;
        }
        // Checked before sleeping and read once more after: nothing written last is lost.
        if !still_writing() {
            let mut rest = String::new();
            reader
                .read_to_string_lossy(&mut rest)
                .map_err(ContainerError::io("reading log", path))?;
            for l in rest.lines() {
                if let Ok(entry) = serde_json::from_str::<LogEntry>(l) {
                    emit(&entry, sink)?;
                }
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

trait ReadToStringLossy {
    fn read_to_string_lossy(&mut self, out: &mut String) -> std::io::Result<()>;
}

impl<R: std::io::Read> ReadToStringLossy for R {
    fn read_to_string_lossy(&mut self, out: &mut String) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)?;
        out.push_str(&String::from_utf8_lossy(&bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path, opts: LogOptions) -> Vec<(LogStream, String)> {
        let mut out = Vec::new();
        read_log(path, opts, &mut || false, &mut |s, b| {
            out.push((s, String::from_utf8_lossy(b).into_owned()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_become_entries_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path).unwrap();
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

        let tail = collect(
            &path,
            LogOptions {
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[0].1, "two\n");

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
    fn follow_reads_what_arrives_until_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path).unwrap();
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
                    w.write(LogStream::Stdout, b"second\n").unwrap();
                }
                rounds < 4
            },
            &mut |_, b| {
                got.push(String::from_utf8_lossy(b).into_owned());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, ["first\n", "second\n"]);
    }

    #[test]
    fn long_lines_without_newline_are_cut_at_16_kib() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(LogStream::Stdout, &vec![b'x'; 20_000]).unwrap();
        let all = collect(&path, LogOptions::default());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.len(), 20_000);
    }
}
