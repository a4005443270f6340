//! A container's network as the runtime needs it: strata's `--network` mode → the runtime's
//! namespace choice, and `-p`/`-P` → published ports with every host port chosen (a `-P` port
//! gets a free one when the container starts; the ports actually bound are recorded in the
//! state for `ps`, `inspect` and `port`).

use std::net::IpAddr;

use strata_runtime::{allocate_host_ports, ContainerSpec, Network, PortMapping, Protocol};
use strata_store::Store;

use crate::error::ContainerError;
use crate::lifecycle::update_state;
use crate::record::{Container, NetworkMode, PortBinding};

pub(crate) fn runtime_network(mode: NetworkMode) -> Network {
    match mode {
        NetworkMode::Bridge => Network::Bridge,
        NetworkMode::Host => Network::Host,
        NetworkMode::None => Network::None,
    }
}

/// Sets `spec.ports` from the container's published ports, choosing free host ports for
/// `-P`, and records the result.
pub(crate) fn apply_ports(
    spec: &mut ContainerSpec,
    store: &Store,
    c: &Container,
) -> Result<(), ContainerError> {
    if c.config.network != NetworkMode::Bridge {
        return Ok(());
    }
    let mut ports = c
        .config
        .ports
        .iter()
        .map(to_mapping)
        .collect::<Result<Vec<_>, _>>()?;
    allocate_host_ports(&mut ports)?;
    let bound: Vec<PortBinding> = ports.iter().map(PortBinding::from).collect();
    update_state(store, &c.id, |s| s.ports = bound.clone())?;
    spec.ports = ports;
    Ok(())
}

fn to_mapping(p: &PortBinding) -> Result<PortMapping, ContainerError> {
    let bad = |reason: &str| ContainerError::InvalidOption {
        option: "--publish",
        value: p.display(),
        reason: reason.to_owned(),
    };
    let host_ip = if p.host_ip.is_empty() {
        None
    } else {
        Some(
            p.host_ip
                .parse::<IpAddr>()
                .map_err(|_| bad("invalid host address"))?,
        )
    };
    let protocol = match p.protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(bad("only tcp and udp can be published")),
    };
    Ok(PortMapping {
        host_ip,
        host_port: p.host_port,
        container_port: p.container_port,
        protocol,
    })
}

impl From<&PortMapping> for PortBinding {
    fn from(m: &PortMapping) -> Self {
        Self {
            host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: m.host_port,
            container_port: m.container_port,
            protocol: m.protocol.as_str().to_owned(),
        }
    }
}
