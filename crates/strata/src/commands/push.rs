//! `strata push [-a] [-q] [--compression gzip|zstd] [--format docker|oci] NAME[:TAG]`:
//! Docker's output (`The push refers to repository [...]`, per-layer lines, `TAG: digest:
//! sha256:… size: N`).

use strata_exit::ExitStatus;

use strata_image::{push_all_tags, push_image, ManifestFormat, PushOptions};
use strata_oci::{LayerCompression, Reference};

use super::transfer_view::{Stream, TransferView};
use crate::cli::{self, GlobalOptions, PushArgs};
use crate::failure::Failure;
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: PushArgs) -> Result<ExitStatus, Failure> {
    let named = Reference::parse_named(&a.name)?;
    let bare = named.tag().is_none() && named.digest().is_none();
    if named.digest().is_some() {
        return Err(Failure::new("cannot push a digest reference: push a tag"));
    }
    if a.all_tags && !bare {
        return Err(Failure::new("tag can't be used with --all-tags/-a"));
    }
    let opts = PushOptions {
        compression: match a.compression {
            cli::PushCompression::Gzip => LayerCompression::Gzip,
            cli::PushCompression::Zstd => LayerCompression::Zstd,
        },
        level: a.compression_level,
        format: a.format.map(|f| match f {
            cli::ManifestFormat::Docker => ManifestFormat::Docker,
            cli::ManifestFormat::Oci => ManifestFormat::Oci,
        }),
    };
    let view = TransferView::new(Stream::Stdout, a.quiet);
    let store = super::open_store(g)?;
    let client = super::registry_client()?;
    if a.all_tags {
        push_all_tags(&store, &client, &named, &opts, &view)?;
    } else {
        if bare {
            view.line("Using default tag: latest");
        }
        let reference = Reference::parse(&a.name)?;
        push_image(&store, &client, &reference, &opts, &view)?;
        if a.quiet {
            out(&format!("{}\n", reference.familiar()));
        }
    }
    Ok(ExitStatus::Success)
}
