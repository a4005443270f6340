//! Pure translation of a [`ContainerSpec`] into an OCI runtime `Spec` with Docker's defaults.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::RuntimeError;
use crate::seccomp::HostPlatform;
use crate::security::{host_devices, DeviceNode};
use crate::spec::{ContainerSpec, Network};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths Docker hides from containers (bind-mounted over with `/dev/null` or an empty tmpfs).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only inside containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CFS period Docker uses to turn `--cpus` into a quota.
const CPU_PERIOD_US: u64 = 100_000;

/// Facts of the host a container's spec depends on, gathered once per start by
/// [`HostFacts::probe`] so that [`oci_spec`] itself stays pure.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub(crate) platform: HostPlatform,
    /// The host's cgroup v1 hierarchies (empty on a cgroup v2 host).
    pub(crate) cgroup_v1: Vec<CgroupHierarchy>,
    /// Whether memory+swap can be limited (`memory.memsw.*` exists).
    pub(crate) swap_limit: bool,
    /// The device nodes the container gets besides the default ones.
    pub(crate) devices: Vec<DeviceNode>,
}

/// A cgroup v1 hierarchy: its mount point's name under `/sys/fs/cgroup` and whether it is a
/// named one (`name=systemd`), which holds no controller and so no cgroup of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupHierarchy {
    pub(crate) name: String,
    pub(crate) named: bool,
}

impl HostFacts {
    /// Reads what `spec` needs from this machine: architecture and kernel, cgroup
    /// hierarchies, swap accounting, and the device nodes it asks for.
    pub fn probe(spec: &ContainerSpec) -> Result<Self, RuntimeError> {
        let mut devices = Vec::new();
        if spec.security.privileged {
            devices.extend(host_devices());
        }
        for mapping in &spec.security.devices {
            for node in mapping.resolve()? {
                devices.retain(|d: &DeviceNode| d.path != node.path);
                devices.push(node);
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup_v1 = cgroup_v1_hierarchies(&mountinfo);
        let swap_limit = if cgroup_v1.is_empty() {
            Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        } else {
            Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        };
        Ok(Self {
            platform: HostPlatform::current(),
            cgroup_v1,
            swap_limit,
            devices,
        })
    }
}

/// Cgroup v1 hierarchies mounted under `/sys/fs/cgroup`, from `/proc/self/mountinfo`.
fn cgroup_v1_hierarchies(mountinfo: &str) -> Vec<CgroupHierarchy> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            if right.next()? != "cgroup" {
                return None;
            }
            let super_options = right.nth(1)?;
            let point = left.split(' ').nth(4)?;
            let name = point.strip_prefix("/sys/fs/cgroup/")?;
            if name.contains('/') {
                return None;
            }
            Some(CgroupHierarchy {
                name: name.to_owned(),
                named: super_options.split(',').any(|o| o.starts_with("name=")),
            })
        })
        .collect()
}

/// Builds the OCI runtime spec libcontainer will run for `spec` on a host described by
/// `host`. Pure: reads and writes nothing.
pub fn oci_spec(spec: &ContainerSpec, host: &HostFacts) -> Result<Spec, RuntimeError> {
    spec.validate()?;
    let oci_err = |source| RuntimeError::OciSpec {
        id: spec.id.clone(),
        source,
    };
    let security = &spec.security;

    let caps = capability_set(&security.capabilities)?;
    // Like Docker since 23.0: nothing inheritable or ambient, so exec as non-root drops them all.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(oci_err)?;

    let user = UserBuilder::default()
        .uid(spec.process.user.uid)
        .gid(spec.process.user.gid)
        .additional_gids(spec.process.user.groups())
        .build()
        .map_err(oci_err)?;

    let mut process = ProcessBuilder::default()
        .terminal(spec.process.terminal)
        .user(user)
        .args(spec.process.args.clone())
        .env(spec.env_with_path())
        .cwd(spec.process.cwd.clone())
        .capabilities(capabilities)
        .build()
        .map_err(oci_err)?;
    // Unset rather than false: libcontainer then loads the seccomp filter while the process
    // still holds CAP_SYS_ADMIN, which a filter without no_new_privs needs. (oci-spec's
    // default would be `true`.)
    process.set_no_new_privileges(security.no_new_privileges.then_some(true));

    let root = RootBuilder::default()
        .path(spec.rootfs.clone())
        .readonly(spec.readonly_rootfs)
        .build()
        .map_err(oci_err)?;

    let mut namespace_types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        // Its own cgroup tree as `/`: the host's hierarchy stays out of sight.
        LinuxNamespaceType::Cgroup,
    ];
    if spec.network != Network::Host {
        namespace_types.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespace_types
        .into_iter()
        .map(|typ| {
            let builder = LinuxNamespaceBuilder::default().typ(typ);
            match &spec.network_namespace {
                Some(path) if typ == LinuxNamespaceType::Network => builder.path(path.clone()),
                _ => builder,
            }
            .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(oci_err)?;

    let (masked, readonly) = if security.privileged {
        (Vec::new(), Vec::new())
    } else {
        let mut masked: Vec<String> = MASKED_PATHS.map(String::from).to_vec();
        let mut readonly: Vec<String> = READONLY_PATHS.map(String::from).to_vec();
        // libcontainer mounts the cgroup hierarchies writable whatever the options say:
        // each is bind-remounted read-only, named ones (no controller, so the host's
        // tree) hidden.
        readonly.push(CGROUP_MOUNT.to_owned());
        for h in &host.cgroup_v1 {
            let path = format!("{CGROUP_MOUNT}/{}", h.name);
            if h.named {
                masked.push(path);
            } else {
                readonly.push(path);
            }
        }
        (masked, readonly)
    };
    let seccomp = security
        .seccomp
        .resolve(&security.capabilities, &host.platform)?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(spec.cgroup_path())
        .resources(resources(spec, host).map_err(oci_err)?)
        .devices(devices(&host.devices).map_err(oci_err)?)
        .masked_paths(masked)
        .readonly_paths(readonly)
        // Docker's `rprivate`; libcontainer spells it "private" (and applies it recursively).
        .rootfs_propagation("private")
        .build()
        .map_err(oci_err)?;
    linux.set_seccomp(seccomp);

    SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .mounts(mounts(spec).map_err(oci_err)?)
        .process(process)
        .hostname(spec.hostname.clone())
        .linux(linux)
        .build()
        .map_err(oci_err)
}

/// Where the container sees its cgroups.
const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// `CAP_…` names as OCI capabilities.
fn capability_set(names: &[String]) -> Result<oci_spec::runtime::Capabilities, RuntimeError> {
    names
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(serde_json::Value::String(name.clone()))
                .map_err(|_| RuntimeError::UnknownCapability { name: name.clone() })
        })
        .collect()
}

/// `'b'` a block device, anything else (`'c'`) a character device.
fn device_type(kind: char) -> LinuxDeviceType {
    if kind == 'b' {
        LinuxDeviceType::B
    } else {
        LinuxDeviceType::C
    }
}

/// The device nodes to create besides libcontainer's defaults.
fn devices(nodes: &[DeviceNode]) -> Result<Vec<LinuxDevice>, oci_spec::OciSpecError> {
    nodes
        .iter()
        .map(|node| {
            LinuxDeviceBuilder::default()
                .path(node.path.clone())
                .typ(device_type(node.kind))
                .major(node.major)
                .minor(node.minor)
                .file_mode(node.file_mode)
                .uid(node.uid)
                .gid(node.gid)
                .build()
        })
        .collect()
}

/// Cgroup resources: Docker's device policy (deny all; libcontainer then allows the default
/// nodes; `--device` nodes allowed with their permissions; everything for `--privileged`)
/// plus the optional limits.
fn resources(
    spec: &ContainerSpec,
    host: &HostFacts,
) -> Result<oci_spec::runtime::LinuxResources, oci_spec::OciSpecError> {
    let device_rules = if spec.security.privileged {
        vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()?]
    } else {
        let mut rules = vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?];
        for node in &host.devices {
            rules.push(
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(device_type(node.kind))
                    .major(node.major)
                    .minor(node.minor)
                    .access(node.permissions.clone())
                    .build()?,
            );
        }
        rules
    };
    let mut builder = LinuxResourcesBuilder::default().devices(device_rules);
    let limits = &spec.limits;
    if let Some(bytes) = limits.memory_bytes {
        let mut memory = LinuxMemoryBuilder::default().limit(bytes);
        if let Some(swap) = limits.memory_swap_bytes.filter(|_| host.swap_limit) {
            memory = memory.swap(swap);
        }
        builder = builder.memory(memory.build()?);
    }
    if let Some(pids) = limits.pids {
        builder = builder.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    if let Some(nano) = limits.nano_cpus {
        let quota = nano.saturating_mul(CPU_PERIOD_US) / 1_000_000_000;
        builder = builder.cpu(
            LinuxCpuBuilder::default()
                .period(CPU_PERIOD_US)
                .quota(i64::try_from(quota).unwrap_or(i64::MAX))
                .build()?,
        );
    }
    builder.build()
}

/// Docker's standard mounts, then the `/etc` files, then the user's bind mounts.
fn mounts(spec: &ContainerSpec) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    let privileged = spec.security.privileged;
    let sys_options: &[&str] = if privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let mut mounts = vec![
        kernel_mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        kernel_mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        kernel_mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        kernel_mount("/sys", "sysfs", "sysfs", sys_options)?,
        // libcontainer mounts each hierarchy (of the container's cgroup namespace) itself;
        // read-only comes from the spec's readonly paths (see `oci_spec`).
        kernel_mount(
            CGROUP_MOUNT,
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime"],
        )?,
        kernel_mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        kernel_mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    let etc_dir = spec.etc_dir();
    let etc = &spec.etc_files;
    for (present, name) in [
        (etc.resolv_conf.is_some(), "resolv.conf"),
        (etc.hostname, "hostname"),
        (etc.hosts.is_some(), "hosts"),
    ] {
        if present {
            mounts.push(bind_mount(
                etc_dir.join(name),
                format!("/etc/{name}"),
                false,
            )?);
        }
    }
    for m in &spec.mounts {
        mounts.push(bind_mount(
            m.source.clone(),
            m.destination.clone(),
            m.readonly,
        )?);
    }
    Ok(mounts)
}

fn kernel_mount(
    destination: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, oci_spec::OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
}

fn bind_mount(
    source: PathBuf,
    destination: String,
    readonly: bool,
) -> Result<Mount, oci_spec::OciSpecError> {
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if readonly {
        options.push("ro".to_owned());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::{BindMount, Limits};

    /// A cgroup v1 hybrid x86-64 host like the one strata is developed on.
    pub(crate) fn host() -> HostFacts {
        let hierarchy = |name: &str, named| CgroupHierarchy {
            name: name.to_owned(),
            named,
        };
        HostFacts {
            platform: HostPlatform {
                arch: "amd64",
                kernel: (6, 1),
            },
            cgroup_v1: vec![
                hierarchy("cpu,cpuacct", false),
                hierarchy("memory", false),
                hierarchy("pids", false),
                hierarchy("systemd", true),
            ],
            swap_limit: true,
            devices: Vec::new(),
        }
    }

    fn spec() -> ContainerSpec {
        ContainerSpec::new(
            "c0ffee",
            "/var/lib/strata/rootfs",
            "/run/strata/c0ffee",
            vec!["sh".into(), "-c".into(), "exit 3".into()],
        )
    }

    fn namespaces(s: &Spec) -> Vec<LinuxNamespaceType> {
        let linux = s.linux().as_ref().unwrap();
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    fn device_rules(s: &Spec) -> &[oci_spec::runtime::LinuxDeviceCgroup] {
        let linux = s.linux().as_ref().unwrap();
        linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_deref()
            .unwrap()
    }

    fn mount_of<'a>(s: &'a Spec, destination: &str) -> Option<&'a Mount> {
        s.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == &PathBuf::from(destination))
    }

    #[test]
    fn namespaces_follow_network_mode() {
        use LinuxNamespaceType as T;
        let cases = [
            (
                Network::None,
                vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::Cgroup, T::Network],
            ),
            (
                Network::Host,
                vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::Cgroup],
            ),
            (
                Network::Bridge,
                vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::Cgroup, T::Network],
            ),
        ];
        for (network, expected) in cases {
            let mut s = spec();
            s.network = network;
            assert_eq!(
                namespaces(&oci_spec(&s, &host()).unwrap()),
                expected,
                "{network:?}"
            );
        }
    }

    #[test]
    fn process_gets_docker_capabilities_and_no_new_privileges() {
        let mut s = spec();
        s.process.user.uid = 1000;
        s.process.user.gid = 1001;
        s.process.user.additional_gids = vec![27, 100];
        let oci = oci_spec(&s, &host()).unwrap();
        let process = oci.process().as_ref().unwrap();
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 1001);
        // Docker's list: the primary group first, always set (even alone).
        assert_eq!(
            process.user().additional_gids().as_deref(),
            Some(&[1001, 27, 100][..])
        );
        let caps = process.capabilities().as_ref().unwrap();
        let expected: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
        assert_eq!(caps.bounding().as_ref(), Some(&expected));
        assert_eq!(caps.effective().as_ref(), Some(&expected));
        assert_eq!(caps.permitted().as_ref(), Some(&expected));
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        assert!(!expected.contains(&Capability::SysAdmin));
        assert_eq!(process.args().as_ref().unwrap()[2], "exit 3");
        assert!(process
            .env()
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("PATH=")));
    }

    #[test]
    fn standard_mounts_are_dockers() {
        let oci = oci_spec(&spec(), &host()).unwrap();
        let table: [(&str, &str, &[&str]); 6] = [
            ("/proc", "proc", &["nosuid", "noexec", "nodev"]),
            ("/dev", "tmpfs", &["nosuid", "mode=755"]),
            ("/dev/pts", "devpts", &["newinstance", "ptmxmode=0666"]),
            ("/sys", "sysfs", &["ro", "nosuid"]),
            ("/dev/mqueue", "mqueue", &["nodev"]),
            ("/dev/shm", "tmpfs", &["mode=1777", "nodev"]),
        ];
        for (destination, typ, options) in table {
            let m = mount_of(&oci, destination).unwrap_or_else(|| panic!("{destination}"));
            assert_eq!(m.typ().as_deref(), Some(typ), "{destination}");
            let have = m.options().as_ref().unwrap();
            for o in options {
                assert!(have.iter().any(|h| h == o), "{destination} lacks {o}");
            }
        }
    }

    #[test]
    fn masked_readonly_and_cgroup_path() {
        let oci = oci_spec(&spec(), &host()).unwrap();
        let linux = oci.linux().as_ref().unwrap();
        let masked = linux.masked_paths().as_ref().unwrap();
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
        ] {
            assert!(masked.iter().any(|m| m == p), "{p} not masked");
        }
        let readonly = linux.readonly_paths().as_ref().unwrap();
        assert_eq!(readonly[..5], READONLY_PATHS.map(String::from));
        assert_eq!(
            readonly[5..],
            [
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/pids"
            ]
        );
        // A named hierarchy holds no cgroup of the container: the host's tree is hidden.
        assert!(masked.iter().any(|m| m == "/sys/fs/cgroup/systemd"));
        assert!(mount_of(&oci, "/sys/fs/cgroup").is_some());
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(std::path::Path::new("/strata/c0ffee"))
        );
        let devices = device_rules(&oci);
        assert_eq!(devices.len(), 1);
        assert!(!devices[0].allow());
    }

    #[test]
    fn etc_files_and_user_mounts_are_binds_from_the_runtime_dir() {
        let mut s = spec();
        s.etc_files.hosts = Some("127.0.0.1 localhost\n".into());
        s.etc_files.resolv_conf = None;
        s.mounts.push(BindMount {
            source: "/srv/data".into(),
            destination: "/data".into(),
            readonly: true,
        });
        let oci = oci_spec(&s, &host()).unwrap();
        let hosts = mount_of(&oci, "/etc/hosts").unwrap();
        assert_eq!(hosts.typ().as_deref(), Some("bind"));
        assert_eq!(
            hosts.source().as_deref(),
            Some(std::path::Path::new("/run/strata/c0ffee/etc/hosts"))
        );
        assert!(mount_of(&oci, "/etc/hostname").is_some());
        assert!(mount_of(&oci, "/etc/resolv.conf").is_none());
        let data = mount_of(&oci, "/data").unwrap();
        assert!(data.options().as_ref().unwrap().iter().any(|o| o == "ro"));
        assert_eq!(
            oci.mounts().as_ref().unwrap().last().unwrap().destination(),
            &PathBuf::from("/data"),
            "user mounts come last so they can shadow standard ones"
        );
    }

    #[test]
    fn limits_map_to_cgroup_resources() {
        let mut s = spec();
        s.limits = Limits {
            memory_bytes: Some(64 << 20),
            memory_swap_bytes: Some(128 << 20),
            pids: Some(50),
            nano_cpus: Some(1_500_000_000),
        };
        let oci = oci_spec(&s, &host()).unwrap();
        let res = oci.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.memory().unwrap().swap(), Some(128 << 20));
        // Without swap accounting the swap limit is left out (Docker warns and does the same).
        let mut no_swap = host();
        no_swap.swap_limit = false;
        let oci = oci_spec(&s, &no_swap).unwrap();
        let res = oci.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().swap(), None);
        let oci = oci_spec(&s, &host()).unwrap();
        let res = oci.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.pids().unwrap().limit(), 50);
        let cpu = res.cpu().as_ref().unwrap();
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.quota(), Some(150_000));

        let none = oci_spec(&spec(), &host()).unwrap();
        let res = none.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert!(res.memory().is_none() && res.pids().is_none() && res.cpu().is_none());
    }

    #[test]
    fn root_hostname_and_readonly_flag() {
        let mut s = spec();
        s.readonly_rootfs = true;
        s.hostname = "builder".into();
        let oci = oci_spec(&s, &host()).unwrap();
        let root = oci.root().as_ref().unwrap();
        assert_eq!(root.path(), &PathBuf::from("/var/lib/strata/rootfs"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(oci.hostname().as_deref(), Some("builder"));
    }

    #[test]
    fn default_security_is_dockers_with_seccomp() {
        let oci = oci_spec(&spec(), &host()).unwrap();
        let seccomp = oci.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        assert_eq!(
            seccomp.default_action(),
            oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
        );
        let sys = mount_of(&oci, "/sys").unwrap();
        assert!(sys.options().as_ref().unwrap().iter().any(|o| o == "ro"));
    }

    #[test]
    fn loosened_security_is_what_was_asked() {
        let mut s = spec();
        s.security = crate::security::Security::docker(
            false,
            &["SYS_ADMIN".into()],
            &[],
            crate::seccomp::SeccompPolicy::Unconfined,
        )
        .unwrap();
        s.security.no_new_privileges = false;
        let oci = oci_spec(&s, &host()).unwrap();
        let process = oci.process().as_ref().unwrap();
        // Unset, not false: libcontainer then loads any filter before dropping capabilities.
        assert_eq!(process.no_new_privileges(), None);
        let caps = process.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(oci.linux().as_ref().unwrap().seccomp().is_none());
    }

    #[test]
    fn privileged_opens_sys_devices_and_paths() {
        let mut s = spec();
        s.security = crate::security::Security::docker(
            true,
            &[],
            &[],
            crate::seccomp::SeccompPolicy::Default,
        )
        .unwrap();
        let mut facts = host();
        facts.devices = vec![DeviceNode {
            path: "/dev/sda".into(),
            kind: 'b',
            major: 8,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
            permissions: "rwm".into(),
        }];
        let oci = oci_spec(&s, &facts).unwrap();
        let linux = oci.linux().as_ref().unwrap();
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
        assert!(linux.seccomp().is_none());
        let sys = mount_of(&oci, "/sys").unwrap();
        assert!(!sys.options().as_ref().unwrap().iter().any(|o| o == "ro"));
        let rules = device_rules(&oci);
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow() && rules[0].major().is_none());
        assert_eq!(linux.devices().as_ref().unwrap()[0].major(), 8);
    }

    #[test]
    fn devices_are_created_and_allowed_with_their_permissions() {
        let mut facts = host();
        facts.devices = vec![DeviceNode {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
            permissions: "rw".into(),
        }];
        let oci = oci_spec(&spec(), &facts).unwrap();
        let linux = oci.linux().as_ref().unwrap();
        let device = &linux.devices().as_ref().unwrap()[0];
        assert_eq!(device.path(), Path::new("/dev/fuse"));
        assert_eq!((device.major(), device.minor()), (10, 229));
        let rules = device_rules(&oci);
        assert_eq!(rules.len(), 2);
        assert!(!rules[0].allow());
        assert!(rules[1].allow());
        assert_eq!((rules[1].major(), rules[1].minor()), (Some(10), Some(229)));
        assert_eq!(rules[1].access().as_deref(), Some("rw"));
    }

    #[test]
    fn cgroup_hierarchies_are_read_from_mountinfo() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/elsewhere rw - cgroup cgroup rw,memory
";
        assert_eq!(
            cgroup_v1_hierarchies(mountinfo),
            [
                CgroupHierarchy {
                    name: "cpu,cpuacct".into(),
                    named: false
                },
                CgroupHierarchy {
                    name: "systemd".into(),
                    named: true
                },
            ]
        );
    }

    #[test]
    fn invalid_spec_is_rejected_before_translation() {
        let mut s = spec();
        s.process.args.clear();
        assert!(matches!(
            oci_spec(&s, &host()),
            Err(RuntimeError::InvalidSpec { .. })
        ));
    }
}
