//! strata-runtime: runs a process in an isolated container, with Docker's default isolation.
//!
//! It owns the translation of strata's [`ContainerSpec`] into an OCI runtime spec (new mount,
//! pid, uts, ipc and — unless host networking — net namespaces with `lo` up (and, for the
//! bridge network, a `pasta` process giving it outbound TCP/UDP and published ports); `/proc` with
//! Docker's masked and read-only paths; a tmpfs `/dev` with the minimal nodes, `/dev/pts`,
//! `/dev/shm`, `/dev/mqueue`; read-only `/sys` and no cgroupfs; Docker's default capability set;
//! no-new-privileges; a `/strata/<id>` cgroup with optional limits), `USER` resolution against
//! the image's own passwd/group files ([`resolve_user`]), and the create → start → wait → delete
//! cycle ([`run`]; [`run_observed`] reports creation, start and live output to a
//! [`RunObserver`], as the per-container monitor needs). A process may get a pseudo-terminal
//! (`ProcessSpec::terminal`): libcontainer sends us its master over a console socket and we
//! proxy it (raw mode, window size, stdin). [`exec`] runs another process in a container that
//! some other process is running. A [`SharedNetwork`] is one bridge-like namespace and its
//! pasta that many short-lived containers join in turn (a build's RUN steps,
//! `ContainerSpec::network_namespace`).
//!
//! It must never mount or unpack image layers (the caller hands it a ready rootfs: this crate
//! does not depend on strata-store), never print, and never leave a cgroup, runtime state, a `pasta`
//! process or a mount point it had to create (`/proc`, `/etc/hosts`, a `-v` target…) behind once [`run`]
//! returns: on an overlay those would otherwise land in the upper dir, i.e. in a layer.
//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` are bind-mounted from the
//! per-container directory for the same reason.
//!
//! # Why youki's libcontainer
//! The machines strata targets include cgroup v1 hybrid hosts without systemd, where crun 1.8
//! fails; strata must need no external runtime binary. libcontainer 0.7 (embedded, features
//! `v1` + `v2`, systemd off, cgroups path `/strata/<id>`) works on such a host, does the /dev,
//! capability, masked-path and cgroup work a hand-written clone + pivot_root would have to
//! redo, and costs ≈7 ms per `true` container. Its price: it clones with raw `clone3`, runs
//! Rust in the child and `chdir`s the process, so it must be driven from a single-threaded
//! process. [`run`] checks that; multi-threaded callers (the builder, the test harness)
//! re-execute themselves as a helper with [`helper_command`], and the helper calls
//! [`helper_spec_from_env`] then [`run_in_helper`] (for exec:
//! [`exec_helper_command`], [`exec_request_from_env`], [`exec_in_helper`]).
//!
//! ```no_run
//! # fn main() -> Result<(), strata_runtime::RuntimeError> {
//! use strata_runtime::{run, ContainerSpec, OutputMode};
//! let mut spec = ContainerSpec::new(
//!     "c1",
//!     "/var/lib/strata/mnt/c1",
//!     "/run/strata/containers/c1",
//!     vec!["echo".into(), "hi".into()],
//! );
//! spec.stdio.stdout = OutputMode::Capture;
//! let out = run(&spec)?; // in a single-threaded process
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok(()) }
//! ```

mod bundle;
mod error;
mod exec;
mod executor;
mod helper;
mod loopback;
mod mount_stubs;
mod network;
mod observer;
mod oci;
mod pasta;
mod run;
mod seccomp;
mod seccomp_default;
mod security;
mod shared_network;
mod spec;
mod stdio;
mod supervise;
mod terminal;
mod user;

pub use error::RuntimeError;
pub use exec::{exec, ExecSpec};
pub use helper::{
    exec_helper_command, exec_in_helper, exec_request_from_env, helper_command,
    helper_spec_from_env, run_in_helper, ExecRequest, EXEC_HELPER_ENV, HELPER_PARENT_ENV,
    HELPER_SPEC_ENV,
};
pub use network::{
    allocate_host_ports, parse_publish, PortMapping, Protocol, BRIDGE_ADDRESS, BRIDGE_GATEWAY,
    BRIDGE_PREFIX_LEN,
};
pub use observer::{ObserverError, OutputStream, RunObserver};
pub use oci::{oci_spec, HostFacts, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};
pub use run::{run, run_observed, run_observed_watching_parent, RunOutput, Termination};
pub use seccomp::{SeccompPolicy, SeccompProfileError};
pub use security::{
    normalize_capabilities, DeviceMapping, Security, CAPABILITY_NAMES, DEFAULT_CAPABILITY_NAMES,
};
pub use shared_network::SharedNetwork;
pub use spec::{
    BindMount, ContainerSpec, EtcFiles, InputMode, Limits, Network, OutputMode, ProcessSpec,
    StdioSpec, User, DEFAULT_PATH_ENV, LOOPBACK_HOSTS, TERMINAL_TERM_ENV,
};
pub use user::{resolve_groups, resolve_groups_in, resolve_user, resolve_user_in, ResolvedUser};
