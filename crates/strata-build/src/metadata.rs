//! Metadata instructions applied to the image config, with the history text BuildKit writes
//! for each (its `created_by` strings are Go `fmt` renderings, reproduced here).

use std::collections::BTreeMap;

use strata_dockerfile::Command;
use strata_oci::{ContainerConfig, Empty, HealthConfig, ImageConfig};

use crate::op::{HealthSpec, MetadataOp};

/// The default SHELL.
pub(crate) const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The container config's SHELL, or the default.
pub(crate) fn shell_of(config: &ContainerConfig) -> Vec<String> {
    match &config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
    }
}

/// A command as argv: exec form as is, shell form wrapped in `shell`.
pub(crate) fn argv(command: &Command, shell: &[String]) -> Vec<String> {
    match command {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
    }
}

/// Applies `op` to `image`; returns the history `created_by`, or None when BuildKit writes no
/// history entry (ONBUILD). `cmd_set` is whether this stage has set CMD yet: ENTRYPOINT
/// clears an inherited CMD only.
pub(crate) fn apply(
    op: &MetadataOp,
    image: &mut ImageConfig,
    cmd_set: &mut bool,
) -> Option<String> {
    let config = image.config.get_or_insert_with(ContainerConfig::default);
    let text = match op {
        MetadataOp::Env(pairs) => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                let entry = format!("{k}={v}");
                let prefix = format!("{k}=");
                match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
            format!("ENV {}", join_pairs(pairs))
        }
        MetadataOp::Label(pairs) => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k.clone(), v.clone());
            }
            format!("LABEL {}", join_pairs(pairs))
        }
        MetadataOp::User(u) => {
            config.user = u.clone();
            format!("USER {u}")
        }
        MetadataOp::Expose(ports) => {
            let mut these = BTreeMap::new();
            for p in ports.iter().flat_map(|p| port_specs(p)) {
                these.insert(p, Empty);
            }
            let all = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            all.extend(these.clone());
            let shown: Vec<String> = these.keys().map(|k| format!("{k}:{{}}")).collect();
            format!("EXPOSE map[{}]", shown.join(" "))
        }
        MetadataOp::Volume(vols) => {
            let all = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                all.insert(v.clone(), Empty);
            }
            format!("VOLUME [{}]", vols.join(" "))
        }
        MetadataOp::Cmd(c) => {
            let args = argv(c, &shell_of(config));
            config.cmd = Some(args.clone());
            config.args_escaped = true;
            *cmd_set = true;
            format!("CMD {}", go_quote_list(&args))
        }
        MetadataOp::Entrypoint(c) => {
            let args = argv(c, &shell_of(config));
            config.entrypoint = Some(args.clone());
            if !*cmd_set {
                config.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quote_list(&args))
        }
        MetadataOp::Shell(s) => {
            config.shell = Some(s.clone());
            format!("SHELL [{}]", s.join(" "))
        }
        MetadataOp::StopSignal(s) => {
            config.stop_signal = s.clone();
            format!("STOPSIGNAL {s}")
        }
        MetadataOp::Healthcheck(spec) => {
            let hc = health_config(spec.as_ref(), &shell_of(config));
            let text = format!(
                "HEALTHCHECK &{{{} {} {} {} {}}}",
                go_quote_list(&hc.test),
                go_quote(&go_duration(hc.interval)),
                go_quote(&go_duration(hc.timeout)),
                go_quote(&go_duration(hc.start_period)),
                go_quote_rune(hc.retries),
            );
            config.healthcheck = Some(hc);
            text
        }
        MetadataOp::Arg(words) => format!("ARG {}", words.join(" ")),
        MetadataOp::Onbuild(trigger) => {
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(trigger.clone());
            return None;
        }
        MetadataOp::Maintainer(m) => {
            image.author = Some(m.clone());
            format!("MAINTAINER {m}")
        }
    };
    Some(text)
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn health_config(spec: Option<&HealthSpec>, shell: &[String]) -> HealthConfig {
    let Some(spec) = spec else {
        return HealthConfig {
            test: vec!["NONE".to_string()],
            ..HealthConfig::default()
        };
    };
    let test = match &spec.command {
        Command::Exec(v) => ["CMD".to_string()].into_iter().chain(v.clone()).collect(),
        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let _ = shell;
    HealthConfig {
        test,
        interval: spec.interval,
        timeout: spec.timeout,
        start_period: spec.start_period,
        start_interval: spec.start_interval,
        retries: spec.retries,
        ..HealthConfig::default()
    }
}

/// `80` → `80/tcp`, `8000-8001/udp` → both ports, protocol lower-cased (Docker's nat rules).
fn port_specs(spec: &str) -> Vec<String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if let Some((a, b)) = ports.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            if a <= b && b - a < 65536 {
                return (a..=b).map(|p| format!("{p}/{proto}")).collect();
            }
        }
    }
    vec![format!("{ports}/{proto}")]
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// Go's `strconv.Quote` for the characters Dockerfiles hold.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\u{b}' => out.push_str("\\v"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    }
}

/// Go's `%q` of an integer: a quoted rune (`'\x02'`, `'A'`).
fn go_quote_rune(n: i64) -> String {
    let c = u32::try_from(n)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// Go's `time.Duration.String()`.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", fraction(u, div))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s_ns = u % 60_000_000_000;
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{}s", fraction(s_ns, 1_000_000_000)));
        out
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// `value / div` with the fraction's trailing zeros dropped (`1.5`, `2`).
fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let rest = value % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: &[MetadataOp]) -> (ImageConfig, Vec<Option<String>>) {
        let mut image = ImageConfig::default();
        let mut cmd_set = false;
        let texts = ops
            .iter()
            .map(|op| apply(op, &mut image, &mut cmd_set))
            .collect();
        (image, texts)
    }

    #[test]
    fn history_texts_match_buildkit() {
        let s = |v: &str| v.to_string();
        let (_, texts) = run(&[
            MetadataOp::Env(vec![(s("A"), s("1")), (s("B"), s("two words"))]),
            MetadataOp::Label(vec![(s("l1"), s("v1")), (s("l 2"), s("v2"))]),
            MetadataOp::Expose(vec![s("80"), s("443/udp")]),
            MetadataOp::Volume(vec![s("/data"), s("/other")]),
            MetadataOp::Shell(vec![s("/bin/sh"), s("-ec")]),
            MetadataOp::StopSignal(s("SIGTERM")),
            MetadataOp::Healthcheck(Some(HealthSpec {
                command: Command::Shell(s("wget -q localhost")),
                interval: 5_000_000_000,
                timeout: 0,
                start_period: 0,
                start_interval: 0,
                retries: 2,
            })),
            MetadataOp::Cmd(Command::Shell(s("echo hi"))),
            MetadataOp::Entrypoint(Command::Exec(vec![s("/bin/echo")])),
            MetadataOp::Onbuild(s("RUN echo hi")),
            MetadataOp::Maintainer(s("me <me@x>")),
            MetadataOp::Arg(vec![s("V=1"), s("W")]),
        ]);
        // Captured from Docker 20.10 + BuildKit (`docker save` of the same instructions).
        let want = [
            "ENV A=1 B=two words",
            "LABEL l1=v1 l 2=v2",
            "EXPOSE map[443/udp:{} 80/tcp:{}]",
            "VOLUME [/data /other]",
            "SHELL [/bin/sh -ec]",
            "STOPSIGNAL SIGTERM",
            r#"HEALTHCHECK &{["CMD-SHELL" "wget -q localhost"] "5s" "0s" "0s" '\x02'}"#,
            r#"CMD ["/bin/sh" "-ec" "echo hi"]"#,
            r#"ENTRYPOINT ["/bin/echo"]"#,
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(texts[i].as_deref(), Some(*w));
        }
        assert_eq!(texts[9], None);
        assert_eq!(texts[10].as_deref(), Some("MAINTAINER me <me@x>"));
        assert_eq!(texts[11].as_deref(), Some("ARG V=1 W"));
    }

    #[test]
    fn config_fields_follow_buildkit() {
        let s = |v: &str| v.to_string();
        let (image, _) = run(&[
            MetadataOp::Env(vec![(s("A"), s("1"))]),
            MetadataOp::Env(vec![(s("A"), s("2")), (s("B"), s("3"))]),
            MetadataOp::Cmd(Command::Exec(vec![s("a")])),
            MetadataOp::Entrypoint(Command::Shell(s("run me"))),
            MetadataOp::Expose(vec![s("8000-8001/UDP")]),
            MetadataOp::Maintainer(s("x")),
        ]);
        let c = image.config.unwrap();
        assert_eq!(c.env, Some(vec![s("A=2"), s("B=3")]));
        // CMD set in this stage survives a later ENTRYPOINT.
        assert_eq!(c.cmd, Some(vec![s("a")]));
        assert_eq!(c.entrypoint, Some(vec![s("/bin/sh"), s("-c"), s("run me")]));
        assert!(c.args_escaped);
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["8000/udp", "8001/udp"]);
        assert_eq!(image.author.as_deref(), Some("x"));

        // An inherited CMD is cleared by ENTRYPOINT.
        let mut image = ImageConfig {
            config: Some(ContainerConfig {
                cmd: Some(vec![s("sh")]),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        };
        let mut cmd_set = false;
        apply(
            &MetadataOp::Entrypoint(Command::Exec(vec![s("e")])),
            &mut image,
            &mut cmd_set,
        );
        assert_eq!(image.config.unwrap().cmd, None);
    }

    #[test]
    fn go_durations() {
        for (ns, want) in [
            (0, "0s"),
            (5_000_000_000, "5s"),
            (90_000_000_000, "1m30s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500, "1.5µs"),
        ] {
            assert_eq!(go_duration(ns), want);
        }
        assert_eq!(go_quote_rune(65), "'A'");
        assert_eq!(go_quote("a\"b\\"), r#""a\"b\\""#);
    }
}
