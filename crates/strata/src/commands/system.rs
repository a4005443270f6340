//! `strata system df`, `strata system check` and `strata system config`.

use std::process::ExitCode;

use crate::cli::{ConfigArgs, DfArgs, GlobalOptions};
use crate::failure::Failure;
use crate::render::{human, out, table::Table};

pub(crate) fn df(g: &GlobalOptions, a: DfArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    let usage = store.disk_usage()?;
    let size = |b: u64| human::size_with_precision(b, 4);
    let percent = |part: u64, whole: u64| {
        (part * 100)
            .checked_div(whole)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default()
    };
    let mut text = String::new();
    if a.verbose {
        text.push_str("Images space usage:\n\n");
        let mut t = Table::new(&[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]);
        for image in &usage.images {
            let summary = store.image(&image.id)?;
            let created = human::since(summary.as_ref().and_then(|s| s.created.as_deref()));
            let names: Vec<(String, String)> = if image.tags.is_empty() {
                vec![("<none>".into(), "<none>".into())]
            } else {
                image
                    .tags
                    .iter()
                    .map(|t| match strata_oci::Reference::parse(t) {
                        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
                        Err(_) => (t.clone(), "<none>".into()),
                    })
                    .collect()
            };
            for (repo, tag) in names {
                t.row(vec![
                    repo,
                    tag,
                    image.id.short().to_string(),
                    created.clone(),
                    size(image.size),
                    size(image.shared_size),
                    size(image.unique_size),
                    image.containers.to_string(),
                ]);
            }
        }
        text.push_str(&t.render());
        text.push_str(&format!(
            "\nStore space usage ({}, driver {}):\n\n",
            store.root().display(),
            store.driver()
        ));
        let mut t = Table::new(&["KIND", "COUNT", "SIZE"]);
        t.row(vec![
            "Blobs".into(),
            usage.blobs_count.to_string(),
            size(usage.blobs_size),
        ]);
        t.row(vec![
            "Snapshots".into(),
            usage.layers_count.to_string(),
            size(usage.layers_size),
        ]);
        text.push_str(&t.render());
        text.push_str(&format!(
            "\nReclaimable by garbage collection: {}\n",
            size(usage.reclaimable)
        ));
    } else {
        let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
        t.row(vec![
            "Images".into(),
            usage.images.len().to_string(),
            usage.active_images.to_string(),
            size(usage.images_size),
            format!(
                "{}{}",
                size(usage.images_reclaimable),
                percent(usage.images_reclaimable, usage.images_size)
            ),
        ]);
        t.row(vec![
            "Containers".into(),
            usage.containers_count.to_string(),
            "0".into(),
            size(usage.containers_size),
            size(usage.containers_size),
        ]);
        t.row(vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ]);
        let cache = store.build_cache_usage()?;
        t.row(vec![
            "Build Cache".into(),
            cache.entries.to_string(),
            cache.usable.to_string(),
            size(cache.size),
            size(cache.reclaimable),
        ]);
        text.push_str(&t.render());
    }
    out(&text);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn check(g: &GlobalOptions) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    let report = store.check()?;
    let mut text = format!(
        "checked {} blobs ({}), {} images, {} snapshots\n",
        report.blobs_checked,
        human::size(report.bytes_checked),
        report.images_checked,
        report.snapshots_checked
    );
    if report.problems.is_empty() {
        text.push_str("no problems found\n");
        out(&text);
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &report.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    out(&text);
    Err(Failure::new(format!("{} problems found in the store", report.problems.len()))
        .with_hint("`strata system prune` removes leftovers; a corrupt or missing blob needs its image loaded again"))
}

/// `system config`: every setting as `key=value`; one setting's value; or a change to one.
pub(crate) fn config(g: &GlobalOptions, a: ConfigArgs) -> Result<ExitCode, Failure> {
    let store = super::open_store(g)?;
    let Some(key) = a.key else {
        let text: String = store
            .settings()?
            .into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        out(&text);
        return Ok(ExitCode::SUCCESS);
    };
    if a.value.is_none() && !a.unset {
        match store.setting(&key)? {
            Some(v) => out(&format!("{v}\n")),
            None => return Err(Failure::new(format!("setting {key} is not set"))),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(value) = &a.value {
        strata_container::validate_log_setting(&key, value)?;
    } else {
        // Only settings strata lets people change can be removed.
        strata_container::validate_log_setting(&key, "1")?;
    }
    store.set_setting(&key, a.value.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
