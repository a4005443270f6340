//! Bridge networking's data: published ports (`-p` parsing, free-port allocation) and the `/etc` files of a bridged container.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// The container's IPv4 address on the bridge network (the same in every container: each has
/// its own namespace, and pasta carries traffic at the socket level, so addresses never meet).
pub const BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The container's default gateway: pasta itself (not mapped to the host's loopback).
pub const BRIDGE_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// Prefix length of [`BRIDGE_ADDRESS`].
pub const BRIDGE_PREFIX_LEN: u8 = 16;

/// Docker's fallback resolvers when the host has none the container can reach.
const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// A published port: `host_ip:host_port` on the host forwards to `container_port` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `None` is every IPv4 address (Docker's `0.0.0.0`).
    pub host_ip: Option<IpAddr>,
    /// Host port; 0 means "any free port" and must be resolved with [`allocate_host_ports`]
    /// before the container runs (pasta cannot report a port it picked).
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// Transport protocol of a [`PortMapping`] (pasta forwards TCP and UDP; no SCTP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl std::fmt::Display for PortMapping {
    /// Docker's `docker port` form: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        write!(
            f,
            "{}/{} -> {}",
            self.container_port,
            self.protocol.as_str(),
            SocketAddr::new(ip, self.host_port)
        )
    }
}

/// Parses one `-p`/`--publish` value as Docker does:
/// `[ip:][hostPort:]containerPort[/tcp|/udp]`, where either port may be a range
/// (`8000-8001:80-81`; a host range must be as long as the container range), an IPv6 address
/// is written in brackets (`[::1]:8080:80`), and a missing or empty host port means
/// "any free port" (host_port 0).
pub fn parse_publish(value: &str) -> Result<Vec<PortMapping>, RuntimeError> {
    let invalid = |reason: &str| RuntimeError::InvalidPublish {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let (rest, protocol) = match value.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, other)) => {
            return Err(invalid(&format!(
                "unsupported protocol {other:?} (tcp or udp)"
            )))
        }
        None => (value, Protocol::Tcp),
    };
    let (ip, ports) = split_ip(rest).map_err(|reason| invalid(&reason))?;
    let (host, container) = match ports.rsplit_once(':') {
        Some((host, container)) => (host, container),
        None => ("", ports),
    };
    if ip.is_some() && host.contains(':') {
        return Err(invalid("too many colons"));
    }
    let host_ip = match ip {
        Some("") | None => None,
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| invalid(&format!("invalid host address {text:?}")))?,
        ),
    };
    if host.contains(':') {
        return Err(invalid("too many colons"));
    }
    let container_range = parse_range(container, false).map_err(|reason| invalid(&reason))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host, true).map_err(|reason| invalid(&reason))?)
    };
    let count = container_range.1 - container_range.0 + 1;
    if let Some((start, end)) = host_range {
        if (start == 0) != (end == 0) || end - start + 1 != count {
            return Err(invalid(
                "the host port range must be as long as the container port range",
            ));
        }
    }
    Ok((0..count)
        .map(|offset| PortMapping {
            host_ip,
            host_port: host_range.map_or(
                0,
                |(start, _)| {
                    if start == 0 {
                        0
                    } else {
                        start + offset
                    }
                },
            ),
            container_port: container_range.0 + offset,
            protocol,
        })
        .collect())
}

/// Splits `ip:ports` off a publish value: `[v6]:…`, `v4:h:c`, or no address (`h:c`, `c`).
fn split_ip(rest: &str) -> Result<(Option<&str>, &str), String> {
    if let Some(bracketed) = rest.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in the host address".to_owned())?;
        let ports = after
            .strip_prefix(':')
            .ok_or_else(|| "expected ':' after the host address".to_owned())?;
        return Ok((Some(ip), ports));
    }
    // Three parts: ip:host:container. Two or one: no address.
    match rest.matches(':').count() {
        0 | 1 => Ok((None, rest)),
        _ => {
            let (ip, ports) = rest.split_once(':').unwrap_or(("", rest));
            Ok((Some(ip), ports))
        }
    }
}

/// `80` or `80-81`; port 0 only for the host side (it means "pick one").
fn parse_range(text: &str, host: bool) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n != 0 || host)
            .ok_or_else(|| format!("invalid port {p:?}"))
    };
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!("invalid port range {text:?}"));
    }
    Ok((start, end))
}

/// Replaces every host port 0 with a port that is free right now, like Docker's `-P`.
///
/// pasta cannot bind port 0 and report the result, so strata picks: each port is bound (on the
/// mapping's address and protocol) until all are chosen, then released for pasta to take. Another
/// process may take one in between; the container then fails with [`RuntimeError::PortInUse`].
pub fn allocate_host_ports(ports: &mut [PortMapping]) -> Result<(), RuntimeError> {
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    for mapping in ports.iter_mut().filter(|m| m.host_port == 0) {
        let ip = mapping.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let address = SocketAddr::new(ip, 0);
        let bound = match mapping.protocol {
            Protocol::Tcp => TcpListener::bind(address).and_then(|l| {
                Ok((
                    l.local_addr()?.port(),
                    Box::new(l) as Box<dyn std::any::Any>,
                ))
            }),
            Protocol::Udp => UdpSocket::bind(address).and_then(|s| {
                Ok((
                    s.local_addr()?.port(),
                    Box::new(s) as Box<dyn std::any::Any>,
                ))
            }),
        };
        let (port, socket) =
            bound.map_err(|source| RuntimeError::AllocatePort { address, source })?;
        mapping.host_port = port;
        held.push(socket);
    }
    Ok(())
}

/// `/etc/resolv.conf` of a bridged container, as Docker derives it from the host's: nameservers
/// on the host's loopback (systemd-resolved's 127.0.0.53, a local dnsmasq) are unreachable from
/// the container and dropped, and so are IPv6 ones (the bridge is IPv4-only); when the host file
/// names only the systemd-resolved stub, its upstream list (`systemd`) is used instead; with no
/// nameserver left, Docker's public defaults. Other lines (`search`, `options`) are kept.
pub(crate) fn bridge_resolv_conf(host: &str, systemd: Option<&str>) -> String {
    let (mut text, kept) = filter_nameservers(host);
    if kept == 0 {
        if let Some((upstream, _)) = systemd.map(filter_nameservers).filter(|(_, n)| *n > 0) {
            return upstream;
        }
        for server in DEFAULT_NAMESERVERS {
            text.push_str(&format!("nameserver {server}\n"));
        }
    }
    text
}

/// The lines of a resolv.conf without unreachable nameservers, and how many nameservers remain.
fn filter_nameservers(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut kept = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let reachable = words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|ip| ip.is_ipv4() && !ip.is_loopback());
            if !reachable {
                continue;
            }
            kept += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, kept)
}

/// `/etc/hosts` of a bridged container: loopback entries, then its own address and hostname.
pub(crate) fn bridge_hosts(hostname: &str) -> String {
    let mut hosts = crate::spec::LOOPBACK_HOSTS.to_owned();
    if !hostname.is_empty() {
        hosts.push_str(&format!("{BRIDGE_ADDRESS}\t{hostname}\n"));
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host_ip: Option<&str>, host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn publish_values_parse_like_docker() {
        let udp = |m: PortMapping| PortMapping {
            protocol: Protocol::Udp,
            ..m
        };
        let cases: Vec<(&str, Vec<PortMapping>)> = vec![
            ("8080:80", vec![tcp(None, 8080, 80)]),
            ("80", vec![tcp(None, 0, 80)]),
            ("80/udp", vec![udp(tcp(None, 0, 80))]),
            ("5353:53/udp", vec![udp(tcp(None, 5353, 53))]),
            ("127.0.0.1:8080:80", vec![tcp(Some("127.0.0.1"), 8080, 80)]),
            ("127.0.0.1::80", vec![tcp(Some("127.0.0.1"), 0, 80)]),
            ("[::1]:8080:80/tcp", vec![tcp(Some("::1"), 8080, 80)]),
            (":8080:80", vec![tcp(None, 8080, 80)]),
            (
                "8000-8001:80-81",
                vec![tcp(None, 8000, 80), tcp(None, 8001, 81)],
            ),
            ("80-81", vec![tcp(None, 0, 80), tcp(None, 0, 81)]),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_publish(value).unwrap(), expected, "{value}");
        }
    }

    #[test]
    fn bad_publish_values_are_rejected_with_the_value() {
        for value in [
            "",
            "0",
            "http",
            "8080:0",
            "70000:80",
            "8080:80/sctp",
            "8000-8002:80-81",
            "81-80",
            "1.2.3:8080:80",
            "[::1:8080:80",
            "a:b:c:d",
        ] {
            match parse_publish(value) {
                Err(RuntimeError::InvalidPublish { value: v, .. }) => assert_eq!(v, value),
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn allocated_ports_are_distinct_and_nonzero() {
        let mut ports = vec![tcp(Some("127.0.0.1"), 0, 80), tcp(Some("127.0.0.1"), 0, 81)];
        ports.push(PortMapping {
            protocol: Protocol::Udp,
            ..tcp(Some("127.0.0.1"), 0, 53)
        });
        ports.push(tcp(None, 4242, 82));
        allocate_host_ports(&mut ports).unwrap();
        assert!(ports.iter().all(|m| m.host_port != 0));
        assert_ne!(ports[0].host_port, ports[1].host_port);
        assert_eq!(ports[3].host_port, 4242, "explicit ports are kept");
    }

    #[test]
    fn resolv_conf_drops_what_the_container_cannot_reach() {
        let cases = [
            (
                "search lan\nnameserver 10.0.0.53\nnameserver 127.0.0.1\noptions ndots:2\n",
                None,
                "search lan\nnameserver 10.0.0.53\noptions ndots:2\n",
            ),
            (
                "nameserver 127.0.0.53\nsearch lan\n",
                Some("nameserver 192.0.2.53\nnameserver fd00::53\n"),
                "nameserver 192.0.2.53\n",
            ),
            (
                "nameserver 127.0.0.1\nnameserver ::1\n",
                None,
                "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
            ),
            (
                "nameserver 127.0.0.53\n",
                Some("nameserver 127.0.0.1\n"),
                "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
            ),
        ];
        for (host, systemd, expected) in cases {
            assert_eq!(bridge_resolv_conf(host, systemd), expected, "{host:?}");
        }
    }

    #[test]
    fn hosts_name_the_container_like_docker() {
        let hosts = bridge_hosts("abcdef012345");
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.ends_with("\n10.88.0.2\tabcdef012345\n"));
    }

    #[test]
    fn mappings_display_like_docker_port() {
        assert_eq!(tcp(None, 8080, 80).to_string(), "80/tcp -> 0.0.0.0:8080");
    }
}
