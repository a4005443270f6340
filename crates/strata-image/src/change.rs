//! `import -c/--change` (and later `commit -c`): Dockerfile instructions applied to an image's
//! container config, as Docker's `BuildFromConfig` does. Only instructions that change
//! metadata are allowed; words are expanded against the config's own ENV.

use std::collections::BTreeMap;

use strata_dockerfile::{Args, Kind, Lexer};
use strata_oci::{ContainerConfig, Empty};

use crate::ImageError;

const ALLOWED: [Kind; 10] = [
    Kind::Cmd,
    Kind::Entrypoint,
    Kind::Env,
    Kind::Expose,
    Kind::Label,
    Kind::Onbuild,
    Kind::Stopsignal,
    Kind::User,
    Kind::Volume,
    Kind::Workdir,
];

/// Applies `changes` (`import -c`, `commit -c`) in order to `config`.
pub fn apply_all(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ImageError> {
    let mut cmd_set = false;
    for change in changes {
        apply(config, change, &mut cmd_set)?;
    }
    Ok(())
}

fn invalid(change: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidChange {
        change: change.to_string(),
        reason: reason.into(),
    }
}

fn apply(config: &mut ContainerConfig, change: &str, cmd_set: &mut bool) -> Result<(), ImageError> {
    let source = format!("FROM scratch\n{change}\n");
    let df = strata_dockerfile::parse(&source).map_err(|e| invalid(change, e.to_string()))?;
    let lexer = Lexer::new('\\');
    for instruction in df.instructions.iter().skip(1) {
        if !ALLOWED.contains(&instruction.kind) {
            return Err(invalid(
                change,
                format!("{} is not a valid change command", instruction.kind),
            ));
        }
        let env: Vec<(String, String)> = config
            .env
            .iter()
            .flatten()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let expand = |word: &str| {
            lexer
                .expand_word(word, &env)
                .map_err(|e| invalid(change, e.to_string()))
        };
        let words = |args: &Args| -> Result<Vec<String>, ImageError> {
            match args {
                Args::Exec(v) => Ok(v.clone()),
                Args::Words(w) => w.iter().map(|w| expand(w)).collect(),
                _ => Err(invalid(change, "unexpected arguments")),
            }
        };
        let command = |args: &Args| -> Vec<String> {
            match args {
                Args::Exec(v) => v.clone(),
                Args::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                _ => Vec::new(),
            }
        };
        match instruction.kind {
            Kind::Cmd => {
                config.cmd = Some(command(&instruction.args));
                *cmd_set = true;
            }
            Kind::Entrypoint => {
                config.entrypoint = Some(command(&instruction.args));
                // As in a build: a new ENTRYPOINT drops an inherited CMD.
                if !*cmd_set {
                    config.cmd = None;
                }
            }
            Kind::Env | Kind::Label => {
                let Args::KeyValues(pairs) = &instruction.args else {
                    return Err(invalid(change, "expected KEY=VALUE pairs"));
                };
                for (k, v) in pairs {
                    let (k, v) = (expand(k)?, expand(v)?);
                    if instruction.kind == Kind::Env {
                        let list = config.env.get_or_insert_with(Vec::new);
                        let entry = format!("{k}={v}");
                        match list
                            .iter_mut()
                            .find(|e| e.split_once('=').map(|p| p.0) == Some(k.as_str()))
                        {
                            Some(existing) => *existing = entry,
                            None => list.push(entry),
                        }
                    } else {
                        config.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
                    }
                }
            }
            Kind::Expose => {
                for port in words(&instruction.args)? {
                    let key = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    config
                        .exposed_ports
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key, Empty);
                }
            }
            Kind::Onbuild => {
                let Args::Trigger(trigger) = &instruction.args else {
                    return Err(invalid(change, "ONBUILD needs an instruction"));
                };
                config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.original.clone());
            }
            Kind::Stopsignal => config.stop_signal = words(&instruction.args)?.join(" "),
            Kind::User => config.user = words(&instruction.args)?.join(" "),
            Kind::Volume => {
                for path in words(&instruction.args)? {
                    config
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(path, Empty);
                }
            }
            Kind::Workdir => {
                let dir = words(&instruction.args)?.join(" ");
                config.working_dir = if dir.starts_with('/') || config.working_dir.is_empty() {
                    normalize_abs(&dir)
                } else {
                    normalize_abs(&format!("{}/{dir}", config.working_dir))
                };
            }
            _ => {
                return Err(invalid(
                    change,
                    format!("{} is not a valid change command", instruction.kind),
                ))
            }
        }
    }
    Ok(())
}

/// `a/../b//c` → `/b/c`, always absolute (Docker joins a relative WORKDIR onto `/`).
fn normalize_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Result<ContainerConfig, ImageError> {
        let mut c = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_all(&mut c, &changes)?;
        Ok(c)
    }

    #[test]
    fn metadata_changes_apply_like_docker() {
        let c = applied(&[
            "ENV A=1 B=\"two words\"",
            "ENV C=$A-x",
            "CMD echo hi",
            "ENTRYPOINT [\"/bin/app\"]",
            "EXPOSE 80 53/udp",
            "LABEL k=v",
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo child",
        ])
        .unwrap();
        assert_eq!(c.env.unwrap(), ["A=1", "B=two words", "C=1-x"]);
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/app"]);
        assert_eq!(
            c.exposed_ports.unwrap().keys().collect::<Vec<_>>(),
            ["53/udp", "80/tcp"]
        );
        assert_eq!(c.labels.unwrap()["k"], "v");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.working_dir, "/srv/app");
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal, "SIGINT");
        assert_eq!(c.on_build.unwrap(), ["RUN echo child"]);
    }

    #[test]
    fn build_steps_and_garbage_are_refused() {
        for bad in ["RUN echo hi", "COPY a b", "FROM busybox", "NOPE x", "ENV"] {
            assert!(applied(&[bad]).is_err(), "{bad}");
        }
    }
}
