//! `strata run` and `strata create`: flags → `CreateOptions`, then a detached start (`-d`) or
//! this process becoming the container's monitor (a foreground run), as `docker run` behaves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_exit::ExitStatus;

use strata_container::{
    create_from as create_container, default_log_config, exec_monitor, monitor_command,
    parse_ram_size, start, Container, ContainerError, CreateOptions, HealthOptions, LogConfig,
    NetworkMode, PortBinding, ResourceLimits, RestartPolicy, SecurityFlags,
};
use strata_image::{LocalImages, PullPolicy, RegistryImages};
use strata_oci::Platform;
use strata_store::Store;

use super::transfer_view::{Stream, TransferView};

use crate::cli::{ContainerOptions, CreateArgs, GlobalOptions, RunArgs};
use crate::failure::{strata_failed, Failure};
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: RunArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g).map_err(strata_failed)?;
    let (image, command) = a.target.split();
    let container = create_from(&store, &a.options, image, command)?;
    let program = current_exe()?;
    if a.detach {
        start(&store, &container, &program).map_err(start_failure)?;
        out(&format!("{}\n", container.id));
        return Ok(ExitStatus::Success);
    }
    // Foreground: this process becomes the monitor, so the terminal, the signals and the
    // exit code are the container's with nothing in between.
    let command = monitor_command(&program, &store, &container.id, true);
    drop(store);
    Err(strata_failed(Failure::from(exec_monitor(command))))
}

pub(crate) fn create_cmd(g: &GlobalOptions, a: CreateArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g).map_err(strata_failed)?;
    let (image, command) = a.target.split();
    let container = create_from(&store, &a.options, image, command)?;
    out(&format!("{}\n", container.id));
    Ok(ExitStatus::Success)
}

fn create_from(
    store: &Store,
    o: &ContainerOptions,
    image: String,
    command: Vec<String>,
) -> Result<Container, Failure> {
    let log_defaults = default_log_config(store).map_err(|e| strata_failed(Failure::from(e)))?;
    let log = LogConfig::from_options(o.log_driver.as_deref(), &o.log_opt, log_defaults)
        .map_err(|e| strata_failed(Failure::from(e)))?;
    let opts = create_options(o, image, command, log).map_err(strata_failed)?;
    let policy: PullPolicy = o.pull.parse().map_err(|e| strata_failed(Failure::new(e)))?;
    if policy == PullPolicy::Never {
        return create_container(store, &opts, &LocalImages)
            .map_err(|e| strata_failed(Failure::from(e)));
    }
    let client = super::registry_client().map_err(strata_failed)?;
    let view = TransferView::new(Stream::Stderr, o.quiet);
    let images = RegistryImages {
        client: &client,
        policy,
        platform: None,
        reporter: &view,
    };
    create_container(store, &opts, &images).map_err(|e| strata_failed(Failure::from(e)))
}

/// The strata binary, to re-execute as a monitor.
pub(crate) fn current_exe() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|e| strata_failed(Failure::new(format!("finding the strata executable: {e}"))))
}

/// A start that failed: Docker's status for why (126 not executable, 127 not found, else 125).
pub(crate) fn start_failure(e: ContainerError) -> Failure {
    let status = e.exit_status();
    Failure::from(e).with_status(status)
}

fn create_options(
    o: &ContainerOptions,
    image: String,
    command: Vec<String>,
    log: LogConfig,
) -> Result<CreateOptions, Failure> {
    if let Some(p) = &o.platform {
        Platform::host_only(p)?;
    }
    let network: NetworkMode = o.network.parse().map_err(Failure::from)?;
    let mut env = Vec::new();
    for file in &o.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(o.env.iter().filter_map(|e| env_entry(e)));
    let mut publish = Vec::new();
    for value in &o.publish {
        let mappings = strata_runtime::parse_publish(value).map_err(Failure::from)?;
        publish.extend(mappings.iter().map(PortBinding::from));
    }
    let mut labels = BTreeMap::new();
    for label in &o.label {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let memory_bytes = o.memory.as_deref().map(parse_memory).transpose()?;
    let memory_swap = o
        .memory_swap
        .as_deref()
        .map(|text| match text.trim() {
            "-1" => Ok(-1),
            text => parse_size("--memory-swap", text),
        })
        .transpose()?;
    let nano_cpus = match o.cpus {
        None => None,
        Some(c) if c > 0.0 && c.is_finite() => Some((c * 1e9).round() as u64),
        Some(c) => {
            return Err(Failure::new(format!(
                "invalid --cpus value {c}: give a positive number such as 0.5 or 2"
            )))
        }
    };
    Ok(CreateOptions {
        image,
        name: o.name.clone(),
        entrypoint: o.entrypoint.clone(),
        cmd: command,
        env,
        working_dir: o.workdir.clone(),
        user: o.user.clone(),
        hostname: o.hostname.clone(),
        tty: o.tty,
        interactive: o.interactive,
        network,
        publish,
        publish_all: o.publish_all,
        volumes: o.volume.clone(),
        read_only: o.read_only,
        limits: ResourceLimits {
            memory_bytes,
            memory_swap,
            nano_cpus,
            pids: o.pids_limit.filter(|p| *p > 0),
        },
        restart: o.restart.parse::<RestartPolicy>().map_err(Failure::from)?,
        auto_remove: o.rm,
        labels,
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        init: o.init,
        security: SecurityFlags {
            privileged: o.privileged,
            cap_add: o.cap_add.clone(),
            cap_drop: o.cap_drop.clone(),
            security_opt: o.security_opt.clone(),
            devices: o.device.clone(),
            group_add: o.group_add.clone(),
        },
        log,
        health: HealthOptions {
            cmd: o.health_cmd.clone(),
            interval: health_duration("--health-interval", o.health_interval.as_deref())?,
            timeout: health_duration("--health-timeout", o.health_timeout.as_deref())?,
            start_period: health_duration(
                "--health-start-period",
                o.health_start_period.as_deref(),
            )?,
            retries: o.health_retries,
            disabled: o.no_healthcheck,
        },
    })
}

/// A `--health-*` duration (Go's syntax, `30s`, `1m30s`) in nanoseconds.
fn health_duration(option: &str, value: Option<&str>) -> Result<Option<i64>, Failure> {
    value
        .map(|v| {
            strata_dockerfile::parse_go_duration(v)
                .map_err(|e| Failure::new(format!("invalid {option} value {v:?}: {e}")))
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        })
        .transpose()
}

/// `KEY=value` as given; a bare `KEY` takes this process's value, or is dropped (Docker).
fn env_entry(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_owned());
    }
    std::env::var(entry).ok().map(|v| format!("{entry}={v}"))
}

/// Docker's env-file: one `KEY=value` (taken verbatim) or `KEY` per line, `#` comments.
fn read_env_file(path: &PathBuf) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        strata_failed(Failure::new(format!(
            "reading env file {}: {e}",
            path.display()
        )))
    })?;
    let mut env = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(strata_failed(Failure::new(format!(
                "env file {} line {}: {key:?} is not a valid variable name",
                path.display(),
                n + 1
            ))));
        }
        env.extend(env_entry(line));
    }
    Ok(env)
}

/// `--memory`: a size of at least 6 MiB (Docker's minimum).
fn parse_memory(text: &str) -> Result<i64, Failure> {
    let bytes = parse_size("--memory", text)?;
    if bytes < 6 << 20 {
        return Err(Failure::new(format!(
            "invalid --memory value {text:?}: the minimum memory limit is 6m"
        )));
    }
    Ok(bytes)
}

/// `512m`, `1g`, `100000` (bytes), as Docker's RAMInBytes.
fn parse_size(option: &str, text: &str) -> Result<i64, Failure> {
    let bytes = parse_ram_size(text).ok_or_else(|| {
        Failure::new(format!(
            "invalid {option} value {text:?}: give a number with an optional unit b, k, m or g (e.g. 512m)"
        ))
    })?;
    i64::try_from(bytes)
        .map_err(|_| Failure::new(format!("invalid {option} value {text:?}: too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_docker() {
        for (text, bytes) in [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("1gb", 1 << 30),
            ("10485760", 10 << 20),
            ("7mb", 7 << 20),
        ] {
            assert_eq!(parse_memory(text).ok(), Some(bytes), "{text}");
        }
        for bad in ["", "m", "12x", "-1g", "1k"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bare_env_names_take_this_process_value_or_vanish() {
        assert_eq!(env_entry("A=1").as_deref(), Some("A=1"));
        assert_eq!(env_entry("A=").as_deref(), Some("A="));
        assert!(env_entry("STRATA_SURELY_UNSET_VARIABLE").is_none());
        let path = std::env::var("PATH").unwrap();
        assert_eq!(env_entry("PATH"), Some(format!("PATH={path}")));
    }
}
