//! `strata tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`

use strata_exit::ExitStatus;

use strata_image::resolve_image;
use strata_oci::Reference;

use crate::cli::{GlobalOptions, TagArgs};
use crate::failure::Failure;

pub(crate) fn run(g: &GlobalOptions, a: TagArgs) -> Result<ExitStatus, Failure> {
    let target = Reference::parse(&a.target)?;
    if target.digest().is_some() {
        return Err(Failure::new(format!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        )));
    }
    let store = super::open_store(g)?;
    let image = resolve_image(&store, &a.source)?;
    store.tag(&target.to_string(), &image.record.id)?;
    Ok(ExitStatus::Success)
}
