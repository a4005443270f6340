//! `strata save [-o FILE] [--format docker|oci] IMAGE...`

use strata_exit::ExitStatus;

use strata_image::{resolve_image, save_archive, ArchiveFormat, SaveItem};
use strata_oci::Reference;

use crate::cli::{self, GlobalOptions, SaveArgs};
use crate::failure::Failure;

pub(crate) fn run(g: &GlobalOptions, a: SaveArgs) -> Result<ExitStatus, Failure> {
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
    let write = |w: &mut dyn std::io::Write| -> Result<(), Failure> {
        save_archive(&store, &items, format, w)?;
        Ok(())
    };
    match &a.output {
        Some(path) => super::output_file::write_file(path, write)?,
        None => super::output_file::write_stdout(write)?,
    }
    Ok(ExitStatus::Success)
}

/// `busybox` or `localhost:5000/a` (no tag, no digest) names a whole repository.
fn names_whole_repository(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !last.contains(':') && !name.contains('@')
}
