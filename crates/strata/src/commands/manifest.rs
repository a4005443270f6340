//! `strata manifest inspect NAME`: the manifest or index exactly as the registry serves it.

use strata_exit::ExitStatus;

use strata_distribution::Access;
use strata_oci::Reference;

use crate::cli::ManifestInspectArgs;
use crate::failure::Failure;
use crate::render::out;

pub(crate) fn inspect(a: ManifestInspectArgs) -> Result<ExitStatus, Failure> {
    let reference = Reference::parse(&a.name)?;
    let client = super::registry_client()?;
    let repo = client.repository(reference.domain(), reference.path(), Access::Pull);
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let manifest = repo.manifest(&target)?;
    let mut text = String::from_utf8_lossy(&manifest.bytes).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    out(&text);
    Ok(ExitStatus::Success)
}
