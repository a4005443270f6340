//! Named and anonymous volumes: directories under `<root>/volumes/<name>/_data` that outlive
//! containers, bind-mounted where a container asks (`-v name:/path`, image `VOLUME`s).
//!
//! A volume exists while its directory does; which containers use one is read from their
//! configs, so there is no second record to keep consistent.

use std::path::{Path, PathBuf};

use strata_store::{Store, StoreDir};

use crate::error::ContainerError;
use crate::lifecycle::list;
use crate::record::MountSpec;

/// One volume on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// The directory containers see.
    pub mountpoint: PathBuf,
    /// Names of the containers whose config mounts it.
    pub used_by: Vec<String>,
}

fn volumes_dir(store: &Store) -> PathBuf {
    store.dir_path(StoreDir::Volumes)
}

/// `<root>/volumes/<name>/_data`.
pub fn volume_path(store: &Store, name: &str) -> PathBuf {
    volumes_dir(store).join(name).join("_data")
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn validate_volume_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidVolumeName(name.to_owned()))
    }
}

/// Creates the volume if missing; returns its data directory.
pub fn ensure_volume(store: &Store, name: &str) -> Result<PathBuf, ContainerError> {
    validate_volume_name(name)?;
    store.private_dir(StoreDir::Volumes)?;
    let path = volume_path(store, name);
    std::fs::create_dir_all(&path).map_err(ContainerError::io("creating volume", &path))?;
    Ok(path)
}

/// Every volume, by name.
pub fn list_volumes(store: &Store) -> Result<Vec<Volume>, ContainerError> {
    let dir = volumes_dir(store);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ContainerError::io("listing", &dir)(e)),
    };
    let containers = list(store)?;
    let mut volumes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ContainerError::io("listing", &dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if validate_volume_name(&name).is_err() {
            continue;
        }
        let used_by = containers
            .iter()
            .filter(|c| uses_volume(&c.config.mounts, &name))
            .map(|c| c.name.clone())
            .collect();
        volumes.push(Volume {
            mountpoint: volume_path(store, &name),
            name,
            used_by,
        });
    }
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(volumes)
}

pub(crate) fn uses_volume(mounts: &[MountSpec], name: &str) -> bool {
    mounts
        .iter()
        .any(|m| matches!(m, MountSpec::Volume { name: n, .. } if n == name))
}

/// Removes a volume no container uses (`force` does not override that, as in Docker).
pub fn remove_volume(store: &Store, name: &str) -> Result<(), ContainerError> {
    validate_volume_name(name)?;
    let dir = volumes_dir(store).join(name);
    if !dir.exists() {
        return Err(ContainerError::VolumeNotFound(name.to_owned()));
    }
    let users: Vec<String> = list(store)?
        .into_iter()
        .filter(|c| uses_volume(&c.config.mounts, name))
        .map(|c| c.short_id().to_owned())
        .collect();
    if !users.is_empty() {
        return Err(ContainerError::VolumeInUse {
            name: name.to_owned(),
            containers: users.join(", "),
        });
    }
    remove_tree(&dir)
}

/// Removes `dir` after first renaming it aside, so a crash midway leaves no half volume under
/// its name.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), ContainerError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let aside = parent.join(format!(".removing-{}", name.unwrap_or_default()));
    match std::fs::rename(dir, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ContainerError::io("removing", dir)(e)),
    }
    std::fs::remove_dir_all(&aside).map_err(ContainerError::io("removing", &aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_docker_rules() {
        for good in ["data", "my-vol_1", "a.b"] {
            assert!(validate_volume_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "-x", "a/b", "../x", ".hidden"] {
            assert!(validate_volume_name(bad).is_err(), "{bad}");
        }
    }
}
