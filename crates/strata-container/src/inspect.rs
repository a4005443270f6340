//! `inspect` of a container: Docker's JSON document (the fields tools read), built from the
//! record.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use strata_store::Store;

use crate::record::{Container, MountSpec, Status};
use crate::volume::volume_path;

/// The `docker container inspect` document of `c`.
pub fn inspect_view(store: &Store, c: &Container) -> Value {
    let cfg = &c.config;
    let st = &c.state;
    let paths = c.paths();
    let args = cfg.process_args();
    let created = chrono::DateTime::from_timestamp_nanos(c.created)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let zero_time = "0001-01-01T00:00:00Z";
    let or_zero = |t: &str| {
        if t.is_empty() {
            zero_time.to_owned()
        } else {
            t.to_owned()
        }
    };

    let mut port_bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &cfg.ports {
        port_bindings
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_default()
            .push(json!({
                "HostIp": p.host_ip,
                "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
            }));
    }
    let mut bound: BTreeMap<String, Value> = cfg
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), Value::Null))
        .collect();
    if st.status == Status::Running {
        for p in &st.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            let entry = bound.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({
                    "HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip },
                    "HostPort": p.host_port.to_string(),
                }));
            }
        }
    }
    let mounts: Vec<Value> = cfg
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind {
                source,
                destination,
                readonly,
            } => json!({
                "Type": "bind", "Source": source, "Destination": destination,
                "Mode": if *readonly { "ro" } else { "" }, "RW": !readonly, "Propagation": "rprivate",
            }),
            MountSpec::Volume {
                name,
                destination,
                readonly,
                ..
            } => json!({
                "Type": "volume", "Name": name, "Source": volume_path(store, name),
                "Destination": destination, "Driver": "local",
                "Mode": if *readonly { "ro" } else { "z" }, "RW": !readonly, "Propagation": "",
            }),
        })
        .collect();
    let binds: Vec<String> = cfg
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Bind {
                source,
                destination,
                readonly,
            } => Some(format!(
                "{}:{destination}{}",
                source.display(),
                if *readonly { ":ro" } else { "" }
            )),
            MountSpec::Volume { .. } => None,
        })
        .collect();
    let set = |items: &[String]| -> Value {
        if items.is_empty() {
            Value::Null
        } else {
            Value::Object(items.iter().map(|k| (k.clone(), json!({}))).collect())
        }
    };
    let volumes: Vec<String> = cfg
        .mounts
        .iter()
        .filter(|m| matches!(m, MountSpec::Volume { .. }))
        .map(|m| m.destination().to_owned())
        .collect();
    let mut state = json!({
        "Status": st.status.as_str(),
        "Running": st.status == Status::Running,
        "Paused": false,
        "Restarting": st.status == Status::Restarting,
        "OOMKilled": false,
        "Dead": st.status == Status::Dead,
        "Pid": if st.status == Status::Running { st.pid } else { 0 },
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": or_zero(&st.started_at),
        "FinishedAt": or_zero(&st.finished_at),
    });
    if let (Some(h), Some(map)) = (&st.health, state.as_object_mut()) {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|p| json!({ "Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output }))
            .collect();
        map.insert(
            "Health".into(),
            json!({ "Status": h.status.as_str(), "FailingStreak": h.failing_streak, "Log": log }),
        );
    }
    let sec = &cfg.security;
    let list_or_null = |items: &[String]| {
        if items.is_empty() {
            Value::Null
        } else {
            json!(items)
        }
    };
    let devices: Vec<Value> = sec
        .devices
        .iter()
        .map(|d| {
            json!({
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.permissions,
            })
        })
        .collect();
    let (masked, readonly) = if sec.privileged {
        (Value::Null, Value::Null)
    } else {
        (
            json!(strata_runtime::MASKED_PATHS),
            json!(strata_runtime::READONLY_PATHS),
        )
    };
    json!({
        "Id": c.id,
        "Created": created,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": state,
        "Image": cfg.image_id.as_str(),
        "ResolvConfPath": paths.runtime.join("etc/resolv.conf"),
        "HostnamePath": paths.runtime.join("etc/hostname"),
        "HostsPath": paths.runtime.join("etc/hosts"),
        "LogPath": if cfg.log.enabled { json!(paths.log) } else { json!("") },
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": store.driver().as_str(),
        "Platform": "linux",
        "HostConfig": {
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "NetworkMode": cfg.network.as_str(),
            "PortBindings": port_bindings,
            "RestartPolicy": {
                "Name": cfg.restart.name(),
                "MaximumRetryCount": match cfg.restart {
                    crate::record::RestartPolicy::OnFailure { max_retries } => max_retries,
                    _ => 0,
                },
            },
            "AutoRemove": cfg.auto_remove,
            "ReadonlyRootfs": cfg.read_only,
            "Memory": cfg.limits.memory_bytes.unwrap_or(0),
            "MemorySwap": cfg.limits.memory_swap.unwrap_or(0),
            "NanoCpus": cfg.limits.nano_cpus.unwrap_or(0),
            "PidsLimit": cfg.limits.pids,
            // Docker writes null when --init was not given.
            "Init": if cfg.init { Value::Bool(true) } else { Value::Null },
            "Privileged": sec.privileged,
            "CapAdd": list_or_null(&sec.cap_add),
            "CapDrop": list_or_null(&sec.cap_drop),
            "SecurityOpt": list_or_null(&sec.security_opt),
            "Devices": devices,
            "GroupAdd": list_or_null(&sec.group_add),
            // strata always gives a container its own cgroup namespace.
            "CgroupnsMode": "private",
            "MaskedPaths": masked,
            "ReadonlyPaths": readonly,
            "LogConfig": log_config(&cfg.log),
        },
        "GraphDriver": {
            "Name": store.driver().as_str(),
            "Data": {
                "UpperDir": paths.upper,
                "WorkDir": paths.work,
                "MergedDir": paths.rootfs,
            },
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": "",
            "User": cfg.user,
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "ExposedPorts": set(&cfg.exposed_ports),
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "StdinOnce": false,
            "Env": cfg.env,
            "Cmd": if cfg.cmd.is_empty() { Value::Null } else { json!(cfg.cmd) },
            "Image": cfg.image,
            "Volumes": set(&volumes),
            "WorkingDir": cfg.working_dir,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "OnBuild": Value::Null,
            "Labels": cfg.labels,
            "StopSignal": if cfg.stop_signal.is_empty() { Value::Null } else { json!(cfg.stop_signal) },
            "Healthcheck": cfg.healthcheck,
        },
        "NetworkSettings": {
            "Ports": bound,
        },
    })
}

/// Docker's `HostConfig.LogConfig`: the driver and the options in force, as strings.
fn log_config(log: &crate::log::LogConfig) -> Value {
    if !log.enabled {
        return json!({ "Type": "none", "Config": {} });
    }
    let mut config = serde_json::Map::new();
    if log.max_size > 0 {
        config.insert("max-size".into(), json!(log.max_size.to_string()));
        config.insert("max-file".into(), json!(log.max_file.to_string()));
    }
    json!({ "Type": "json-file", "Config": config })
}
