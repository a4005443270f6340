//! `strata system df`, `strata system check` and `strata system config`.

use strata_exit::ExitStatus;

use crate::cli::{ConfigArgs, DfArgs, GlobalOptions};
use crate::failure::Failure;
use crate::render::{human, out, table::Table};

pub(crate) fn df(g: &GlobalOptions, a: DfArgs) -> Result<ExitStatus, Failure> {
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
        if usage.unreferenced_size > 0 {
            text.push_str(&format!(
                "\nUnreferenced (left by interrupted commands): {}\n",
                size(usage.unreferenced_size)
            ));
        }
        text.push_str(&format!(
            "\nReclaimable by garbage collection (strata system prune): {}\n",
            size(usage.reclaimable)
        ));
        text.push_str("\nBuild cache usage:\n\n");
        let mut t = Table::new(&[
            "CACHE ID",
            "CACHE TYPE",
            "SIZE",
            "CREATED",
            "LAST USED",
            "SHARED",
        ]);
        let ago = |secs: i64| {
            format!(
                "{} ago",
                human::duration(chrono::Utc::now().timestamp() - secs)
            )
        };
        for e in store.build_cache_usage_by_entry()? {
            let id = e.key.strip_prefix("sha256:").unwrap_or(&e.key);
            t.row(vec![
                id.chars().take(12).collect(),
                if e.has_layer { "regular" } else { "metadata" }.into(),
                size(e.size),
                ago(e.created),
                ago(e.last_used),
                e.shared.to_string(),
            ]);
        }
        text.push_str(&t.render());
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
        // As Docker: a running container's layer is not reclaimable; a volume is while no
        // container uses it.
        let containers = strata_container::list(&store)?;
        let mut running = 0;
        let mut stopped_size = 0;
        for c in &containers {
            if matches!(
                c.state.status,
                strata_container::Status::Running | strata_container::Status::Restarting
            ) {
                running += 1;
            } else {
                stopped_size += strata_store::tree_size(&c.dir);
            }
        }
        t.row(vec![
            "Containers".into(),
            usage.containers_count.to_string(),
            running.to_string(),
            size(usage.containers_size),
            size(stopped_size),
        ]);
        let volumes = strata_container::list_volumes(&store)?;
        let volume_size = |v: &strata_container::Volume| strata_store::tree_size(&v.mountpoint);
        t.row(vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            volumes
                .iter()
                .filter(|v| !v.used_by.is_empty())
                .count()
                .to_string(),
            size(volumes.iter().map(volume_size).sum()),
            size(
                volumes
                    .iter()
                    .filter(|v| v.used_by.is_empty())
                    .map(volume_size)
                    .sum(),
            ),
        ]);
        let cache = store.build_cache_usage()?;
        t.row(vec![
            "Build Cache".into(),
            cache.entries.to_string(),
            cache.usable.to_string(),
            size(cache.size),
            size(cache.reclaimable),
        ]);
        if usage.reclaimable > 0 {
            // Not one of Docker's rows: blobs, snapshots and files no image or container
            // reaches (what an interrupted pull, load or rmi leaves), which `system prune`
            // frees.
            t.row(vec![
                "Unreferenced".into(),
                "-".into(),
                "0".into(),
                size(usage.reclaimable),
                size(usage.reclaimable),
            ]);
        }
        text.push_str(&t.render());
    }
    out(&text);
    Ok(ExitStatus::Success)
}

pub(crate) fn check(g: &GlobalOptions) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let report = store.check()?;
    let mut text = format!(
        "checked {} blobs ({}), {} images, {} snapshots\n",
        report.blobs_checked,
        human::size(report.bytes_checked),
        report.images_checked,
        report.snapshots_checked
    );
    if report.unreferenced > 0 {
        text.push_str(&format!(
            "note: {} unreferenced blobs and snapshots ({}): strata system prune frees them\n",
            report.unreferenced,
            human::size(report.unreferenced_bytes)
        ));
    }
    if report.problems.is_empty() {
        text.push_str("no problems found\n");
        out(&text);
        return Ok(ExitStatus::Success);
    }
    for problem in &report.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    out(&text);
    Err(Failure::new(format!("{} problems found in the store", report.problems.len()))
        .with_hint("`strata system prune` removes leftovers; a corrupt or missing blob needs its image loaded again"))
}

/// `system config`: every setting as `key=value`; one setting's value; or a change to one.
pub(crate) fn config(g: &GlobalOptions, a: ConfigArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let Some(key) = a.key else {
        let text: String = store
            .settings()?
            .into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        out(&text);
        return Ok(ExitStatus::Success);
    };
    if a.value.is_none() && !a.unset {
        match store.setting(&key)? {
            Some(v) => out(&format!("{v}\n")),
            None => return Err(Failure::new(format!("setting {key} is not set"))),
        }
        return Ok(ExitStatus::Success);
    }
    // Only settings strata lets people change can be set or removed.
    match (key.as_str(), &a.value) {
        (super::prune::BUILD_CACHE_MAX_SETTING, Some(value)) => {
            super::prune::parse_cache_size(super::prune::BUILD_CACHE_MAX_SETTING, value)
                .map(drop)?
        }
        (super::prune::BUILD_CACHE_MAX_SETTING, None) => {}
        (strata_container::LOG_MAX_SIZE_SETTING | strata_container::LOG_MAX_FILE_SETTING, v) => {
            strata_container::validate_log_setting(&key, v.as_deref().unwrap_or("1"))?
        }
        _ => {
            return Err(Failure::new(format!(
                "unknown setting {key:?}; known: {}, {}, {}",
                strata_container::LOG_MAX_SIZE_SETTING,
                strata_container::LOG_MAX_FILE_SETTING,
                super::prune::BUILD_CACHE_MAX_SETTING
            )))
        }
    }
    store.set_setting(&key, a.value.as_deref())?;
    Ok(ExitStatus::Success)
}
