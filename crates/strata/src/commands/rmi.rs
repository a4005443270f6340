//! `strata rmi [-f] IMAGE...`: like Docker, goes on after a failure and exits 1 at the end.

use strata_exit::ExitStatus;

use strata_image::{remove_image, RemoveEvent};

use crate::cli::{GlobalOptions, RmiArgs};
use crate::failure::Failure;
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: RmiArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let mut failed = false;
    for name in &a.images {
        match remove_image(&store, name, a.force, a.no_prune) {
            Ok(events) => out(&render_events(&events, false)),
            Err(e) => {
                Failure::from(e).print();
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `Untagged: x` / `Deleted: sha256:…` lines; prune lists them in lower case, as Docker does.
pub(crate) fn render_events(events: &[RemoveEvent], lower_case: bool) -> String {
    let (untagged, deleted) = if lower_case {
        ("untagged", "deleted")
    } else {
        ("Untagged", "Deleted")
    };
    events
        .iter()
        .map(|e| match e {
            RemoveEvent::Untagged(name) => format!("{untagged}: {name}\n"),
            RemoveEvent::Deleted(id) => format!("{deleted}: {id}\n"),
        })
        .collect()
}
