//! `create`: an image plus the user's options → a recorded container with an empty writable
//! layer. Nothing is copied: the container's root is the image's snapshot chain under its own
//! upper dir, mounted only while it runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_image::{ImageSource, LocalImages};
use strata_store::{ContainerRow, Store, StoreError};

use crate::error::ContainerError;
use crate::health::{effective_healthcheck, HealthOptions};
use crate::log::LogConfig;
use crate::names::{generated_name, random_id, validate_name};
use crate::record::{
    to_json, Container, ContainerConfig, ContainerPaths, ContainerState, MountSpec, NetworkMode,
    PortBinding, ResourceLimits, RestartPolicy,
};
use crate::security::{SecurityConfig, SecurityFlags};
use crate::volume::{ensure_volume, remove_volume, validate_volume_name};

/// What the user asked for (`strata create`/`run` flags), before the image's defaults apply.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    /// `--entrypoint`: replaces the image's entrypoint and drops its CMD (Docker's rule);
    /// `Some("")` clears the entrypoint.
    pub entrypoint: Option<String>,
    /// Arguments after the image name: replace the image's CMD when non-empty.
    pub cmd: Vec<String>,
    /// `KEY=value` entries, added to (and overriding) the image's.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub network: NetworkMode,
    pub publish: Vec<PortBinding>,
    /// `-P`: publish every exposed port on a free host port.
    pub publish_all: bool,
    /// `-v` values as given.
    pub volumes: Vec<String>,
    pub read_only: bool,
    pub limits: ResourceLimits,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `--init`: run the command under strata's init, which forwards signals and reaps zombies.
    pub init: bool,
    /// `--privileged`, `--cap-add`, `--cap-drop`, `--security-opt`, `--device`, `--group-add`.
    pub security: SecurityFlags,
    /// `--log-driver` / `--log-opt` (see [`LogConfig::from_options`]).
    pub log: LogConfig,
    /// `--health-*`, `--no-healthcheck`.
    pub health: HealthOptions,
}

/// Records a new container made from `opts.image`, which must be in the store.
pub fn create(store: &Store, opts: &CreateOptions) -> Result<Container, ContainerError> {
    create_from(store, opts, &LocalImages)
}

/// Records a new container made from `opts.image`, found (or pulled) through `images`.
pub fn create_from(
    store: &Store,
    opts: &CreateOptions,
    images: &dyn ImageSource,
) -> Result<Container, ContainerError> {
    if opts.auto_remove && opts.restart != RestartPolicy::No {
        return Err(ContainerError::InvalidOption {
            option: "--restart",
            value: opts.restart.name().to_owned(),
            reason: "conflicts with --rm".to_owned(),
        });
    }
    if opts.network != NetworkMode::Bridge && (!opts.publish.is_empty() || opts.publish_all) {
        return Err(ContainerError::InvalidOption {
            option: "--publish",
            value: opts.network.as_str().to_owned(),
            reason: "ports can only be published on the bridge network".to_owned(),
        });
    }
    let security = SecurityConfig::from_flags(&opts.security)?;
    let limits = ResourceLimits {
        memory_swap: memory_swap(opts.limits.memory_bytes, opts.limits.memory_swap)?,
        ..opts.limits
    };
    // Held until the record exists: from then on the record keeps the image's layers alive.
    let _lease = store.writer_lease()?;
    let image = images.image(store, &opts.image)?;
    let chain_id = store.unpack_image(&image.record)?;
    let defaults = image.config.config.clone().unwrap_or_default();

    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(ep) => {
            let ep = if ep.is_empty() {
                Vec::new()
            } else {
                vec![ep.clone()]
            };
            (ep, opts.cmd.clone())
        }
        None => {
            let cmd = if opts.cmd.is_empty() {
                defaults.cmd.clone().unwrap_or_default()
            } else {
                opts.cmd.clone()
            };
            (defaults.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(ContainerError::InvalidOption {
            option: "COMMAND",
            value: opts.image.clone(),
            reason: "no command specified: the image has no CMD or ENTRYPOINT; give one after the image name".to_owned(),
        });
    }

    let id = random_id()?;
    let exposed_ports: Vec<String> = defaults
        .exposed_ports
        .as_ref()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut ports = opts.publish.clone();
    if opts.publish_all {
        for spec in &exposed_ports {
            let (port, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
            let Ok(container_port) = port.parse::<u16>() else {
                continue;
            };
            if !ports
                .iter()
                .any(|p| p.container_port == container_port && p.protocol == protocol)
            {
                ports.push(PortBinding {
                    host_ip: String::new(),
                    host_port: 0,
                    container_port,
                    protocol: protocol.to_owned(),
                });
            }
        }
    }

    let mut mounts = Vec::new();
    for value in &opts.volumes {
        mounts.push(parse_volume(value)?);
    }
    // Image VOLUMEs not covered by -v get anonymous volumes, as in Docker.
    for destination in defaults.volumes.iter().flat_map(|v| v.keys()) {
        if !mounts
            .iter()
            .any(|m| m.destination() == destination.as_str())
        {
            mounts.push(MountSpec::Volume {
                name: random_id()?,
                destination: destination.clone(),
                readonly: false,
                anonymous: true,
            });
        }
    }

    let mut labels = defaults.labels.clone().unwrap_or_default();
    labels.extend(opts.labels.clone());
    let config = ContainerConfig {
        image: opts.image.clone(),
        image_id: image.record.id.clone(),
        chain_id,
        entrypoint,
        cmd,
        env: merge_env(defaults.env.as_deref().unwrap_or_default(), &opts.env),
        working_dir: opts
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| defaults.working_dir.clone()),
        user: opts.user.clone().unwrap_or_else(|| defaults.user.clone()),
        hostname: opts.hostname.clone().unwrap_or_else(|| id[..12].to_owned()),
        tty: opts.tty,
        interactive: opts.interactive,
        network: opts.network,
        ports,
        mounts,
        read_only: opts.read_only,
        limits,
        restart: opts.restart,
        auto_remove: opts.auto_remove,
        labels,
        stop_signal: opts
            .stop_signal
            .clone()
            .unwrap_or_else(|| defaults.stop_signal.clone()),
        stop_timeout: opts.stop_timeout.or(defaults.stop_timeout),
        exposed_ports,
        init: opts.init,
        security,
        log: opts.log,
        healthcheck: effective_healthcheck(defaults.healthcheck.as_ref(), &opts.health)?,
    };
    // Refused here, as Docker does, rather than by every later `stop` or at start.
    if !config.stop_signal.is_empty() {
        crate::lifecycle::parse_signal(&config.stop_signal)?;
    }
    if let Some(bad) = config
        .env
        .iter()
        .find(|e| e.starts_with('=') || e.is_empty())
    {
        return Err(ContainerError::InvalidOption {
            option: "--env",
            value: bad.clone(),
            reason: "invalid environment variable: a variable needs a name".to_owned(),
        });
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(ContainerError::InvalidOption {
            option: "--workdir",
            value: config.working_dir,
            reason: "the working directory must be an absolute path".to_owned(),
        });
    }

    // Everything is validated: only now touch the disk, and undo it if the record fails.
    create_mount_sources(store, &config.mounts)?;
    let dir = store.container_dir(&id);
    let paths = ContainerPaths::new(&dir);
    let recorded = [&paths.upper, &paths.work, &paths.rootfs, &paths.runtime]
        .into_iter()
        .try_for_each(|d| std::fs::create_dir_all(d).map_err(ContainerError::io("creating", d)))
        .and_then(|()| record(store, &id, opts.name.as_deref(), &config));
    if recorded.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
        for mount in &config.mounts {
            if let MountSpec::Volume {
                name,
                anonymous: true,
                ..
            } = mount
            {
                let _ = remove_volume(store, name);
            }
        }
    }
    let (name, created) = recorded?;
    Ok(Container {
        id,
        name,
        created,
        config,
        state: ContainerState::default(),
        dir,
    })
}

/// Inserts the record, picking a free generated name when none was given.
fn record(
    store: &Store,
    id: &str,
    name: Option<&str>,
    config: &ContainerConfig,
) -> Result<(String, i64), ContainerError> {
    let config_json = to_json(id, config)?;
    let state_json = to_json(id, &ContainerState::default())?;
    let created = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let given = name.map(validate_name).transpose()?;
    for attempt in 0..100 {
        let name = match &given {
            Some(n) => n.clone(),
            None => generated_name(id, attempt),
        };
        let row = ContainerRow {
            id: id.to_owned(),
            name: name.clone(),
            image_id: config.image_id.clone(),
            created,
            state: state_json.clone(),
            config: config_json.clone(),
        };
        match store.insert_container(&row) {
            Ok(()) => return Ok((name, created)),
            Err(StoreError::ContainerNameInUse { .. }) if given.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ContainerError::InvalidOption {
        option: "--name",
        value: String::new(),
        reason: "could not find a free generated name; give one with --name".to_owned(),
    })
}

/// Docker's memory+swap rules: twice the memory unless `--memory-swap` is given (0 counts as
/// not given), -1 for unlimited swap, never less than the memory, never without a memory
/// limit.
fn memory_swap(memory: Option<i64>, swap: Option<i64>) -> Result<Option<i64>, ContainerError> {
    let invalid = |reason: &str| ContainerError::InvalidOption {
        option: "--memory-swap",
        value: swap.map(|s| s.to_string()).unwrap_or_default(),
        reason: reason.to_owned(),
    };
    match (memory, swap.filter(|s| *s != 0)) {
        (_, Some(s)) if s < -1 => Err(invalid("give a size, or -1 for unlimited swap")),
        (None, Some(-1)) | (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(
            "you should always set the memory limit when using memoryswap limit, see usage",
        )),
        (Some(m), None) => Ok(Some(m.saturating_mul(2))),
        (Some(m), Some(s)) if s != -1 && s < m => Err(invalid(
            "minimum memoryswap limit should be larger than memory limit, see usage",
        )),
        (Some(_), Some(s)) => Ok(Some(s)),
    }
}

/// Image env, then the user's: a user `KEY=…` replaces the image's `KEY`.
fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut out: Vec<String> = image.to_vec();
    for entry in user {
        let k = key(entry);
        out.retain(|e| key(e) != k);
        out.push(entry.clone());
    }
    out
}

/// Docker creates a missing host directory of `-v` and a missing named volume when the
/// container is created.
fn create_mount_sources(store: &Store, mounts: &[MountSpec]) -> Result<(), ContainerError> {
    for mount in mounts {
        match mount {
            MountSpec::Bind { source, .. } => std::fs::create_dir_all(source)
                .map_err(ContainerError::io("creating bind source", source))?,
            MountSpec::Volume { name, .. } => {
                ensure_volume(store, name)?;
            }
        }
    }
    Ok(())
}

/// `-v /host:/ctr[:ro]`, `-v name:/ctr[:ro]`, `-v /ctr` (anonymous); checks only, nothing
/// is created here.
fn parse_volume(value: &str) -> Result<MountSpec, ContainerError> {
    let bad = |reason: &str| ContainerError::InvalidOption {
        option: "--volume",
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [dst] => (None, *dst, ""),
        [src, dst] => (Some(*src), *dst, ""),
        [src, dst, opts] => (Some(*src), *dst, *opts),
        _ => return Err(bad("expected [SOURCE:]DESTINATION[:ro|rw]")),
    };
    if !destination.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mut readonly = false;
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling and propagation hints: nothing to do here.
            "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "nocopy" | "consistent" | "cached" | "delegated" => {}
            _ => return Err(bad("unknown option; use ro or rw")),
        }
    }
    let destination = destination.trim_end_matches('/').to_owned();
    let destination = if destination.is_empty() {
        return Err(bad("cannot mount over /"));
    } else {
        destination
    };
    match source {
        Some(src) if src.starts_with('/') => Ok(MountSpec::Bind {
            source: PathBuf::from(src),
            destination,
            readonly,
        }),
        Some(name) => {
            if name.starts_with('.') || name.contains('/') {
                return Err(bad("a bind-mount source must be an absolute path"));
            }
            validate_volume_name(name)?;
            Ok(MountSpec::Volume {
                name: name.to_owned(),
                destination,
                readonly,
                anonymous: false,
            })
        }
        None => Ok(MountSpec::Volume {
            name: random_id()?,
            destination,
            readonly,
            anonymous: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_swap_follows_docker() {
        let mb = |n: i64| n << 20;
        assert_eq!(memory_swap(Some(mb(64)), None).unwrap(), Some(mb(128)));
        assert_eq!(memory_swap(Some(mb(64)), Some(0)).unwrap(), Some(mb(128)));
        assert_eq!(memory_swap(Some(mb(64)), Some(-1)).unwrap(), Some(-1));
        assert_eq!(
            memory_swap(Some(mb(64)), Some(mb(64))).unwrap(),
            Some(mb(64))
        );
        assert_eq!(
            memory_swap(Some(mb(64)), Some(mb(256))).unwrap(),
            Some(mb(256))
        );
        assert_eq!(memory_swap(None, None).unwrap(), None);
        assert_eq!(memory_swap(None, Some(-1)).unwrap(), None);
        let err = memory_swap(Some(mb(64)), Some(mb(32))).unwrap_err();
        assert!(err
            .to_string()
            .contains("should be larger than memory limit"));
        let err = memory_swap(None, Some(mb(32))).unwrap_err();
        assert!(err.to_string().contains("always set the memory limit"));
        assert!(memory_swap(Some(mb(64)), Some(-2)).is_err());
    }

    #[test]
    fn user_env_overrides_image_env() {
        let image = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let user = vec!["A=2".to_owned(), "B=3".to_owned()];
        assert_eq!(merge_env(&image, &user), ["PATH=/bin", "A=2", "B=3"]);
    }
}
