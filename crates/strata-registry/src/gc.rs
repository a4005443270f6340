//! Online garbage collection: mark and sweep while pushes and pulls go on.
//!
//! 1. **Lease**: one collector at a time per storage (`Storage::gc_lease`).
//! 2. **Mark** (no locks held): every repository's tags and manifests are read; the roots are
//!    all manifests (`untagged = "keep"`) or the tagged ones plus those younger than the grace
//!    period (`"delete"`); indexes keep their children and kept manifests keep their referrers.
//!    Every blob a kept manifest names is marked.
//! 3. **Sweep**, in small batches, each under the exclusive sweep guard: a candidate (an
//!    unmarked blob, an unkept manifest) is removed only if it was not written or touched
//!    since `min(mark start, now - grace)`. Every operation that references a blob (manifest
//!    push, mount, upload commit) touches it and checks it exists under the shared reference
//!    guard, so it either happens before the batch (the touch saves the blob) or after it (it
//!    finds the blob gone and the client uploads it again). A manifest pushed during the
//!    sweep therefore never loses a blob, and nothing is held locked for long.
//!
//! Upload sessions idle past `upload_expiry` are removed, and so are links whose blob is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use strata_oci::{Descriptor, Digest};

use crate::config::{Config, GcConfig, UntaggedPolicy};
use crate::error::RegistryError;
use crate::layout;
use crate::metrics::add;
use crate::registry::Registry;
use crate::storage::StorageError;

/// Deletions per sweep batch (the sweep guard is held for one batch).
const BATCH: usize = 64;
/// How long the lease of a collector that died blocks the next one (where the storage needs
/// an expiry: a live holder keeps renewing it).
const LEASE_TTL: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct GcOptions {
    pub grace: Duration,
    pub untagged: UntaggedPolicy,
    pub upload_expiry: Duration,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
}

impl GcOptions {
    pub fn from_config(c: &GcConfig, dry_run: bool) -> GcOptions {
        GcOptions {
            grace: c.grace.0,
            untagged: c.untagged,
            upload_expiry: c.upload_expiry.0,
            dry_run,
        }
    }
}

/// What a collection freed (or, dry, would free).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    pub repositories: u64,
    pub manifests_kept: u64,
    pub manifests_deleted: u64,
    pub blobs_kept: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_expired: u64,
    pub links_removed: u64,
    pub duration: Duration,
}

/// The parts of a manifest the collector follows.
#[derive(Deserialize, Default)]
struct Refs {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
}

struct Parsed {
    subject: Option<Digest>,
    children: Vec<Digest>,
    blobs: Vec<Digest>,
}

fn parse_refs(bytes: &[u8]) -> Option<Parsed> {
    let r: Refs = serde_json::from_slice(bytes).ok()?;
    Some(Parsed {
        subject: r.subject.map(|s| s.digest),
        children: r.manifests.into_iter().map(|d| d.digest).collect(),
        blobs: r
            .config
            .into_iter()
            .chain(r.layers)
            .map(|d| d.digest)
            .collect(),
    })
}

/// Gives the runtime back now and then during long loops of inline storage calls.
struct Yielder(u32);

impl Yielder {
    async fn tick(&mut self) {
        self.0 += 1;
        if self.0.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
    }
}

/// Runs one collection.
pub async fn collect(registry: &Registry, opts: &GcOptions) -> Result<GcReport, RegistryError> {
    let started = Instant::now();
    let storage = registry.storage.clone();
    let Some(_lease) = storage.gc_lease(LEASE_TTL).await? else {
        return Err(RegistryError::GcBusy);
    };
    // References being written right now (possibly seen by no mark, their touches older than
    // the epoch) finish before the epoch is taken; later ones touch at or after it.
    drop(storage.sweep_guard().await?);
    let epoch = storage.now().await?;
    let cutoff = epoch
        .checked_sub(opts.grace)
        .unwrap_or(UNIX_EPOCH)
        .min(epoch);
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..GcReport::default()
    };
    let mut y = Yielder(0);

    // Upload sessions nobody touched for a long time.
    let stale = epoch.checked_sub(opts.upload_expiry).unwrap_or(UNIX_EPOCH);
    for (id, last) in storage.ingest_list().await? {
        if last < stale {
            if !opts.dry_run {
                storage.ingest_abort(&id).await?;
            }
            report.uploads_expired += 1;
        }
    }

    // Mark.
    let mut marked: HashSet<Digest> = HashSet::new();
    let mut condemned: Vec<(String, Digest)> = Vec::new();
    let mut linked: HashMap<Digest, Vec<String>> = HashMap::new();
    let mut parsed_cache: HashMap<Digest, Option<Parsed>> = HashMap::new();
    let repositories = registry.repositories().await?;
    report.repositories = repositories.len() as u64;
    for repo in &repositories {
        let mut manifests: Vec<Digest> = Vec::new();
        let mut young: HashSet<Digest> = HashSet::new();
        for hex in storage.list(&layout::manifest_links(repo)).await?.objects {
            y.tick().await;
            let Ok(d) = Digest::from_sha256_hex(&hex) else {
                continue;
            };
            if let Some(used) = storage.last_used(&layout::manifest_link(repo, &d)).await? {
                if used >= cutoff {
                    young.insert(d.clone());
                }
            }
            if !parsed_cache.contains_key(&d) {
                let p = storage
                    .get(&layout::blob(&d))
                    .await?
                    .and_then(|b| parse_refs(&b));
                parsed_cache.insert(d.clone(), p);
            }
            manifests.push(d);
        }
        let mut kept: HashSet<Digest> = match opts.untagged {
            UntaggedPolicy::Keep => manifests.iter().cloned().collect(),
            UntaggedPolicy::Delete => {
                let mut roots = young;
                for tag in storage.list(&layout::tags(repo)).await?.objects {
                    y.tick().await;
                    if let Some(v) = storage.get(&layout::tag(repo, &tag)).await? {
                        if let Ok(d) = Digest::parse(String::from_utf8_lossy(&v).trim()) {
                            roots.insert(d);
                        }
                    }
                }
                roots
            }
        };
        // A manifest we cannot read is never collected: keep it and say so.
        for d in &manifests {
            if matches!(parsed_cache.get(d), Some(None)) && kept.insert(d.clone()) {
                tracing::warn!(repository = %repo, digest = %d, "unreadable manifest kept");
            }
        }
        // Indexes keep their children; kept manifests keep their referrers.
        loop {
            let mut grew = false;
            for d in &manifests {
                let Some(Some(p)) = parsed_cache.get(d) else {
                    continue;
                };
                if kept.contains(d) {
                    for c in &p.children {
                        if manifests.contains(c) && kept.insert(c.clone()) {
                            grew = true;
                        }
                    }
                } else if p.subject.as_ref().is_some_and(|s| kept.contains(s)) {
                    kept.insert(d.clone());
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        for d in &manifests {
            if kept.contains(d) {
                report.manifests_kept += 1;
                marked.insert(d.clone());
                if let Some(Some(p)) = parsed_cache.get(d) {
                    marked.extend(p.blobs.iter().cloned());
                }
            } else {
                condemned.push((repo.clone(), d.clone()));
            }
        }
        for hex in storage.list(&layout::blob_links(repo)).await?.objects {
            if let Ok(d) = Digest::from_sha256_hex(&hex) {
                linked.entry(d).or_default().push(repo.clone());
            }
        }
    }

    // Sweep untagged manifests.
    for batch in condemned.chunks(BATCH) {
        let _guard = storage.sweep_guard().await?;
        for (repo, d) in batch {
            y.tick().await;
            let link = layout::manifest_link(repo, d);
            match storage.last_used(&link).await? {
                Some(used) if used < cutoff => {}
                _ => continue, // pushed again since the mark
            }
            if tagged(registry, repo, d).await? {
                continue;
            }
            if !opts.dry_run {
                registry.unlink_manifest(repo, d).await?;
            }
            report.manifests_deleted += 1;
        }
    }

    // Sweep blobs.
    let mut present: HashSet<Digest> = HashSet::new();
    let mut candidates: Vec<Digest> = Vec::new();
    for shard in storage.list(layout::BLOBS).await?.prefixes {
        for hex in storage
            .list(&format!("{}{shard}/", layout::BLOBS))
            .await?
            .objects
        {
            y.tick().await;
            let Ok(d) = Digest::from_sha256_hex(&hex) else {
                continue;
            };
            present.insert(d.clone());
            if marked.contains(&d) {
                report.blobs_kept += 1;
            } else {
                candidates.push(d);
            }
        }
    }
    for batch in candidates.chunks(BATCH) {
        let _guard = storage.sweep_guard().await?;
        for d in batch {
            y.tick().await;
            let key = layout::blob(d);
            let (Some(used), Some(meta)) =
                (storage.last_used(&key).await?, storage.head(&key).await?)
            else {
                continue;
            };
            if used >= cutoff {
                report.blobs_kept += 1;
                continue; // young, or referenced since the mark
            }
            if !opts.dry_run {
                storage.delete(&key).await?;
                for repo in linked.get(d).into_iter().flatten() {
                    if storage.delete(&layout::blob_link(repo, d)).await? {
                        report.links_removed += 1;
                    }
                }
            }
            report.blobs_deleted += 1;
            report.bytes_freed += meta.size;
        }
    }
    // Links to blobs that are not there at all (a crash between commit and link, a
    // half-restored backup): they would only make HEAD lie.
    let dangling: Vec<(Digest, Vec<String>)> = linked
        .into_iter()
        .filter(|(d, _)| !present.contains(d))
        .collect();
    for batch in dangling.chunks(BATCH) {
        let _guard = storage.sweep_guard().await?;
        for (d, repos) in batch {
            if storage.head(&layout::blob(d)).await?.is_some() {
                continue;
            }
            for repo in repos {
                if !opts.dry_run && storage.delete(&layout::blob_link(repo, d)).await? {
                    report.links_removed += 1;
                }
            }
        }
    }
    if !opts.dry_run {
        let _ = storage
            .remove_stale_temp(Duration::from_secs(24 * 3600))
            .await;
        registry.quotas.forget_all();
        let m = &registry.metrics;
        add(&m.gc_runs, 1);
        add(&m.gc_blobs_deleted, report.blobs_deleted);
        add(&m.gc_manifests_deleted, report.manifests_deleted);
        add(&m.gc_bytes_freed, report.bytes_freed);
        m.gc_last_run_seconds.store(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    report.duration = started.elapsed();
    Ok(report)
}

async fn tagged(registry: &Registry, repo: &str, d: &Digest) -> Result<bool, StorageError> {
    let s = &registry.storage;
    for tag in s.list(&layout::tags(repo)).await?.objects {
        if let Some(v) = s.get(&layout::tag(repo, &tag)).await? {
            if v.as_ref() == d.as_str().as_bytes() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Runs collections every `gc.interval` in the server (nothing when it is 0).
pub(crate) fn spawn_schedule(
    registry: Arc<Registry>,
    config: &Config,
) -> tokio::task::JoinHandle<()> {
    let every = config.gc.interval.0;
    let opts = GcOptions::from_config(&config.gc, false);
    tokio::spawn(async move {
        if every.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A collection that took longer than `every` is followed by a pause, not by another
        // one at once: a collector running back to back would hold the lease forever and
        // shut out every other replica and `strata registry gc`.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match collect(&registry, &opts).await {
                Ok(r) => tracing::info!(
                    blobs_deleted = r.blobs_deleted,
                    bytes_freed = r.bytes_freed,
                    manifests_deleted = r.manifests_deleted,
                    uploads_expired = r.uploads_expired,
                    duration_ms = r.duration.as_millis() as u64,
                    "garbage collection finished"
                ),
                Err(RegistryError::GcBusy) => {
                    tracing::info!("garbage collection skipped: another one is running")
                }
                Err(e) => tracing::error!(error = %e, "garbage collection failed"),
            }
        }
    })
}
