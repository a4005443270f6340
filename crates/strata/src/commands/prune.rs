//! `strata image prune` and `strata system prune`.

use std::process::ExitCode;

use strata_build::{prune_build_cache, CachePruneReport};
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

/// Docker's `system prune`: unused images, then the build cache (all of it with `-a`).
pub(crate) fn system(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let all = a.all;
    images(g, a)?;
    let store = super::open_store(g)?;
    out(&render_cache_prune(&prune_build_cache(&store, all)?));
    Ok(ExitCode::SUCCESS)
}

/// `strata builder prune [-a] [-f]`.
pub(crate) fn build_cache(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    out(&render_cache_prune(&prune_build_cache(&store, a.all)?));
    Ok(ExitCode::SUCCESS)
}

fn render_cache_prune(report: &CachePruneReport) -> String {
    let mut text = String::new();
    if !report.images.is_empty() || report.entries > 0 {
        text.push_str("Deleted build cache objects:\n");
        for id in &report.images {
            text.push_str(&format!("{}\n", id.short()));
        }
        text.push_str(&format!("({} cache entries)\n\n", report.entries));
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human::size(report.reclaimed)
    ));
    text
}
