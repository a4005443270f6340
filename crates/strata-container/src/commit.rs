//! `commit`: a container's writable layer becomes a new image on top of its image, as
//! `docker commit` makes it: the upper dir written as a deterministic layer tar, the config
//! the container ran with (then `-c` changes), a history entry whose `created_by` is the
//! container's command, the image as parent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use strata_layer::{write_layer, ChangeSource, WriteOptions};
use strata_oci::{
    chain_ids, media_type, to_canonical_json, ConfigShape, ContainerConfig as ImageDefaults,
    Digest, Empty, History, Reference,
};
use strata_store::{DriverKind, ImageRecord, LayerRecord, Store};

use crate::error::ContainerError;
use crate::record::{Container, MountSpec};
use crate::view::running_pid;

/// `commit` flags.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-c`: Dockerfile instructions applied to the new image's config.
    pub changes: Vec<String>,
    /// `-m`.
    pub message: Option<String>,
    /// `-a`.
    pub author: Option<String>,
    /// `-p` (Docker's default: true): freeze a running container while its layer is read.
    pub pause: bool,
    pub tag: Option<Reference>,
}

/// Commits container `c`; returns the new image's ID.
pub fn commit(
    store: &Store,
    c: &Container,
    opts: &CommitOptions,
) -> Result<Digest, ContainerError> {
    // Bad -c lines fail before anything is written.
    strata_image::apply_changes(&mut ImageDefaults::default(), &opts.changes)?;
    if store.driver() == DriverKind::Vfs {
        return Err(ContainerError::Unsupported {
            what:
                "commit with the vfs storage driver (its writable layer is a full copy, not a diff)"
                    .to_owned(),
        });
    }
    let _lease = store.writer_lease()?;
    let image = strata_image::resolve_image(store, c.config.image_id.as_str())?;

    let upper = c.paths().upper;
    let (diff_id, size) = {
        let _frozen = match running_pid(c) {
            Some(_) if opts.pause => Freezer::freeze(&c.id),
            _ => None,
        };
        let mut writer = store.content().writer()?;
        let layer_opts = WriteOptions {
            source: ChangeSource::OverlayUpper,
            mtime_clamp: None,
        };
        write_layer(&upper, &mut writer, &layer_opts)?;
        writer.commit(None)?
    };
    // An upper dir without changes is an empty tar: Docker records no layer for it.
    let empty_layer = size <= 1024 && is_empty_tar(store, &diff_id)?;

    let mut layers = image.record.layers.clone();
    if !empty_layer {
        layers.push(LayerRecord {
            diff_id: diff_id.clone(),
            blob: diff_id.clone(),
            media_type: media_type::OCI_LAYER_TAR.to_owned(),
            blob_size: size,
        });
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain = chain_ids(&diff_ids);
        let top = &chain[chain.len() - 1];
        let parent = chain.len().checked_sub(2).map(|i| &chain[i]);
        let snap = store.snapshotter();
        if !snap.exists(top)? {
            // The upper dir stays the container's: the snapshot is unpacked from the blob.
            let mut tar = store.content().open(&diff_id)?;
            snap.unpack_layer(top, parent, &diff_id, &mut tar)?;
        }
    }

    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let ran_with = container_defaults(c, image.config.config.clone().unwrap_or_default());
    let mut defaults = ran_with.clone();
    strata_image::apply_changes(&mut defaults, &opts.changes)?;
    let mut config = image.config.clone();
    config.author = opts.author.clone().filter(|a| !a.is_empty());
    config.comment = opts.message.clone().filter(|m| !m.is_empty());
    config.created = Some(created.clone());
    config.container = Some(c.id.clone());
    config.container_config = Some(ran_with);
    config.config = Some(defaults);
    config.docker_version = None;
    config.shape = ConfigShape::Docker;
    config.history.push(History {
        created: Some(created.clone()),
        author: config.author.clone(),
        created_by: Some(c.config.cmd.join(" ")),
        comment: config.comment.clone(),
        empty_layer,
        ..History::default()
    });
    if !empty_layer {
        config.rootfs.diff_ids.push(diff_id);
    }
    let bytes = to_canonical_json(&config);
    let (id, _) = store.content().ingest(&bytes[..], None)?;
    let record = ImageRecord {
        id: id.clone(),
        manifest: None,
        layers,
        created: Some(created),
        added_at: chrono::Utc::now().timestamp(),
        parent: Some(image.record.id.clone()),
    };
    let tags: Vec<String> = opts.tag.iter().map(|t| t.to_string()).collect();
    store.put_image(&record, &tags)?;
    Ok(id)
}

/// The runtime defaults the container ran with, as Docker records them in a committed image:
/// the image's, overridden by what the container was created with.
fn container_defaults(c: &Container, mut d: ImageDefaults) -> ImageDefaults {
    let cfg = &c.config;
    d.hostname = cfg.hostname.clone();
    d.user = cfg.user.clone();
    d.tty = cfg.tty;
    d.open_stdin = cfg.interactive;
    d.env = Some(cfg.env.clone()).filter(|e| !e.is_empty());
    d.cmd = Some(cfg.cmd.clone()).filter(|e| !e.is_empty());
    d.entrypoint = Some(cfg.entrypoint.clone()).filter(|e| !e.is_empty());
    d.working_dir = cfg.working_dir.clone();
    d.image = cfg.image.clone();
    d.labels = Some(cfg.labels.clone());
    d.stop_signal = cfg.stop_signal.clone();
    // Published ports are exposed ports of the container (`run -p 8080:80` exposes 80/tcp).
    let mut ports = d.exposed_ports.take().unwrap_or_default();
    for p in &cfg.ports {
        ports.insert(format!("{}/{}", p.container_port, p.protocol), Empty);
    }
    d.exposed_ports = Some(ports).filter(|p| !p.is_empty());
    // Anonymous volumes (`-v /data`) are volumes of the container's config; binds are not.
    let mut volumes = d.volumes.take().unwrap_or_default();
    for m in &cfg.mounts {
        if let MountSpec::Volume {
            destination,
            anonymous: true,
            ..
        } = m
        {
            volumes.insert(destination.clone(), Empty);
        }
    }
    d.volumes = Some(volumes).filter(|v| !v.is_empty());
    d
}

fn is_empty_tar(store: &Store, digest: &Digest) -> Result<bool, ContainerError> {
    let bytes = store.content().read_all(digest)?;
    Ok(bytes.iter().all(|b| *b == 0))
}

/// A frozen cgroup (the `-p` of commit), thawed on drop.
struct Freezer {
    state: PathBuf,
    thawed: &'static str,
}

impl Freezer {
    /// Freezes the container's cgroup (v1 freezer or v2 `cgroup.freeze`); None when this
    /// machine has neither, and the commit goes on unpaused.
    fn freeze(id: &str) -> Option<Freezer> {
        let v1 = PathBuf::from(format!("/sys/fs/cgroup/freezer/strata/{id}/freezer.state"));
        let v2 = PathBuf::from(format!("/sys/fs/cgroup/strata/{id}/cgroup.freeze"));
        let (state, frozen, thawed) = if v1.exists() {
            (v1, "FROZEN", "THAWED")
        } else if v2.exists() {
            (v2, "1", "0")
        } else {
            return None;
        };
        std::fs::write(&state, frozen).ok()?;
        let guard = Freezer { state, thawed };
        // v1 passes through FREEZING; give it a moment to settle.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match std::fs::read_to_string(&guard.state) {
                Ok(s) if s.trim() == frozen => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        Some(guard)
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.state, self.thawed);
    }
}
