//! `strata image prune` and `strata system prune`.

use std::process::ExitCode;

use strata_build::{prune_build_cache, CachePruneReport};
use strata_image::{prune_images, PruneReport};

use crate::cli::{GlobalOptions, PruneArgs};
use crate::failure::Failure;
use crate::render::{human, out};

pub(crate) fn images(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let warning = if a.all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !a.force && !super::confirm(warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::open_store(g)?;
    let report = prune_images(&store, a.all)?;
    let mut text = render_image_prune(&report);
    text.push_str(&total(report.reclaimed));
    out(&text);
    Ok(ExitCode::SUCCESS)
}

/// Docker's `system prune`: stopped containers, unused images (dangling, or all with `-a`),
/// the build cache (all of it with `-a`), and whatever no record reaches; one total.
pub(crate) fn system(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let images = if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let warning = format!(
        "This will remove:\n  - all stopped containers\n  - {images}\n  - {} build cache",
        if a.all { "all" } else { "all dangling" }
    );
    if !a.force && !super::confirm(&warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = super::open_store(g)?;
    let containers = strata_container::prune(&store)?;
    let mut text = String::new();
    if !containers.is_empty() {
        text.push_str("Deleted Containers:\n");
        for (id, _) in &containers {
            text.push_str(&format!("{id}\n"));
        }
        text.push('\n');
    }
    let report = prune_images(&store, a.all)?;
    text.push_str(&render_image_prune(&report));
    let cache = prune_build_cache(&store, a.all)?;
    text.push_str(&render_cache_objects(&cache));
    let freed = containers.iter().map(|(_, b)| b).sum::<u64>() + report.reclaimed + cache.reclaimed;
    text.push_str(&total(freed));
    out(&text);
    Ok(ExitCode::SUCCESS)
}

fn render_image_prune(report: &PruneReport) -> String {
    let mut text = String::new();
    if !report.events.is_empty() {
        text.push_str("Deleted Images:\n");
        text.push_str(&super::rmi::render_events(&report.events, true));
        text.push('\n');
    }
    text
}

fn total(bytes: u64) -> String {
    format!("Total reclaimed space: {}\n", human::size(bytes))
}

/// `strata builder prune [-a] [-f]`.
pub(crate) fn build_cache(g: &GlobalOptions, a: PruneArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    out(&render_cache_prune(&prune_build_cache(&store, a.all)?));
    Ok(ExitCode::SUCCESS)
}

fn render_cache_prune(report: &CachePruneReport) -> String {
    render_cache_objects(report) + &total(report.reclaimed)
}

fn render_cache_objects(report: &CachePruneReport) -> String {
    let mut text = String::new();
    if !report.images.is_empty() || report.entries > 0 {
        text.push_str("Deleted build cache objects:\n");
        for id in &report.images {
            text.push_str(&format!("{}\n", id.short()));
        }
        text.push_str(&format!("({} cache entries)\n\n", report.entries));
    }
    text
}
