//! `strata pull`: a reference → its manifest (the platform's entry of an index) → config →
//! layers fetched in parallel, each streamed into the content store and (overlay) unpacked
//! in the same pass, verified against its digest before it becomes visible → snapshots →
//! the image recorded with its tag and repo digest, through the pipeline `load` uses.
//!
//! A blob already in the store is never fetched. An interrupted download (dropped
//! connection, killed process) leaves its bytes in a partial ingest; the next attempt, in
//! this process or a later one, replays them and asks the registry for the rest with an
//! HTTP range.

use std::io::Read;
use std::sync::Arc;

use strata_distribution::{Access, DistributionError, RegistryClient, Repository};
use strata_oci::{media_type, Digest, Index, Manifest, Platform, Reference};
use strata_store::{LayerRecord, Resume, Store, StoreError};

use crate::assemble::{
    check_manifest, finish_images, layer_records, new_record, parse_config, select_platform,
    ImagePlan, LayerStager, Staged, StagedLayers,
};
use crate::progress::{LayerStatus, TransferEvent, TransferReporter};
use crate::ImageError;

/// Largest image config accepted.
const CONFIG_LIMIT: u64 = 16 << 20;
/// Bytes read from the network and handed on at a time.
const CHUNK: usize = 1 << 20;
/// Nested indexes followed before giving up.
const MAX_INDEX_DEPTH: usize = 2;

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform`; the host's when None. An explicit one is also checked against the
    /// config of a single-platform image, as Docker does.
    pub platform: Option<Platform>,
}

/// One pulled image.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub reference: Reference,
    pub id: Digest,
    /// The digest the registry serves the reference as (an index's, for multi-platform images).
    pub digest: Digest,
    /// Something new was stored (false: "Image is up to date").
    pub fresh: bool,
}

/// Pulls `reference` (tagged or by digest) into the store.
pub fn pull_image(
    store: &Store,
    client: &RegistryClient,
    reference: &Reference,
    opts: &PullOptions,
    reporter: &dyn TransferReporter,
) -> Result<PulledImage, ImageError> {
    let _lease = store.writer_lease()?;
    reporter.event(TransferEvent::PullStarted { reference });
    let repo = client.repository(reference.domain(), reference.path(), Access::Pull);
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => strata_oci::DEFAULT_TAG.to_string(),
    };
    let shown = reference.familiar();
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let top = repo.manifest(&target)?;
    let (manifest, manifest_bytes, manifest_digest) = platform_manifest(
        &repo,
        top.bytes.clone(),
        &top.media_type,
        top.digest.clone(),
        &wanted,
        &shown,
    )?;
    check_manifest(&manifest, &shown)?;

    let config_digest = manifest.config.digest.clone();
    if manifest.config.size > CONFIG_LIMIT {
        return Err(ImageError::InvalidImage(format!(
            "{shown}: its config is {} bytes, more than the {CONFIG_LIMIT} strata accepts",
            manifest.config.size
        )));
    }
    let config_bytes = if store.content().contains(&config_digest) {
        store.content().read_all(&config_digest)?
    } else {
        let bytes = repo.small_blob(&config_digest, CONFIG_LIMIT)?;
        store.content().ingest(&bytes[..], Some(&config_digest))?;
        bytes
    };
    let config = parse_config(&config_digest, &config_bytes)?;
    if opts.platform.is_some()
        && !Platform::config_matches(
            &config.os,
            &config.architecture,
            config.variant.as_deref(),
            &wanted,
        )
    {
        let actual = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
        return Err(ImageError::PlatformMismatch {
            reference: shown,
            wanted: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    let layers = layer_records(
        &manifest,
        &config,
        &format!("{shown}: manifest {manifest_digest}"),
    )?;
    store
        .content()
        .ingest(&manifest_bytes[..], Some(&manifest_digest))?;

    let missing: Vec<usize> = (0..layers.len())
        .filter(|&i| !store.content().contains(&layers[i].blob))
        .collect();
    for (i, layer) in layers.iter().enumerate() {
        if !missing.contains(&i) {
            reporter.event(TransferEvent::Layer {
                id: &layer.blob,
                status: &LayerStatus::AlreadyExists,
            });
        }
    }
    // Docker's "Downloaded newer image": anything new stored, or the tag moved.
    let tag_moves = reference.digest().is_none()
        && store.resolve_tag(&reference.to_string())?.as_ref() != Some(&config_digest);
    let fresh = store.image(&config_digest)?.is_none() || !missing.is_empty() || tag_moves;
    let mut staged = download_layers(store, client, &repo, &layers, &missing, reporter)?;

    let tags = if reference.digest().is_none() {
        vec![reference.clone()]
    } else {
        Vec::new()
    };
    let plan = ImagePlan {
        record: new_record(
            config_digest.clone(),
            Some(manifest_digest),
            layers,
            &config,
        ),
        tags,
        repo_digests: vec![format!("{}@{}", reference.name(), top.digest)],
    };
    finish_images(store, std::slice::from_ref(&plan), &mut staged)?;
    for &i in &missing {
        reporter.event(TransferEvent::Layer {
            id: &plan.record.layers[i].blob,
            status: &LayerStatus::PullComplete,
        });
    }
    let mut blobs: Vec<Digest> = plan.record.layers.iter().map(|l| l.blob.clone()).collect();
    blobs.push(config_digest.clone());
    store.record_blob_sources(&blobs, repo.domain(), repo.path())?;
    reporter.event(TransferEvent::Pulled {
        reference,
        digest: &top.digest,
        fresh,
    });
    Ok(PulledImage {
        reference: reference.clone(),
        id: config_digest,
        digest: top.digest,
        fresh,
    })
}

/// Pulls every tag of `repository` (`pull -a`).
pub fn pull_all_tags(
    store: &Store,
    client: &RegistryClient,
    repository: &Reference,
    opts: &PullOptions,
    reporter: &dyn TransferReporter,
) -> Result<Vec<PulledImage>, ImageError> {
    let repo = client.repository(repository.domain(), repository.path(), Access::Pull);
    let mut tags = repo.tags()?;
    tags.sort();
    let mut out = Vec::new();
    for tag in tags {
        let reference = repository.with_tag(&tag)?;
        out.push(pull_image(store, client, &reference, opts, reporter)?);
    }
    Ok(out)
}

/// The image manifest for `wanted`: the document itself, or its entry in an index.
fn platform_manifest(
    repo: &Repository<'_>,
    bytes: Vec<u8>,
    media: &str,
    digest: Digest,
    wanted: &Platform,
    shown: &str,
) -> Result<(Manifest, Vec<u8>, Digest), ImageError> {
    let (mut bytes, mut media, mut digest) = (bytes, media.to_string(), digest);
    for _ in 0..=MAX_INDEX_DEPTH {
        if media_type::is_schema1(&media) {
            return Err(ImageError::Schema1 {
                reference: shown.to_string(),
            });
        }
        if media_type::is_index(&media) {
            let index: Index = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::InvalidImage(format!("{shown}: index {digest}: {e}")))?;
            let entry = select_platform(&index, wanted)?;
            let fetched = repo.manifest(entry.digest.as_str())?;
            bytes = fetched.bytes;
            media = fetched.media_type;
            digest = fetched.digest;
            continue;
        }
        if media_type::is_manifest(&media) {
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::InvalidImage(format!("{shown}: manifest {digest}: {e}"))
            })?;
            if manifest.schema_version != 2 {
                return Err(ImageError::Schema1 {
                    reference: shown.to_string(),
                });
            }
            return Ok((manifest, bytes, digest));
        }
        return Err(ImageError::NotAnImage {
            reference: shown.to_string(),
            reason: format!("the registry serves it as {media:?}"),
        });
    }
    Err(ImageError::InvalidImage(format!(
        "{shown}: indexes nested deeper than {MAX_INDEX_DEPTH}"
    )))
}

/// Downloads the `missing` layers with up to the configured number at once; returns the
/// layers unpacked while they streamed.
fn download_layers(
    store: &Store,
    client: &RegistryClient,
    repo: &Repository<'_>,
    layers: &[LayerRecord],
    missing: &[usize],
    reporter: &dyn TransferReporter,
) -> Result<StagedLayers, ImageError> {
    let workers = client.config().max_concurrent_downloads.clamp(1, 64);
    for (n, &i) in missing.iter().enumerate() {
        let status = if n < workers {
            LayerStatus::Queued
        } else {
            LayerStatus::Waiting
        };
        reporter.event(TransferEvent::Layer {
            id: &layers[i].blob,
            status: &status,
        });
    }
    let staged = crate::parallel::run_all(missing.len(), workers, |k| {
        let layer = &layers[missing[k]];
        download_layer(store, client, repo, layer, reporter).map(|s| (layer.blob.clone(), s))
    })?;
    Ok(staged
        .into_iter()
        .filter_map(|(blob, s)| s.map(|s| (blob, s)))
        .collect())
}

/// Why one download attempt failed, and whether another attempt may do better.
struct Attempt {
    error: ImageError,
    retry: bool,
}

/// Downloads one layer blob, resuming and retrying as the client's retry policy allows.
fn download_layer(
    store: &Store,
    client: &RegistryClient,
    repo: &Repository<'_>,
    layer: &LayerRecord,
    reporter: &dyn TransferReporter,
) -> Result<Option<Staged>, ImageError> {
    let policy = client.retry_policy();
    let mut attempt = 0;
    loop {
        match download_once(store, repo, layer, reporter) {
            Ok(staged) => return Ok(staged),
            Err(a) if a.retry && attempt + 1 < policy.attempts => {
                reporter.event(TransferEvent::Layer {
                    id: &layer.blob,
                    status: &LayerStatus::Retrying {
                        attempt: attempt + 1,
                        error: a.error.to_string(),
                    },
                });
                let wait = match &a.error {
                    ImageError::Transfer { source, .. } => match source.as_ref() {
                        DistributionError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    },
                    _ => None,
                };
                std::thread::sleep(policy.delay(attempt, wait));
                attempt += 1;
            }
            Err(a) => return Err(a.error),
        }
    }
}

fn fatal(error: impl Into<ImageError>) -> Attempt {
    Attempt {
        error: error.into(),
        retry: false,
    }
}

/// One attempt: continue the partial ingest from where it stopped, stream the rest into it
/// and the stager, and commit it if it hashes right.
fn download_once(
    store: &Store,
    repo: &Repository<'_>,
    layer: &LayerRecord,
    reporter: &dyn TransferReporter,
) -> Result<Option<Staged>, Attempt> {
    let digest = &layer.blob;
    let size = layer.blob_size;
    let partial = match store.content().resume(digest).map_err(fatal)? {
        Resume::Present(_) => {
            reporter.event(TransferEvent::Layer {
                id: digest,
                status: &LayerStatus::Downloaded,
            });
            return Ok(None);
        }
        Resume::Partial(p) => p,
    };
    let have = if partial.len() > size {
        0
    } else {
        partial.len()
    };
    // Every byte already there: nothing to ask the registry for.
    let mut stream = if have == size && size > 0 {
        None
    } else {
        Some(repo.blob(digest, Some(size), have).map_err(|e| Attempt {
            retry: e.is_transient(),
            error: ImageError::Transfer {
                context: format!("downloading layer {digest}"),
                source: Box::new(e),
            },
        })?)
    };
    let start = stream.as_ref().map_or(have, |s| s.offset());
    let stage = strata_oci::media_type::layer_compression(&layer.media_type).is_some();
    std::thread::scope(|scope| {
        let mut stager = LayerStager::start(scope, store, stage);
        let mut writer = if start > 0 {
            reporter.event(TransferEvent::Layer {
                id: digest,
                status: &LayerStatus::Resuming { from: start },
            });
            partial
                .replay(|chunk| {
                    stager.send(Arc::new(chunk.to_vec()));
                    Ok(())
                })
                .map_err(fatal)?
        } else {
            partial.restart().map_err(fatal)?
        };
        let mut done = writer.written();
        reporter.event(TransferEvent::Progress {
            id: digest,
            done,
            total: Some(size),
        });
        if let Some(stream) = stream.as_mut() {
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                let n = stream
                    .by_ref()
                    .take(CHUNK as u64)
                    .read_to_end(&mut chunk)
                    .map_err(|e| Attempt {
                        retry: true,
                        error: ImageError::Download {
                            digest: digest.clone(),
                            reason: format!(
                                "the transfer broke off after {done} of {size} bytes: {e}"
                            ),
                        },
                    })?;
                if n == 0 {
                    break;
                }
                std::io::Write::write_all(&mut writer, &chunk)
                    .map_err(|e| fatal(ImageError::io("writing a blob", e)))?;
                stager.send(Arc::new(chunk));
                done += n as u64;
                reporter.event(TransferEvent::Progress {
                    id: digest,
                    done,
                    total: Some(size),
                });
            }
        }
        reporter.event(TransferEvent::Layer {
            id: digest,
            status: &LayerStatus::Verifying,
        });
        match writer.commit(Some(digest)) {
            Ok(_) => {}
            Err(StoreError::DigestMismatch {
                actual, size: got, ..
            }) => {
                // The partial was removed; bytes replayed from an earlier attempt may have
                // been the bad part, so one more try from scratch is worth it.
                return Err(Attempt {
                    retry: start > 0,
                    error: ImageError::Download {
                        digest: digest.clone(),
                        reason: format!(
                            "the registry sent {got} bytes hashing to {actual}: refused"
                        ),
                    },
                });
            }
            Err(e) => return Err(fatal(e)),
        }
        reporter.event(TransferEvent::Layer {
            id: digest,
            status: &LayerStatus::Downloaded,
        });
        Ok(stager.finish())
    })
}
