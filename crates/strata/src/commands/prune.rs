//! `strata image prune` and `strata system prune`.

use std::process::ExitCode;

use strata_image::prune_images;

use crate::cli::{GlobalOptions, PruneArgs};
use crate::failure::Failure;
use crate::render::{human, out};

pub(crate) fn images(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    let report = prune_images(&store, a.all)?;
    let mut text = String::new();
    if !report.events.is_empty() {
        text.push_str("Deleted Images:\n");
        text.push_str(&super::rmi::render_events(&report.events, true));
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human::size(report.reclaimed)
    ));
    out(&text);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn system(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    images(g, a)
}
