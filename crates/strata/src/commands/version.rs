//! `strata version` and `strata info`: what this binary is and what the machine and store give it,
//! with Docker's field names so `--format '{{.Client.Version}}'`-style scripts keep working.

use std::path::Path;
use strata_exit::ExitStatus;

use serde_json::{json, Value};
use strata_container::{list, Status};
use strata_oci::Platform;

use crate::cli::{GlobalOptions, InfoArgs, VersionArgs};
use crate::failure::Failure;
use crate::render::{human, out, template};

/// Docker's name for the engine's component; podman calls its own "Podman Engine".
const PLATFORM_NAME: &str = "strata";

pub(crate) fn version(a: VersionArgs) -> Result<ExitStatus, Failure> {
    let host = Platform::host();
    let about = json!({
        "Platform": { "Name": PLATFORM_NAME },
        "Version": env!("CARGO_PKG_VERSION"),
        "GitCommit": env!("STRATA_GIT_COMMIT"),
        "RustVersion": env!("STRATA_RUSTC_VERSION"),
        "Os": host.os,
        "Arch": host.architecture,
    });
    // Daemonless: the "server" is this same binary, as with podman; scripts that ask for
    // `.Server.Version` get an answer.
    let data = json!({ "Client": about, "Server": about });
    if let Some(text) = formatted(a.format.as_deref(), &data)? {
        out(&text);
        return Ok(ExitStatus::Success);
    }
    out(&format!(
        "Client: {PLATFORM_NAME}\n Version:         {}\n Git commit:      {}\n Rust version:    {}\n OS/Arch:         {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        env!("STRATA_GIT_COMMIT"),
        env!("STRATA_RUSTC_VERSION"),
        about["Os"].as_str().unwrap_or_default(),
        about["Arch"].as_str().unwrap_or_default(),
    ));
    Ok(ExitStatus::Success)
}

pub(crate) fn info(g: &GlobalOptions, a: InfoArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let containers = list(&store)?;
    let count = |want: &[Status]| {
        containers
            .iter()
            .filter(|c| want.contains(&c.state.status))
            .count()
    };
    let running = count(&[Status::Running, Status::Restarting]);
    let images = store.images()?.len();
    let host = Platform::host();
    let uname = rustix::system::uname();
    let data = json!({
        "ID": "",
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": containers.len() - running,
        "Images": images,
        "Driver": store.driver().to_string(),
        "DockerRootDir": store.root().display().to_string(),
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "DefaultRuntime": "libcontainer",
        "Runtimes": { "libcontainer": { "path": "embedded (youki's libcontainer)" } },
        "NetworkBackend": network_backend(),
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": operating_system(),
        "OSType": host.os,
        "Architecture": host.architecture,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Name": uname.nodename().to_string_lossy(),
    });
    if let Some(text) = formatted(a.format.as_deref(), &data)? {
        out(&text);
        return Ok(ExitStatus::Success);
    }
    let s = |k: &str| match &data[k] {
        Value::String(v) => v.clone(),
        v => v.to_string(),
    };
    out(&format!(
        "Server:\n Containers: {}\n  Running: {}\n  Paused: 0\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Root Dir: {}\n Cgroup Driver: cgroupfs\n Cgroup Version: {}\n Runtime: libcontainer (embedded)\n Network Backend: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n",
        s("Containers"),
        s("ContainersRunning"),
        s("ContainersStopped"),
        s("Images"),
        s("ServerVersion"),
        s("Driver"),
        s("DockerRootDir"),
        s("CgroupVersion"),
        s("NetworkBackend"),
        s("KernelVersion"),
        s("OperatingSystem"),
        s("OSType"),
        s("Architecture"),
        s("NCPU"),
        human::size(data["MemTotal"].as_u64().unwrap_or(0)),
        s("Name"),
    ));
    Ok(ExitStatus::Success)
}

/// `--format`: `json` for the whole object, else a template; `None` for the human layout.
fn formatted(format: Option<&str>, data: &Value) -> Result<Option<String>, Failure> {
    match format {
        None => Ok(None),
        Some("json") => Ok(Some(format!("{data}\n"))),
        Some(t) => {
            let mut text = template::render(t, data).map_err(Failure::new)?;
            text.push('\n');
            Ok(Some(text))
        }
    }
}

/// "2" on a unified hierarchy (cgroup2fs at /sys/fs/cgroup), else "1" (v1 or hybrid).
fn cgroup_version() -> &'static str {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    // `f_type` is i64 on x86_64 but narrower on other architectures.
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.f_type as i64 == CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

/// The bridge network's helper and its version, or that it is missing.
fn network_backend() -> String {
    let version = std::process::Command::new("pasta")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        });
    match version {
        Some(v) => format!("pasta ({v})"),
        None => {
            "pasta (not installed: bridge networking unavailable; apt-get install passt)".into()
        }
    }
}

fn operating_system() -> String {
    let text = std::fs::read_to_string(Path::new("/etc/os-release")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
