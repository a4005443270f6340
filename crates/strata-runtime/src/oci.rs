//! Pure translation of a [`ContainerSpec`] into an OCI runtime `Spec` with Docker's defaults.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::error::RuntimeError;
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

/// Builds the OCI runtime spec libcontainer will run. Pure: reads and writes nothing.
pub fn oci_spec(spec: &ContainerSpec) -> Result<Spec, RuntimeError> {
    spec.validate()?;
    let oci_err = |source| RuntimeError::OciSpec {
        id: spec.id.clone(),
        source,
    };

    let caps: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
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
        .additional_gids(spec.process.user.additional_gids.clone())
        .build()
        .map_err(oci_err)?;

    let process = ProcessBuilder::default()
        .terminal(spec.process.terminal)
        .user(user)
        .args(spec.process.args.clone())
        .env(spec.env_with_path())
        .cwd(spec.process.cwd.clone())
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(oci_err)?;

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
    ];
    if spec.network != Network::Host {
        namespace_types.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespace_types
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(oci_err)?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(spec.cgroup_path())
        .resources(resources(spec).map_err(oci_err)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        // Docker's `rprivate`; libcontainer spells it "private" (and applies it recursively).
        .rootfs_propagation("private")
        .build()
        .map_err(oci_err)?;

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

/// Cgroup resources: Docker's device policy (deny all; libcontainer then allows the default
/// nodes) plus the optional limits.
fn resources(
    spec: &ContainerSpec,
) -> Result<oci_spec::runtime::LinuxResources, oci_spec::OciSpecError> {
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let mut builder = LinuxResourcesBuilder::default().devices(vec![deny_all]);
    let limits = &spec.limits;
    if let Some(bytes) = limits.memory_bytes {
        builder = builder.memory(LinuxMemoryBuilder::default().limit(bytes).build()?);
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
        kernel_mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
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
mod tests {
    use super::*;
    use crate::spec::{BindMount, Limits};

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
                vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::Network],
            ),
            (Network::Host, vec![T::Pid, T::Ipc, T::Uts, T::Mount]),
            (
                Network::Bridge,
                vec![T::Pid, T::Ipc, T::Uts, T::Mount, T::Network],
            ),
        ];
        for (network, expected) in cases {
            let mut s = spec();
            s.network = network;
            assert_eq!(namespaces(&oci_spec(&s).unwrap()), expected, "{network:?}");
        }
    }

    #[test]
    fn process_gets_docker_capabilities_and_no_new_privileges() {
        let mut s = spec();
        s.process.user.uid = 1000;
        s.process.user.gid = 1001;
        s.process.user.additional_gids = vec![27, 100];
        let oci = oci_spec(&s).unwrap();
        let process = oci.process().as_ref().unwrap();
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 1001);
        assert_eq!(
            process.user().additional_gids().as_deref(),
            Some(&[27, 100][..])
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
        let oci = oci_spec(&spec()).unwrap();
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
        let oci = oci_spec(&spec()).unwrap();
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
        assert_eq!(
            linux.readonly_paths().as_deref(),
            Some(&READONLY_PATHS.map(String::from)[..])
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(std::path::Path::new("/strata/c0ffee"))
        );
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
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
        let oci = oci_spec(&s).unwrap();
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
            pids: Some(50),
            nano_cpus: Some(1_500_000_000),
        };
        let oci = oci_spec(&s).unwrap();
        let res = oci.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.pids().unwrap().limit(), 50);
        let cpu = res.cpu().as_ref().unwrap();
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.quota(), Some(150_000));

        let none = oci_spec(&spec()).unwrap();
        let res = none.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert!(res.memory().is_none() && res.pids().is_none() && res.cpu().is_none());
    }

    #[test]
    fn root_hostname_and_readonly_flag() {
        let mut s = spec();
        s.readonly_rootfs = true;
        s.hostname = "builder".into();
        let oci = oci_spec(&s).unwrap();
        let root = oci.root().as_ref().unwrap();
        assert_eq!(root.path(), &PathBuf::from("/var/lib/strata/rootfs"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(oci.hostname().as_deref(), Some("builder"));
    }

    #[test]
    fn invalid_spec_is_rejected_before_translation() {
        let mut s = spec();
        s.process.args.clear();
        assert!(matches!(
            oci_spec(&s),
            Err(RuntimeError::InvalidSpec { .. })
        ));
    }
}
