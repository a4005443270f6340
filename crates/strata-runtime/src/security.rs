//! How much of Docker's isolation a container gets, and what the user loosened on purpose:
//! capabilities (`--cap-add`/`--cap-drop`, Docker's rules), `--privileged`,
//! no-new-privileges, the seccomp policy and `--device` mappings.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::seccomp::SeccompPolicy;

/// Capability names by number (`linux/capability.h`), up to CAP_CHECKPOINT_RESTORE (40).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby `oci/caps/defaults.go`), in its order.
pub const DEFAULT_CAPABILITY_NAMES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The isolation knobs of one container. The default is Docker's (plus no-new-privileges,
/// which strata sets unless asked not to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// `CAP_…` names the process holds (bounding, effective and permitted sets).
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: SeccompPolicy,
    /// `--privileged`: every host device, `/sys` and `/sys/fs/cgroup` writable, no masked or
    /// read-only paths. (Capabilities and seccomp are chosen by [`Security::docker`].)
    pub privileged: bool,
    /// `--device` mappings, resolved on the host when the container starts.
    pub devices: Vec<DeviceMapping>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            capabilities: DEFAULT_CAPABILITY_NAMES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            no_new_privileges: true,
            seccomp: SeccompPolicy::Default,
            privileged: false,
            devices: Vec::new(),
        }
    }
}

impl Security {
    /// Docker's meaning of `--privileged`, `--cap-add`, `--cap-drop`: privileged gets every
    /// capability and no seccomp filter; otherwise `ALL` in the adds gives everything but the
    /// drops, `ALL` in the drops gives just the adds, else the default set minus the drops
    /// plus the adds. Names may omit `CAP_` and any case is accepted. "Every capability" is
    /// every one the kernel knows that this process can hand on (its bounding set): where
    /// strata itself runs confined, `--privileged` still starts.
    pub fn docker(
        privileged: bool,
        cap_add: &[String],
        cap_drop: &[String],
        seccomp: SeccompPolicy,
    ) -> Result<Self, RuntimeError> {
        let add = normalize_capabilities(cap_add)?;
        let drop = normalize_capabilities(cap_drop)?;
        let grantable = grantable_capabilities();
        let all = || {
            CAPABILITY_NAMES[..=last_capability()]
                .iter()
                .enumerate()
                .filter(move |(number, _)| grantable & (1u64 << number) != 0)
                .map(|(_, c)| (*c).to_owned())
        };
        let defaults = Self::default();
        let capabilities: Vec<String> = if privileged {
            all().collect()
        } else if add.iter().any(|c| c == "ALL") {
            all().filter(|c| !drop.contains(c)).collect()
        } else if drop.iter().any(|c| c == "ALL") {
            add
        } else {
            let mut caps: Vec<String> = defaults
                .capabilities
                .into_iter()
                .filter(|c| !drop.contains(c))
                .collect();
            for c in add {
                if !caps.contains(&c) {
                    caps.push(c);
                }
            }
            caps
        };
        Ok(Self {
            capabilities,
            seccomp: if privileged {
                SeccompPolicy::Unconfined
            } else {
                seccomp
            },
            privileged,
            ..Self::default()
        })
    }
}

/// Upper-cased, `CAP_`-prefixed (except `ALL`), each a capability strata knows.
pub fn normalize_capabilities(names: &[String]) -> Result<Vec<String>, RuntimeError> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(upper);
            }
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if CAPABILITY_NAMES.contains(&full.as_str()) {
                Ok(full)
            } else {
                Err(RuntimeError::UnknownCapability { name: full })
            }
        })
        .collect()
}

/// The highest capability number this kernel knows (and strata names).
fn last_capability() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(CAPABILITY_NAMES.len() - 1)
        .min(CAPABILITY_NAMES.len() - 1)
}

/// This process's bounding set (all bits when it cannot be read).
fn grantable_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .unwrap_or(u64::MAX)
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of `r`, `w`, `m` (read, write, mknod).
    pub permissions: String,
}

impl DeviceMapping {
    /// Parses Docker's `--device` syntax: the second field is the permissions when it looks
    /// like them (`/dev/fuse:rw`), else the container path.
    pub fn parse(text: &str) -> Result<Self, RuntimeError> {
        let invalid = |reason: &str| RuntimeError::InvalidDevice {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [host] => (*host, *host, "rwm"),
            [host, second] if valid_permissions(second) => (*host, *host, *second),
            [host, container] => (*host, *container, "rwm"),
            [host, container, permissions] => {
                if !valid_permissions(permissions) {
                    return Err(invalid("bad mode: give some of r, w and m"));
                }
                (*host, *container, *permissions)
            }
            _ => return Err(invalid("expected HOST[:CONTAINER][:PERMISSIONS]")),
        };
        if host.is_empty() {
            return Err(invalid("the host path is empty"));
        }
        let container = if container.is_empty() {
            host
        } else {
            container
        };
        if !container.starts_with('/') {
            return Err(invalid("the container path must be absolute"));
        }
        Ok(Self {
            path_on_host: host.to_owned(),
            path_in_container: strata_inroot::clean_absolute(container)
                .to_string_lossy()
                .into_owned(),
            permissions: permissions.to_owned(),
        })
    }

    /// The device nodes this mapping gives: the node itself, or every node under a
    /// directory (Docker's rule), with the host's type, numbers, mode and owner.
    pub(crate) fn resolve(&self) -> Result<Vec<DeviceNode>, RuntimeError> {
        let host = Path::new(&self.path_on_host);
        // A symlink (e.g. /dev/disk/by-id/…) stands for what it points at.
        let resolved = std::fs::canonicalize(host).unwrap_or_else(|_| host.to_owned());
        let err = |source| RuntimeError::Device {
            path: host.to_owned(),
            source,
        };
        let meta = std::fs::metadata(&resolved).map_err(err)?;
        if let Some(node) = DeviceNode::from_metadata(
            PathBuf::from(&self.path_in_container),
            &meta,
            &self.permissions,
        ) {
            return Ok(vec![node]);
        }
        let mut nodes = Vec::new();
        if meta.is_dir() {
            collect_devices(
                &resolved,
                Path::new(&self.path_in_container),
                &self.permissions,
                &[],
                &mut nodes,
            );
        }
        if nodes.is_empty() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a device node, nor a directory holding any",
            )));
        }
        Ok(nodes)
    }
}

fn valid_permissions(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && ['r', 'w', 'm']
            .iter()
            .all(|m| text.matches(*m).count() <= 1)
}

/// A device node to create in the container and allow in its devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceNode {
    pub(crate) path: PathBuf,
    /// `'c'` or `'b'`.
    pub(crate) kind: char,
    pub(crate) major: i64,
    pub(crate) minor: i64,
    pub(crate) file_mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) permissions: String,
}

impl DeviceNode {
    fn from_metadata(path: PathBuf, meta: &std::fs::Metadata, permissions: &str) -> Option<Self> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return None;
        };
        let rdev = meta.rdev();
        Some(Self {
            path,
            kind,
            major: i64::from(libc::major(rdev)),
            minor: i64::from(libc::minor(rdev)),
            file_mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            permissions: permissions.to_owned(),
        })
    }
}

/// Every device node under `dir` (not following links), as `target` + the relative path;
/// directories named in `skip` (relative to `dir`) are left out.
fn collect_devices(
    dir: &Path,
    target: &Path,
    permissions: &str,
    skip: &[&str],
    out: &mut Vec<DeviceNode>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            if skip.iter().any(|s| *s == name) {
                continue;
            }
            collect_devices(&entry.path(), &target.join(&name), permissions, &[], out);
        } else if let Some(node) = DeviceNode::from_metadata(target.join(&name), &meta, permissions)
        {
            out.push(node);
        }
    }
}

/// Every device of the host for a privileged container (as runc lists them: `/dev` without
/// the per-container trees `pts`, `shm`, `mqueue` and the console).
pub(crate) fn host_devices() -> Vec<DeviceNode> {
    let mut nodes = Vec::new();
    collect_devices(
        Path::new("/dev"),
        Path::new("/dev"),
        "rwm",
        &["pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev"],
        &mut nodes,
    );
    nodes.retain(|n| n.path != Path::new("/dev/console") && n.path != Path::new("/dev/ptmx"));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn cap_add_and_drop_follow_docker() {
        let s = Security::docker(
            false,
            &caps(&["sys_admin", "CAP_NET_ADMIN"]),
            &caps(&["chown", "Cap_Kill"]),
            SeccompPolicy::Default,
        )
        .unwrap();
        assert!(s.capabilities.contains(&"CAP_SYS_ADMIN".to_owned()));
        assert!(s.capabilities.contains(&"CAP_NET_ADMIN".to_owned()));
        assert!(!s.capabilities.contains(&"CAP_CHOWN".to_owned()));
        assert!(!s.capabilities.contains(&"CAP_KILL".to_owned()));
        assert_eq!(s.seccomp, SeccompPolicy::Default);
        assert!(s.no_new_privileges);

        let only = Security::docker(
            false,
            &caps(&["net_bind_service"]),
            &caps(&["all"]),
            SeccompPolicy::Default,
        )
        .unwrap();
        assert_eq!(only.capabilities, ["CAP_NET_BIND_SERVICE"]);

        let most = Security::docker(
            false,
            &caps(&["ALL"]),
            &caps(&["SYS_ADMIN"]),
            SeccompPolicy::Default,
        )
        .unwrap();
        assert!(most.capabilities.contains(&"CAP_SYS_MODULE".to_owned()));
        assert!(!most.capabilities.contains(&"CAP_SYS_ADMIN".to_owned()));
    }

    #[test]
    fn privileged_gets_every_capability_and_no_seccomp() {
        let s = Security::docker(true, &[], &caps(&["ALL"]), SeccompPolicy::Default).unwrap();
        assert!(s.privileged);
        assert_eq!(s.seccomp, SeccompPolicy::Unconfined);
        assert!(s.capabilities.len() >= 38, "{:?}", s.capabilities);
        assert!(s.capabilities.contains(&"CAP_SYS_ADMIN".to_owned()));
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        let err =
            Security::docker(false, &caps(&["NOPE"]), &[], SeccompPolicy::Default).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_NOPE\"");
    }

    #[test]
    fn device_mappings_parse_like_docker() {
        let cases = [
            ("/dev/fuse", "/dev/fuse", "/dev/fuse", "rwm"),
            ("/dev/fuse:r", "/dev/fuse", "/dev/fuse", "r"),
            ("/dev/sda:/dev/xvda", "/dev/sda", "/dev/xvda", "rwm"),
            ("/dev/sda:/dev/xvda:rw", "/dev/sda", "/dev/xvda", "rw"),
            ("/dev/sda:/dev/./x/../xvda/", "/dev/sda", "/dev/xvda", "rwm"),
        ];
        for (text, host, container, perms) in cases {
            let d = DeviceMapping::parse(text).unwrap();
            assert_eq!(
                (
                    d.path_on_host.as_str(),
                    d.path_in_container.as_str(),
                    d.permissions.as_str()
                ),
                (host, container, perms),
                "{text}"
            );
        }
        for bad in [
            "",
            ":/dev/x",
            "/dev/a:/dev/b:rwx",
            "/dev/a:relative",
            "/dev/a:/b:rw:x",
            "/dev/a:/b:rr",
        ] {
            assert!(DeviceMapping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn devices_resolve_from_the_host() {
        let d = DeviceMapping::parse("/dev/null:/dev/mynull:r").unwrap();
        let nodes = d.resolve().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].path, Path::new("/dev/mynull"));
        assert_eq!((nodes[0].kind, nodes[0].major, nodes[0].minor), ('c', 1, 3));
        assert_eq!(nodes[0].permissions, "r");
        let missing = DeviceMapping::parse("/dev/strata-no-such-device").unwrap();
        assert!(missing.resolve().is_err());
        let regular = DeviceMapping::parse("/etc/hostname").unwrap();
        assert!(regular.resolve().is_err());
    }
}
