//! `strata import FILE|- [REPOSITORY[:TAG]]`

use strata_exit::ExitStatus;

use strata_image::{import_rootfs, ImportOptions};
use strata_oci::Reference;

use crate::cli::{GlobalOptions, ImportArgs};
use crate::failure::{Context, Failure};
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: ImportArgs) -> Result<ExitStatus, Failure> {
    let tag = a.reference.as_deref().map(Reference::parse).transpose()?;
    if tag.as_ref().is_some_and(|t| t.digest().is_some()) {
        return Err(Failure::new(
            "import takes REPOSITORY[:TAG], not a digest reference",
        ));
    }
    let store = super::open_store(g)?;
    let opts = ImportOptions {
        changes: a.changes,
        message: a.message,
        source: a.file.clone(),
        tag,
        platform: a.platform,
    };
    let id = if a.file == "-" {
        import_rootfs(&store, std::io::stdin().lock(), &opts)?
    } else {
        let file = std::fs::File::open(&a.file).context(format!("opening {}", a.file))?;
        import_rootfs(&store, file, &opts).context(format!("importing {}", a.file))?
    };
    out(&format!("{id}\n"));
    Ok(ExitStatus::Success)
}
