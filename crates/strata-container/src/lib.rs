//! strata-container: containers as users see them — `create`, `run`, `ps`, `stop`, `logs`,
//! `rm` and friends — on top of the store (records, snapshots) and the runtime (isolation).
//!
//! It owns the container record (config fixed at create, state changed by every process that
//! touches the container, both JSON in the store's containers table), each container's
//! directory (`<root>/containers/<id>/`: overlay upper and work dirs, mount point, runtime
//! files, `json-file` log, monitor lock), the per-container monitor that runs a detached
//! container and outlives the command that started it, volumes, and the filesystem views of a
//! container (diff, commit, export, cp).
//!
//! Creating a container copies nothing: its root is the image's snapshot chain with the
//! container's own empty upper dir on top, mounted only while it runs, in the monitor's
//! private mount namespace (so no mount outlives a killed monitor). Deleting it deletes only
//! its directory.
//!
//! Must not: isolate processes itself (strata-runtime does), reach into the store's files
//! other than the container directory it is given, print, or report a container as running
//! when no monitor watches it (see [`monitor_alive`]).

mod archive;
mod commit;
mod copy;
mod create;
mod diff;
mod error;
#[cfg(test)]
mod fs_tests;
mod health;
mod init;
mod inspect;
mod lifecycle;
mod log;
mod log_options;
mod monitor;
mod names;
mod network;
mod orphan;
mod path_in_root;
mod record;
mod rootfs;
mod security;
mod top;
mod view;
mod volume;

pub use commit::{commit, CommitOptions};
pub use copy::{
    copy_from_container, copy_from_container_to_tar, copy_into_container, copy_tar_into_container,
    export, CopyOptions,
};
pub use create::{create, create_from, CreateOptions};
pub use diff::{changes, Change, ChangeKind};
pub use error::ContainerError;
pub use health::{
    run_health_checker, Health, HealthOptions, HealthProbe, HealthRequest, HealthStatus, HEALTH_ENV,
};
pub use inspect::inspect_view;
pub use lifecycle::{
    exec_monitor, kill, list, lookup, monitor_alive, monitor_command, parse_signal, prune, reload,
    remove, start, stop, wait, MonitorRequest, MONITOR_ENV,
};
pub use log::{read_log, LogConfig, LogEntry, LogOptions, LogSink, LogStream};
pub use log_options::{
    default_log_config, parse_ram_size, validate_log_setting, LOG_MAX_FILE_SETTING,
    LOG_MAX_SIZE_SETTING,
};
pub use monitor::run_monitor;
pub use names::random_id;
pub use record::{
    Container, ContainerConfig, ContainerPaths, ContainerState, MountSpec, NetworkMode,
    PortBinding, ResourceLimits, RestartPolicy, Status,
};
pub use security::{SecurityConfig, SecurityFlags};
pub use top::{top, ProcessTable};
pub use volume::{ensure_volume, list_volumes, remove_volume, volume_path, Volume};
