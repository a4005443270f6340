//! `strata pull [-a] [--platform P] [-q] NAME[:TAG|@DIGEST]`: Docker's output (per-layer
//! lines, `Digest:`, `Status:`, then the full name), one error line on failure.

use strata_exit::ExitStatus;

use strata_image::{pull_all_tags, pull_image, PullOptions};
use strata_oci::{Platform, Reference};

use super::transfer_view::{Stream, TransferView};
use crate::cli::{GlobalOptions, PullArgs};
use crate::failure::Failure;
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: PullArgs) -> Result<ExitStatus, Failure> {
    let named = Reference::parse_named(&a.name)?;
    let bare = named.tag().is_none() && named.digest().is_none();
    if a.all_tags && !bare {
        return Err(Failure::new("tag can't be used with --all-tags/-a"));
    }
    let opts = PullOptions {
        platform: a.platform.as_deref().map(Platform::parse).transpose()?,
    };
    let view = TransferView::new(Stream::Stdout, a.quiet);
    let store = super::open_store(g)?;
    let client = super::registry_client()?;
    if a.all_tags {
        view.line(&format!("Pulling all tags of {}", named.familiar_name()));
        pull_all_tags(&store, &client, &named, &opts, &view)?;
        out(&format!("{named}\n"));
        return Ok(ExitStatus::Success);
    }
    if bare {
        view.line("Using default tag: latest");
    }
    let reference = Reference::parse(&a.name)?;
    pull_image(&store, &client, &reference, &opts, &view)?;
    out(&format!("{reference}\n"));
    Ok(ExitStatus::Success)
}
