//! `strata save [-o FILE] [--format docker|oci] IMAGE...`

use std::io::Write;
use std::process::ExitCode;

use strata_image::{resolve_image, save_archive, ArchiveFormat, SaveItem};
use strata_oci::Reference;

use crate::cli::{self, GlobalOptions, SaveArgs};
use crate::failure::{Context, Failure};

pub(crate) fn run(g: &GlobalOptions, a: SaveArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for name in &a.images {
        let image = resolve_image(&store, name)?;
        let mut tags: Vec<Reference> = Vec::new();
        if let Some(reference) = &image.reference {
            if names_whole_repository(name) {
                // `save busybox` saves every tag of the repository, as Docker does.
                for tag in store.tags()? {
                    if let Ok(r) = Reference::parse(&tag.0) {
                        if r.name() == reference.name() && !tags.contains(&r) {
                            tags.push(r);
                        }
                    }
                }
            }
            if reference.digest().is_none() && !tags.contains(reference) {
                tags.push(reference.clone());
            }
        }
        match items.iter_mut().find(|i| i.image.id == image.record.id) {
            Some(existing) => existing.tags.extend(tags),
            None => items.push(SaveItem {
                image: image.record,
                tags,
            }),
        }
    }
    let format = match a.format {
        cli::ArchiveFormat::Docker => ArchiveFormat::Docker,
        cli::ArchiveFormat::Oci => ArchiveFormat::Oci,
    };
    match &a.output {
        Some(path) => {
            // Write beside the target and rename, so a failed save leaves no half archive.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .context(format!("creating a file in {}", dir.display()))?;
            save_archive(
                &store,
                &items,
                format,
                std::io::BufWriter::new(tmp.as_file_mut()),
            )?;
            tmp.as_file()
                .sync_all()
                .context(format!("writing {}", path.display()))?;
            tmp.persist(path)
                .context(format!("writing {}", path.display()))?;
        }
        None => {
            // SAFETY: isatty only inspects the file descriptor.
            if unsafe { libc::isatty(1) } == 1 {
                return Err(Failure::new("cowardly refusing to save to a terminal")
                    .with_hint("use the -o flag or redirect standard output"));
            }
            let stdout = std::io::stdout().lock();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout);
            save_archive(&store, &items, format, &mut w)?;
            w.flush().context("writing the archive")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `busybox` or `localhost:5000/a` (no tag, no digest) names a whole repository.
fn names_whole_repository(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !last.contains(':') && !name.contains('@')
}
