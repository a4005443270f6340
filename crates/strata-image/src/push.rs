//! `strata push`: a tagged image → its layers in the registry (each checked with a HEAD
//! first, mounted from another repository of the same registry when it came from there,
//! else uploaded), its config, then a manifest under the tag.
//!
//! Layers stored compressed (pulled) go out as they are. Layers stored uncompressed (built,
//! committed, loaded from `docker save`) are compressed while they upload, several at once,
//! and the compressed blob is kept in the store and remembered per (diff_id, algorithm,
//! level), so the next push of that layer, to any registry, compresses nothing. Image IDs
//! and diff_ids never change: the config goes out byte for byte.
//!
//! An upload's session is recorded in the store while it runs: a push that is killed or
//! loses its connection continues the session next time, sending only what the registry
//! does not have yet (compression is deterministic, so the bytes before that point are the
//! same bytes; the registry's digest check at the end proves it).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use strata_distribution::{Access, DistributionError, RegistryClient, Repository, UploadStart};
use strata_oci::media_type::{self, LayerCompression};
use strata_oci::{to_canonical_json, Descriptor, Digest, Manifest, Reference};
use strata_store::{CompressedBlob, LayerRecord, Store};

use crate::channel::ChannelReader;
use crate::progress::{LayerStatus, TransferEvent, TransferReporter};
use crate::ImageError;

/// Blobs up to this size go up in one PUT.
const MONOLITHIC_LIMIT: u64 = 1 << 20;
/// Compressed bytes handed from the compressor to the upload at a time.
const CHUNK: usize = 1 << 20;

/// Which manifest to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// Docker image manifest v2 schema 2 (what `docker pull` expects).
    Docker,
    /// OCI image manifest.
    Oci,
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// For layers stored uncompressed: gzip (default) or zstd.
    pub compression: LayerCompression,
    /// The compressor's level; its default when None.
    pub level: Option<i32>,
    /// None: keep a pulled image's own manifest when its blobs go out unchanged, else Docker.
    /// zstd layers always go out in an OCI manifest.
    pub format: Option<ManifestFormat>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            compression: LayerCompression::Gzip,
            level: None,
            format: None,
        }
    }
}

/// One pushed tag.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub reference: Reference,
    /// The manifest's digest (`name@digest` now names the image).
    pub digest: Digest,
    pub size: u64,
}

/// A layer as it goes to the registry.
#[derive(Debug, Clone)]
struct Outgoing {
    digest: Digest,
    size: u64,
    compression: LayerCompression,
}

/// Where a layer's bytes come from.
enum Plan {
    /// A stored blob, sent as it is.
    Stored(Outgoing),
    /// The stored uncompressed layer, compressed on the way.
    Compress,
}

/// Pushes the local image tagged `reference`.
pub fn push_image(
    store: &Store,
    client: &RegistryClient,
    reference: &Reference,
    opts: &PushOptions,
    reporter: &dyn TransferReporter,
) -> Result<PushedImage, ImageError> {
    let _lease = store.writer_lease()?;
    let tag = reference.tag().unwrap_or(strata_oci::DEFAULT_TAG);
    let id = store
        .resolve_tag(&reference.to_string())?
        .ok_or_else(|| ImageError::NoSuchTag(reference.familiar()))?;
    let record = store
        .image(&id)?
        .ok_or_else(|| ImageError::NoSuchTag(reference.familiar()))?;
    let config_bytes = store.content().read_all(&id)?;
    reporter.event(TransferEvent::PushStarted { reference });
    let repo = client.repository(reference.domain(), reference.path(), Access::Push);
    let (algorithm, level) = compression_setting(opts)?;

    let mut plans = Vec::new();
    for layer in &record.layers {
        plans.push(plan_layer(store, layer, opts.compression, level)?);
    }
    for layer in &record.layers {
        reporter.event(TransferEvent::Layer {
            id: &layer.diff_id,
            status: &LayerStatus::Preparing,
        });
    }
    let pushed = push_layers(
        store,
        client,
        &repo,
        &record.layers,
        &plans,
        opts,
        algorithm,
        level,
        reporter,
    )?;

    push_known_blob(
        store,
        &repo,
        &id,
        config_bytes.len() as u64,
        Some(&config_bytes),
        None,
        reporter,
    )?;

    let any_zstd = pushed
        .iter()
        .any(|o| o.compression == LayerCompression::Zstd);
    let unchanged = pushed
        .iter()
        .zip(&record.layers)
        .all(|(o, l)| o.digest == l.blob);
    let (manifest_bytes, manifest_type) = match (&record.manifest, opts.format, unchanged) {
        (Some(stored), None, true) if store.content().contains(stored) => {
            let bytes = store.content().read_all(stored)?;
            let media = serde_json::from_slice::<Manifest>(&bytes)
                .ok()
                .and_then(|m| m.media_type)
                .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
            (bytes, media)
        }
        _ => {
            let format = if any_zstd {
                ManifestFormat::Oci
            } else {
                opts.format.unwrap_or(ManifestFormat::Docker)
            };
            new_manifest(format, &id, config_bytes.len() as u64, &pushed)
        }
    };
    let digest = repo.put_manifest(tag, &manifest_type, &manifest_bytes)?;
    store.content().ingest(&manifest_bytes[..], Some(&digest))?;
    store.add_repo_digest(&id, &format!("{}@{digest}", reference.name()))?;
    let mut blobs: Vec<Digest> = pushed.iter().map(|o| o.digest.clone()).collect();
    blobs.push(id.clone());
    store.record_blob_sources(&blobs, repo.domain(), repo.path())?;
    let size = manifest_bytes.len() as u64;
    reporter.event(TransferEvent::Pushed {
        reference,
        digest: &digest,
        size,
    });
    Ok(PushedImage {
        reference: reference.clone(),
        digest,
        size,
    })
}

/// Pushes every local tag of `repository` (`push -a`).
pub fn push_all_tags(
    store: &Store,
    client: &RegistryClient,
    repository: &Reference,
    opts: &PushOptions,
    reporter: &dyn TransferReporter,
) -> Result<Vec<PushedImage>, ImageError> {
    let prefix = format!("{}:", repository.name());
    let mut out = Vec::new();
    for (name, _) in store.tags()? {
        if let Some(tag) = name.strip_prefix(&prefix) {
            let reference = repository.with_tag(tag)?;
            out.push(push_image(store, client, &reference, opts, reporter)?);
        }
    }
    if out.is_empty() {
        return Err(ImageError::NoSuchTag(repository.familiar_name()));
    }
    Ok(out)
}

/// The algorithm name and level a push compresses with.
fn compression_setting(opts: &PushOptions) -> Result<(&'static str, i32), ImageError> {
    let (name, default, range) = match opts.compression {
        LayerCompression::Zstd => ("zstd", strata_layer::ZSTD_LEVEL, 1..=19),
        _ => ("gzip", strata_layer::GZIP_LEVEL as i32, 1..=9),
    };
    let level = opts.level.unwrap_or(default);
    if !range.contains(&level) {
        return Err(ImageError::InvalidImage(format!(
            "compression level {level} is out of range for {name} ({}-{})",
            range.start(),
            range.end()
        )));
    }
    Ok((name, level))
}

fn plan_layer(
    store: &Store,
    layer: &LayerRecord,
    compression: LayerCompression,
    level: i32,
) -> Result<Plan, ImageError> {
    if let Some(c @ (LayerCompression::Gzip | LayerCompression::Zstd)) =
        media_type::layer_compression(&layer.media_type)
    {
        return Ok(Plan::Stored(Outgoing {
            digest: layer.blob.clone(),
            size: layer.blob_size,
            compression: c,
        }));
    }
    let algorithm = match compression {
        LayerCompression::Zstd => "zstd",
        _ => "gzip",
    };
    Ok(
        match store.compressed_blob(&layer.diff_id, algorithm, level)? {
            Some(CompressedBlob { blob, size }) => Plan::Stored(Outgoing {
                digest: blob,
                size,
                compression,
            }),
            None => Plan::Compress,
        },
    )
}

fn new_manifest(
    format: ManifestFormat,
    config: &Digest,
    config_size: u64,
    layers: &[Outgoing],
) -> (Vec<u8>, String) {
    let (config_type, layer_type, manifest_type): (_, fn(LayerCompression) -> &'static str, _) =
        match format {
            ManifestFormat::Docker => (
                media_type::DOCKER_CONFIG,
                media_type::docker_layer,
                media_type::DOCKER_MANIFEST,
            ),
            ManifestFormat::Oci => (
                media_type::OCI_CONFIG,
                media_type::oci_layer,
                media_type::OCI_MANIFEST,
            ),
        };
    let descriptors = layers
        .iter()
        .map(|o| Descriptor::new(layer_type(o.compression), o.digest.clone(), o.size))
        .collect();
    let config = Descriptor::new(config_type, config.clone(), config_size);
    let manifest = match format {
        ManifestFormat::Docker => Manifest::new_docker(config, descriptors),
        ManifestFormat::Oci => Manifest::new_oci(config, descriptors),
    };
    (to_canonical_json(&manifest), manifest_type.to_string())
}

/// Pushes every layer, up to the configured number at once; returns them as sent.
#[allow(clippy::too_many_arguments)]
fn push_layers(
    store: &Store,
    client: &RegistryClient,
    repo: &Repository<'_>,
    layers: &[LayerRecord],
    plans: &[Plan],
    opts: &PushOptions,
    algorithm: &'static str,
    level: i32,
    reporter: &dyn TransferReporter,
) -> Result<Vec<Outgoing>, ImageError> {
    let workers = client.config().max_concurrent_uploads.clamp(1, 64);
    crate::parallel::run_all(layers.len(), workers, |i| {
        let layer = &layers[i];
        match &plans[i] {
            Plan::Stored(o) => push_known_blob(
                store,
                repo,
                &o.digest,
                o.size,
                None,
                Some(&layer.diff_id),
                reporter,
            )
            .map(|()| o.clone()),
            Plan::Compress => push_compressing(
                store,
                client,
                repo,
                layer,
                opts.compression,
                algorithm,
                level,
                reporter,
            ),
        }
    })
}

fn transfer(context: String) -> impl Fn(DistributionError) -> ImageError {
    move |e| ImageError::Transfer {
        context: context.clone(),
        source: Box::new(e),
    }
}

/// The store key of the upload session of `what` in `repo`.
fn session_key(repo: &Repository<'_>, what: &str) -> String {
    format!("{}@{what}", repo.name())
}

/// Pushes a blob whose digest is known: nothing if the registry has it, a mount if it came
/// from another repository of the registry, else an upload (resuming a recorded session).
/// `bytes`: the blob in memory (the config); else it is read from the content store.
/// `shown`: the id progress is reported under (None: the blob is not a layer).
fn push_known_blob(
    store: &Store,
    repo: &Repository<'_>,
    digest: &Digest,
    size: u64,
    bytes: Option<&[u8]>,
    shown: Option<&Digest>,
    reporter: &dyn TransferReporter,
) -> Result<(), ImageError> {
    let report = |status: LayerStatus| {
        if let Some(id) = shown {
            reporter.event(TransferEvent::Layer {
                id,
                status: &status,
            });
        }
    };
    let ctx = || transfer(format!("pushing {digest}"));
    if repo.blob_size(digest).map_err(ctx())?.is_some() {
        report(LayerStatus::LayerAlreadyExists);
        return Ok(());
    }
    let mut session = None;
    for source in store.blob_sources(digest)? {
        if source.registry != repo.domain() || source.repository == repo.path() {
            continue;
        }
        match repo
            .start_upload(Some((digest, &source.repository)))
            .map_err(ctx())?
        {
            UploadStart::Mounted => {
                report(LayerStatus::Mounted {
                    from: source.repository.clone(),
                });
                return Ok(());
            }
            UploadStart::Session(s) => {
                session = Some(*s);
                break;
            }
        }
    }
    let key = session_key(repo, digest.as_str());
    let mut attempt = 0;
    let policy = repo_policy(repo);
    loop {
        if session.is_none() {
            if let Some(location) = store.upload_session(&key)? {
                session = repo.resume_upload(&location).map_err(ctx())?;
            }
        }
        let mut upload = match session.take() {
            Some(s) => s,
            None => match repo.start_upload(None).map_err(ctx())? {
                UploadStart::Session(s) => *s,
                UploadStart::Mounted => return Ok(()),
            },
        };
        store.set_upload_session(&key, Some(upload.location()))?;
        let result = (|| -> Result<(), DistributionError> {
            let offset = upload.offset().min(size);
            if let Some(bytes) = bytes.filter(|_| offset == 0 && size <= MONOLITHIC_LIMIT) {
                return upload.finish(digest, bytes);
            }
            let mut file = store
                .content()
                .open(digest)
                .map_err(|e| read_error(digest, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| read_error(digest, e))?;
            let mut progress = Progress {
                inner: file,
                done: offset,
                total: size,
                id: shown,
                reporter,
            };
            send_chunked(
                &mut upload,
                &mut progress,
                Some(size - offset),
                chunk_size(repo),
            )?;
            upload.finish(digest, &[])
        })();
        match result {
            Ok(()) => {
                store.set_upload_session(&key, None)?;
                report(LayerStatus::Pushed);
                return Ok(());
            }
            Err(e) if e.is_transient() && attempt + 1 < policy.attempts => {
                report(LayerStatus::Retrying {
                    attempt: attempt + 1,
                    error: e.to_string(),
                });
                std::thread::sleep(policy.delay(attempt, None));
                attempt += 1;
            }
            Err(e) => {
                // A session the registry refused to complete is useless: start afresh next time.
                if matches!(e, DistributionError::Protocol { .. }) {
                    store.set_upload_session(&key, None)?;
                }
                return Err(ctx()(e));
            }
        }
    }
}

/// The registry's `upload_chunk_size`, if it has one.
fn chunk_size(repo: &Repository<'_>) -> Option<u64> {
    repo.client().config().host(repo.domain()).upload_chunk_size
}

/// Sends `reader` (`len` bytes when known) as one streamed PATCH, or with `chunk` set as
/// PATCHes of at most that many bytes, each with its `Content-Range`.
fn send_chunked(
    upload: &mut strata_distribution::Upload<'_>,
    reader: &mut dyn Read,
    len: Option<u64>,
    chunk: Option<u64>,
) -> Result<(), DistributionError> {
    let Some(chunk) = chunk else {
        return upload.send(reader, len);
    };
    match len {
        Some(mut left) => {
            while left > 0 {
                let n = left.min(chunk);
                upload.send(&mut reader.take(n), Some(n))?;
                left -= n;
            }
        }
        None => {
            // The length of a stream is known only piece by piece: hold one piece at a time.
            let mut piece = Vec::new();
            loop {
                piece.clear();
                reader.take(chunk).read_to_end(&mut piece).map_err(|e| {
                    DistributionError::Protocol {
                        url: upload.location().to_string(),
                        reason: format!("reading the compressed layer: {e}"),
                    }
                })?;
                if piece.is_empty() {
                    break;
                }
                upload.send(&mut &piece[..], Some(piece.len() as u64))?;
            }
        }
    }
    Ok(())
}

fn repo_policy(repo: &Repository<'_>) -> strata_distribution::RetryPolicy {
    repo.client().retry_policy()
}

fn read_error(digest: &Digest, e: impl std::fmt::Display) -> DistributionError {
    DistributionError::Protocol {
        url: digest.to_string(),
        reason: format!("reading the local blob: {e}"),
    }
}

/// Reports upload progress as bytes are read.
struct Progress<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    id: Option<&'a Digest>,
    reporter: &'a dyn TransferReporter,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(id) = self.id {
            self.reporter.event(TransferEvent::Pushing {
                id,
                done: self.done,
                total: (self.total > 0).then_some(self.total),
            });
        }
        Ok(n)
    }
}

/// Compresses an uncompressed layer while uploading it; keeps and remembers the result.
#[allow(clippy::too_many_arguments)]
fn push_compressing(
    store: &Store,
    client: &RegistryClient,
    repo: &Repository<'_>,
    layer: &LayerRecord,
    compression: LayerCompression,
    algorithm: &str,
    level: i32,
    reporter: &dyn TransferReporter,
) -> Result<Outgoing, ImageError> {
    let key = session_key(repo, &format!("{}+{algorithm}-{level}", layer.diff_id));
    let ctx = || transfer(format!("pushing layer {}", layer.diff_id));
    let policy = client.retry_policy();
    let mut attempt = 0;
    loop {
        let mut session = match store.upload_session(&key)? {
            Some(location) => repo.resume_upload(&location).map_err(ctx())?,
            None => None,
        };
        if session.is_none() {
            session = match repo.start_upload(None).map_err(ctx())? {
                UploadStart::Session(s) => Some(*s),
                UploadStart::Mounted => None,
            };
        }
        let Some(mut upload) = session else {
            return Err(ImageError::InvalidImage(
                "the registry answered an upload with a mount".into(),
            ));
        };
        store.set_upload_session(&key, Some(upload.location()))?;
        let skip = upload.offset();
        match compress_and_send(
            store,
            layer,
            compression,
            (algorithm, level),
            &mut upload,
            (skip, chunk_size(repo)),
            reporter,
        ) {
            Ok(blob) => {
                let out = Outgoing {
                    digest: blob.blob.clone(),
                    size: blob.size,
                    compression,
                };
                match upload.finish(&blob.blob, &[]) {
                    Ok(()) => {}
                    Err(DistributionError::Protocol { .. }) => {
                        // What the session held was not the start of these bytes (with a
                        // resumed session, or with `skip` 0 when the registry had not yet
                        // stored what a killed push was still sending when we asked): send
                        // the compressed blob, now stored and verified, through a new session.
                        store.set_upload_session(&key, None)?;
                        push_known_blob(
                            store,
                            repo,
                            &blob.blob,
                            blob.size,
                            None,
                            Some(&layer.diff_id),
                            reporter,
                        )?;
                        return Ok(out);
                    }
                    Err(e) => return Err(ctx()(e)),
                }
                store.set_upload_session(&key, None)?;
                reporter.event(TransferEvent::Layer {
                    id: &layer.diff_id,
                    status: &LayerStatus::Pushed,
                });
                return Ok(out);
            }
            Err(Failed::Upload(e)) if e.is_transient() && attempt + 1 < policy.attempts => {
                reporter.event(TransferEvent::Layer {
                    id: &layer.diff_id,
                    status: &LayerStatus::Retrying {
                        attempt: attempt + 1,
                        error: e.to_string(),
                    },
                });
                std::thread::sleep(policy.delay(attempt, None));
                attempt += 1;
            }
            Err(Failed::Upload(e)) => return Err(ctx()(e)),
            Err(Failed::Local(e)) => return Err(e),
        }
    }
}

enum Failed {
    Upload(DistributionError),
    Local(ImageError),
}

/// Compresses the layer on a second thread into the content store and, skipping the first
/// `skip` bytes the registry already has, into the upload. The compressed blob is remembered
/// as soon as it is complete, before the upload is: a push killed after the registry got
/// the blob finds it by its digest next time instead of compressing and sending it again.
fn compress_and_send(
    store: &Store,
    layer: &LayerRecord,
    compression: LayerCompression,
    (algorithm, level): (&str, i32),
    upload: &mut strata_distribution::Upload<'_>,
    (skip, chunk): (u64, Option<u64>),
    reporter: &dyn TransferReporter,
) -> Result<CompressedBlob, Failed> {
    let codec = match compression {
        LayerCompression::Zstd => strata_layer::Compression::Zstd,
        _ => strata_layer::Compression::Gzip,
    };

    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let compressor = scope.spawn(move || -> Result<CompressedBlob, ImageError> {
            let source = store.content().open(&layer.blob)?;
            let writer = store.content().writer()?;
            let tee = Tee {
                local: writer,
                tx: Some(tx),
                skip,
                buf: Vec::with_capacity(CHUNK),
            };
            let mut enc = strata_layer::CompressWriter::with_level(tee, codec, level)
                .map_err(|e| ImageError::layer("compressing a layer", e))?;
            std::io::copy(
                &mut std::io::BufReader::with_capacity(1 << 20, source),
                &mut enc,
            )
            .map_err(|e| ImageError::io(format!("compressing layer {}", layer.diff_id), e))?;
            let mut tee = enc
                .finish()
                .map_err(|e| ImageError::layer("compressing a layer", e))?;
            tee.flush_chunk()
                .map_err(|e| ImageError::io("handing compressed bytes to the upload", e))?;
            tee.tx = None;
            let (blob, size) = tee.local.commit(None)?;
            let blob = CompressedBlob { blob, size };
            store.record_compressed_blob(&layer.diff_id, algorithm, level, &blob)?;
            Ok(blob)
        });
        let mut reader = Progress {
            inner: ChannelReader::new(rx),
            done: skip,
            total: 0,
            id: Some(&layer.diff_id),
            reporter,
        };
        let sent = send_chunked(upload, &mut reader, None, chunk);
        // If the upload stopped early, the compressor finds its channel closed and stops.
        drop(reader);
        let compressed = compressor
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (sent, compressed) {
            (Err(e), _) => Err(Failed::Upload(e)),
            (Ok(()), Err(e)) => Err(Failed::Local(e)),
            (Ok(()), Ok(blob)) => Ok(blob),
        }
    })
}

/// Writes compressed bytes to the local blob and, past `skip` bytes, to the upload.
struct Tee {
    local: strata_store::BlobWriter,
    tx: Option<SyncSender<Vec<u8>>>,
    skip: u64,
    buf: Vec<u8>,
}

impl Tee {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        if let Some(tx) = &self.tx {
            tx.send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
            })?;
        }
        Ok(())
    }
}

impl Write for Tee {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.local.write_all(data)?;
        let mut rest = data;
        if self.skip > 0 {
            let n = (self.skip as usize).min(rest.len());
            self.skip -= n as u64;
            rest = &rest[n..];
        }
        self.buf.extend_from_slice(rest);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
