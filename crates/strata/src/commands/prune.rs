//! `strata image prune` and `strata system prune`.

use strata_exit::ExitStatus;

use strata_build::{prune_build_cache, CachePrune, CachePruneReport};
use strata_image::{prune_images, PruneReport};

use crate::cli::{BuilderPruneArgs, GlobalOptions, PruneArgs};
use crate::failure::Failure;
use crate::render::{human, out};

pub(crate) fn images(g: &GlobalOptions, a: PruneArgs) -> Result<ExitStatus, Failure> {
    let warning = if a.all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !a.force && !super::confirm(warning)? {
        return Ok(ExitStatus::Success);
    }
    let store = super::open_store(g)?;
    let report = prune_images(&store, a.all)?;
    let mut text = render_image_prune(&report);
    text.push_str(&total(report.reclaimed));
    out(&text);
    Ok(ExitStatus::Success)
}

/// Docker's `system prune`: stopped containers, unused images (dangling, or all with `-a`),
/// the build cache (all of it with `-a`), and whatever no record reaches; one total.
pub(crate) fn system(g: &GlobalOptions, a: PruneArgs) -> Result<ExitStatus, Failure> {
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
        return Ok(ExitStatus::Success);
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
    let cache = prune_build_cache(&store, &CachePrune::everything(a.all))?;
    text.push_str(&render_cache_objects(&cache));
    let freed = containers.iter().map(|(_, b)| b).sum::<u64>() + report.reclaimed + cache.reclaimed;
    text.push_str(&total(freed));
    out(&text);
    Ok(ExitStatus::Success)
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

/// `strata builder prune [-a] [-f] [--keep-storage SIZE] [--filter until=DURATION]`.
pub(crate) fn build_cache(g: &GlobalOptions, a: BuilderPruneArgs) -> Result<ExitStatus, Failure> {
    let mut prune = CachePrune::everything(a.all);
    if let Some(size) = &a.keep_storage {
        prune.keep_storage = Some(parse_cache_size("--keep-storage", size)?);
    }
    for filter in &a.filters {
        match filter.split_once('=') {
            Some(("until", value)) => {
                let age = strata_dockerfile::parse_go_duration(value).map_err(|e| {
                    Failure::new(format!("invalid filter {filter:?}: {e}"))
                        .with_hint("until takes a duration such as 24h, 90m or 1h30m")
                })?;
                prune.unused_for = Some(age);
            }
            _ => {
                return Err(Failure::new(format!(
                    "invalid filter {filter:?}: builder prune filters by until=DURATION only"
                )))
            }
        }
    }
    let warning = if a.all {
        "This will remove all build cache."
    } else {
        "This will remove all dangling build cache."
    };
    if !a.force && !super::confirm(warning)? {
        return Ok(ExitStatus::Success);
    }
    let store = super::open_store(g)?;
    out(&render_cache_prune(&prune_build_cache(&store, &prune)?));
    Ok(ExitStatus::Success)
}

/// The store setting holding the build cache budget (`system config build-cache-max 10GB`).
pub(crate) const BUILD_CACHE_MAX_SETTING: &str = "build-cache-max";
/// The environment variable that overrides it for one command.
const BUILD_CACHE_MAX_ENV: &str = "STRATA_BUILD_CACHE_MAX";

/// After a build: the build cache budget (`STRATA_BUILD_CACHE_MAX`, else the store's
/// `build-cache-max`), if one is set and exceeded, enforced as `builder prune --keep-storage`
/// would, keeping `built` (the image the build just made). Returns what went, if anything.
pub(crate) fn enforce_cache_budget(
    store: &strata_store::Store,
    built: Option<&strata_oci::Digest>,
) -> Result<Option<CachePruneReport>, Failure> {
    let budget = match std::env::var(BUILD_CACHE_MAX_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_cache_size(BUILD_CACHE_MAX_ENV, &v)?,
        _ => match store.setting(BUILD_CACHE_MAX_SETTING)? {
            Some(v) => parse_cache_size(BUILD_CACHE_MAX_SETTING, &v)?,
            None => return Ok(None),
        },
    };
    if store.build_cache_usage()?.size <= budget {
        return Ok(None);
    }
    let prune = CachePrune {
        keep_storage: Some(budget),
        keep_image: built.cloned(),
        ..CachePrune::default()
    };
    Ok(Some(prune_build_cache(store, &prune)?))
}

/// A build cache size (`--keep-storage`, `build-cache-max`): Docker's RAMInBytes units.
pub(crate) fn parse_cache_size(what: &str, text: &str) -> Result<u64, Failure> {
    strata_container::parse_ram_size(text).ok_or_else(|| {
        Failure::new(format!(
            "invalid {what} value {text:?}: give a number with an optional unit b, k, m, g or t (e.g. 10GB)"
        ))
    })
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
