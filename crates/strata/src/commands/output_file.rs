//! Archives commands write (`save`, `export`, `build -o`): to a file through a temp file beside
//! it (synced, then renamed, so a failure never leaves a half archive under the name), or to
//! standard output, which must not be a terminal.

use std::io::Write;
use std::path::Path;

use crate::failure::{Context, Failure};

/// Writes `path` through `write`, atomically.
pub(crate) fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .context(format!("creating a file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut w)?;
        w.flush().context(format!("writing {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .context(format!("writing {}", path.display()))?;
    tmp.persist(path)
        .context(format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes standard output through `write`; refuses a terminal as Docker does.
pub(crate) fn write_stdout(
    write: impl FnOnce(&mut dyn Write) -> Result<(), Failure>,
) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        return Err(Failure::new("cowardly refusing to save to a terminal")
            .with_hint("use the -o flag or redirect standard output"));
    }
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    write(&mut w)?;
    w.flush().context("writing to standard output")
}
