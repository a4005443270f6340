//! Typed views of instructions (`From`, `Run`, `Copy`…), with flags and arguments validated.
//!
//! Strings stay as written: `$VAR` and quotes are resolved later by expansion.

use std::time::Duration;

use serde::Serialize;

use crate::ast::{Args, Heredoc, Instruction, Kind};
use crate::duration::parse_go_duration;
use crate::error::ParseError;
use crate::flags::{flag_error, read_flags, FlagValues};
use crate::mount::{parse_mount, Mount};
use crate::words::heredoc_marker;

/// An instruction with its meaning spelled out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum TypedInstruction {
    From(From),
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<ArgDef>),
    Copy(Copy),
    Add(Copy),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Healthcheck(Healthcheck),
    Stopsignal(String),
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub image: String,
    pub platform: Option<String>,
    /// Stage name, lower-cased as BuildKit does.
    pub alias: Option<String>,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// RUN `--network` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

/// RUN `--security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: Command,
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
    pub security: Option<Security>,
    pub heredocs: Vec<Heredoc>,
}

/// A COPY/ADD source: a path (or URL, for ADD) or an inline heredoc file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

/// COPY and ADD (ADD-only and COPY-only flags are `None`/false for the other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

/// One `ARG name[=default]`; the default keeps its quotes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// `None` for `HEALTHCHECK NONE`.
    pub command: Option<Command>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl Instruction {
    /// The typed view; checks flags (names and values) and argument counts.
    pub fn typed(&self) -> Result<TypedInstruction, ParseError> {
        let flags = read_flags(self)?;
        let err = |msg: String| ParseError::at_line(self.span.start_line, msg);
        let kw = self.kind.as_str();
        let words: &[String] = match &self.args {
            Args::Words(w) | Args::Exec(w) => w,
            _ => &[],
        };
        Ok(match self.kind {
            Kind::From => TypedInstruction::From(self.typed_from(&flags, words)?),
            Kind::Run => TypedInstruction::Run(self.typed_run(&flags)?),
            Kind::Cmd => TypedInstruction::Cmd(self.command()),
            Kind::Entrypoint => TypedInstruction::Entrypoint(self.command()),
            Kind::Shell => match &self.args {
                Args::Exec(v) if v.is_empty() => return Err(at_least_one(self)),
                Args::Exec(v) => TypedInstruction::Shell(v.clone()),
                Args::Shell(s) if s.is_empty() => return Err(at_least_one(self)),
                _ => return Err(shell_not_json(self)),
            },
            Kind::Env | Kind::Label => {
                let Args::KeyValues(pairs) = &self.args else {
                    return Err(err(format!("internal: {kw} without pairs")));
                };
                if pairs.is_empty() {
                    return Err(at_least_one(self));
                }
                if pairs.iter().any(|(k, _)| k.is_empty()) {
                    return Err(err(format!("{kw} names can not be blank"))
                        .with_hint(format!("write {kw} name=value")));
                }
                if self.kind == Kind::Env {
                    TypedInstruction::Env(pairs.clone())
                } else {
                    TypedInstruction::Label(pairs.clone())
                }
            }
            Kind::Arg => {
                if words.is_empty() {
                    return Err(at_least_one(self).with_hint("write ARG name or ARG name=default"));
                }
                let mut defs = Vec::new();
                for w in words {
                    let def = match w.split_once('=') {
                        Some(("", _)) => return Err(err("ARG names can not be blank".to_string())),
                        Some((n, v)) => ArgDef {
                            name: n.to_string(),
                            default: Some(v.to_string()),
                        },
                        None => ArgDef {
                            name: w.clone(),
                            default: None,
                        },
                    };
                    defs.push(def);
                }
                TypedInstruction::Arg(defs)
            }
            Kind::Copy | Kind::Add => self.typed_copy(&flags, words)?,
            Kind::Workdir | Kind::User | Kind::Stopsignal | Kind::Maintainer => {
                let [one] = words else {
                    return Err(err(format!("{kw} requires exactly one argument")));
                };
                match self.kind {
                    Kind::Workdir => TypedInstruction::Workdir(one.clone()),
                    Kind::User => TypedInstruction::User(one.clone()),
                    Kind::Stopsignal => TypedInstruction::Stopsignal(one.clone()),
                    _ => TypedInstruction::Maintainer(one.clone()),
                }
            }
            Kind::Expose => {
                if words.is_empty() {
                    return Err(at_least_one(self).with_hint("write EXPOSE 80 or EXPOSE 53/udp"));
                }
                for w in words.iter().filter(|w| !w.contains('$')) {
                    check_port(w).map_err(err)?;
                }
                TypedInstruction::Expose(words.to_vec())
            }
            Kind::Volume => {
                if words.is_empty() {
                    return Err(at_least_one(self));
                }
                if words.iter().any(|w| w.trim().is_empty()) {
                    return Err(err(
                        "VOLUME specified can not be an empty string".to_string()
                    ));
                }
                TypedInstruction::Volume(words.to_vec())
            }
            Kind::Healthcheck => TypedInstruction::Healthcheck(self.typed_healthcheck(&flags)?),
            Kind::Onbuild => {
                let Args::Trigger(t) = &self.args else {
                    return Err(at_least_one(self));
                };
                match t.kind {
                    Kind::Onbuild => {
                        return Err(err(
                            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()
                        ))
                    }
                    Kind::From | Kind::Maintainer => {
                        return Err(err(format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            t.kind
                        )))
                    }
                    _ => {}
                }
                // The trigger must itself be valid (it runs in the child image's build).
                t.typed()?;
                TypedInstruction::Onbuild(t.clone())
            }
        })
    }

    fn command(&self) -> Command {
        match &self.args {
            Args::Exec(v) => Command::Exec(v.clone()),
            Args::Shell(s) => Command::Shell(s.clone()),
            _ => Command::Shell(String::new()),
        }
    }

    fn typed_from(&self, flags: &FlagValues, words: &[String]) -> Result<From, ParseError> {
        let line = self.span.start_line;
        let alias = match words {
            [_] => None,
            [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                let lower = name.to_ascii_lowercase();
                if !valid_stage_name(&lower) {
                    return Err(ParseError::at_line(
                        line,
                        format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                    )
                    .with_hint("stage names match [a-z][a-z0-9-_.]*"));
                }
                Some(lower)
            }
            _ => {
                return Err(ParseError::at_line(
                    line,
                    "FROM requires either one or three arguments",
                )
                .with_hint("write FROM image or FROM image AS name"))
            }
        };
        Ok(From {
            image: words[0].clone(),
            platform: flags.string("platform").map(str::to_string),
            alias,
        })
    }

    fn typed_run(&self, flags: &FlagValues) -> Result<Run, ParseError> {
        let mut mounts = Vec::new();
        for value in flags.strings("mount") {
            mounts.push(parse_mount(value).map_err(|m| flag_error(self, "mount", m))?);
        }
        let network = match flags.string("network") {
            None => None,
            Some(v) => Some(match v {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                _ => {
                    return Err(flag_error(
                        self,
                        "network",
                        format!("unsupported network mode {v:?}"),
                    )
                    .with_hint("--network is one of default, none, host"))
                }
            }),
        };
        let security = match flags.string("security") {
            None => None,
            Some(v) => Some(match v {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                _ => {
                    return Err(flag_error(
                        self,
                        "security",
                        format!("unsupported security mode {v:?}"),
                    )
                    .with_hint("--security is one of sandbox, insecure"))
                }
            }),
        };
        Ok(Run {
            command: self.command(),
            mounts,
            network,
            security,
            heredocs: self.heredocs.clone(),
        })
    }

    fn typed_copy(
        &self,
        flags: &FlagValues,
        words: &[String],
    ) -> Result<TypedInstruction, ParseError> {
        let kw = self.kind.as_str();
        let line = self.span.start_line;
        let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(ParseError::at_line(
                line,
                format!("{kw} requires at least two arguments, but only one was provided. Destination could not be determined"),
            )
            .with_hint(format!("write {kw} <src>... <dest>")));
        };
        if heredoc_marker(dest).is_some() && !self.args.is_json() {
            return Err(ParseError::at_line(
                line,
                format!("{kw} cannot accept a heredoc as a destination"),
            ));
        }
        let mut heredocs = self.heredocs.iter();
        let mut out = Vec::new();
        for s in sources {
            match heredoc_marker(s).filter(|_| !self.args.is_json()) {
                Some(_) => match heredocs.next() {
                    Some(h) => out.push(Source::Heredoc(h.clone())),
                    None => out.push(Source::Path(s.clone())),
                },
                None => out.push(Source::Path(s.clone())),
            }
        }
        if let Some(chmod) = flags.string("chmod") {
            if !valid_chmod(chmod) && !chmod.contains('$') {
                return Err(flag_error(
                    self,
                    "chmod",
                    format!("invalid chmod parameter {chmod:?}"),
                )
                .with_hint(
                    "--chmod takes an octal mode (755, 0644) or a symbolic one (u=rwx,go=rx, +x)",
                ));
            }
        }
        if let Some(sum) = flags.string("checksum") {
            let valid = match sum.split_once(':') {
                Some(("sha256", hex)) => {
                    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
                }
                Some(("sha384", hex)) => {
                    hex.len() == 96 && hex.chars().all(|c| c.is_ascii_hexdigit())
                }
                Some(("sha512", hex)) => {
                    hex.len() == 128 && hex.chars().all(|c| c.is_ascii_hexdigit())
                }
                _ => false,
            };
            if !valid && !sum.contains('$') {
                return Err(flag_error(
                    self,
                    "checksum",
                    format!("invalid checksum digest format {sum:?}"),
                )
                .with_hint("--checksum takes a digest such as sha256:<64 hex digits>"));
            }
        }
        let copy = Copy {
            sources: out,
            dest: dest.clone(),
            from: flags.string("from").map(str::to_string),
            chown: flags.string("chown").map(str::to_string),
            chmod: flags.string("chmod").map(str::to_string),
            link: flags.bool("link"),
            parents: flags.bool("parents"),
            exclude: flags.strings("exclude").to_vec(),
            checksum: flags.string("checksum").map(str::to_string),
            keep_git_dir: flags.bool("keep-git-dir"),
        };
        Ok(if self.kind == Kind::Add {
            TypedInstruction::Add(copy)
        } else {
            TypedInstruction::Copy(copy)
        })
    }

    fn typed_healthcheck(&self, flags: &FlagValues) -> Result<Healthcheck, ParseError> {
        let line = self.span.start_line;
        let Args::Healthcheck { test, command } = &self.args else {
            return Err(
                at_least_one(self).with_hint("write HEALTHCHECK CMD <command> or HEALTHCHECK NONE")
            );
        };
        let duration = |name: &str| -> Result<Option<Duration>, ParseError> {
            let Some(v) = flags.string(name) else {
                return Ok(None);
            };
            let d = parse_go_duration(v)
                .map_err(|m| flag_error(self, name, format!("invalid --{name}: {m}")))?;
            if !d.is_zero() && d < Duration::from_millis(1) {
                return Err(flag_error(
                    self,
                    name,
                    format!("interval {name:?} cannot be less than 1ms"),
                ));
            }
            Ok(Some(d))
        };
        let mut hc = Healthcheck {
            command: None,
            interval: duration("interval")?,
            timeout: duration("timeout")?,
            start_period: duration("start-period")?,
            start_interval: duration("start-interval")?,
            retries: None,
        };
        if let Some(r) = flags.string("retries") {
            let n: i64 = r.parse().map_err(|_| {
                flag_error(
                    self,
                    "retries",
                    format!("invalid --retries value {r:?}: expected a whole number"),
                )
            })?;
            if n < 0 {
                return Err(flag_error(
                    self,
                    "retries",
                    format!("--retries cannot be negative ({n})"),
                ));
            }
            hc.retries = Some(u32::try_from(n).map_err(|_| {
                flag_error(self, "retries", format!("--retries value {n} is too large"))
            })?);
        }
        match test.to_ascii_uppercase().as_str() {
            "NONE" => {
                if command.is_some() {
                    return Err(ParseError::at_line(
                        line,
                        "HEALTHCHECK NONE takes no arguments",
                    ));
                }
            }
            "CMD" => {
                hc.command = match command.as_deref() {
                    Some(Args::Exec(v)) if !v.is_empty() => Some(Command::Exec(v.clone())),
                    Some(Args::Shell(s)) if !s.is_empty() => Some(Command::Shell(s.clone())),
                    _ => {
                        return Err(ParseError::at_line(
                            line,
                            "missing command after HEALTHCHECK CMD",
                        ))
                    }
                }
            }
            _ => {
                return Err(ParseError::at_line(
                    line,
                    format!("unknown type {test:?} in HEALTHCHECK (try CMD)"),
                )
                .with_hint("write HEALTHCHECK CMD <command> or HEALTHCHECK NONE"))
            }
        }
        Ok(hc)
    }
}

fn at_least_one(inst: &Instruction) -> ParseError {
    ParseError::at_line(
        inst.span.start_line,
        format!("{} requires at least one argument", inst.kind),
    )
}

fn shell_not_json(inst: &Instruction) -> ParseError {
    let mut e = ParseError::at_line(
        inst.span.start_line,
        "SHELL requires the arguments to be in JSON form",
    )
    .with_hint("write SHELL [\"executable\", \"parameters\"], e.g. SHELL [\"/bin/bash\", \"-c\"]");
    let lower = inst.original.to_ascii_lowercase();
    // A Windows path with single backslashes is invalid JSON; say so instead of a bare "not JSON".
    let looks_like_windows_path = lower.match_indices('"').any(|(i, _)| {
        let b = lower.as_bytes();
        b.len() > i + 3 && b[i + 1].is_ascii_lowercase() && b[i + 2] == b':' && b[i + 3] == b'\\'
    });
    if looks_like_windows_path
        && !lower.contains("\\\\")
        && lower.contains('[')
        && lower.contains(']')
    {
        e.hint = Some("JSON requires back-slashes to be escaped, e.g. [\"c:\\\\path\\\\to\\\\file.exe\", \"/parameter\"]".to_string());
    }
    e
}

/// An octal mode of at most four digits, or a chmod(1) symbolic mode (Dockerfile 1.14+):
/// comma-separated `[ugoa]*` followed by one or more `[-+=]` operations on `[rwxXst]*` or one of `ugo`.
fn valid_chmod(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        return mode.len() <= 4 && mode.chars().all(|c| ('0'..='7').contains(&c));
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            if !ops.starts_with(['+', '-', '=']) {
                return false;
            }
            ops.split_inclusive(['+', '-', '='])
                .map(|piece| piece.trim_end_matches(['+', '-', '=']))
                .all(|perms| {
                    perms.chars().all(|c| "rwxXst".contains(c)) || matches!(perms, "u" | "g" | "o")
                })
        })
}

/// BuildKit's stage name rule: `^[a-z][a-z0-9-_\.]*$` (after lower-casing).
pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// `80`, `8000-8010`, `53/udp`, `80/tcp`.
fn check_port(spec: &str) -> Result<(), String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (spec, None),
    };
    if let Some(proto) = proto {
        if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!(
                "invalid proto: {proto} in EXPOSE {spec} (expected tcp, udp or sctp)"
            ));
        }
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {p} in EXPOSE {spec}"))
    };
    match ports.split_once('-') {
        Some((a, b)) => {
            if port(a)? > port(b)? {
                return Err(format!("invalid port range: {ports} in EXPOSE {spec}"));
            }
        }
        None => {
            port(ports)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn typed(src: &str) -> Vec<TypedInstruction> {
        let df = parse(src).unwrap();
        df.instructions.iter().map(|i| i.typed().unwrap()).collect()
    }

    #[test]
    fn from_views() {
        let t = typed("FROM --platform=linux/arm64 Alpine:3 AS Build\n");
        assert_eq!(
            t[0],
            TypedInstruction::From(From {
                image: "Alpine:3".into(),
                platform: Some("linux/arm64".into()),
                alias: Some("build".into()),
            })
        );
    }

    #[test]
    fn run_view_with_mounts_and_heredoc() {
        let t = typed("FROM a\nRUN --mount=type=cache,target=/c --network=host <<EOF\nx\nEOF\n");
        let TypedInstruction::Run(run) = &t[1] else {
            panic!("not a run")
        };
        assert_eq!(run.mounts.len(), 1);
        assert_eq!(run.network, Some(Network::Host));
        assert_eq!(run.security, None);
        assert_eq!(run.command, Command::Shell("<<EOF".into()));
        assert_eq!(run.heredocs[0].content, "x\n");
    }

    #[test]
    fn copy_view_pairs_heredocs_with_sources() {
        let t = typed("FROM a\nCOPY --link a <<EOF b/\nbody\nEOF\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d u /u\n");
        let TypedInstruction::Copy(c) = &t[1] else {
            panic!("not a copy")
        };
        assert!(c.link);
        assert_eq!(c.dest, "b/");
        assert_eq!(c.sources[0], Source::Path("a".into()));
        assert!(matches!(&c.sources[1], Source::Heredoc(h) if h.content == "body\n"));
        let TypedInstruction::Add(a) = &t[2] else {
            panic!("not an add")
        };
        assert!(a.checksum.is_some() && a.from.is_none());
    }

    #[test]
    fn arg_env_healthcheck_views() {
        let t = typed("ARG A B=\"x y\"\nFROM a\nENV K V W\nHEALTHCHECK --interval=1m30s --retries=2 CMD [\"true\"]\nONBUILD RUN make\n");
        assert_eq!(
            t[0],
            TypedInstruction::Arg(vec![
                ArgDef {
                    name: "A".into(),
                    default: None
                },
                ArgDef {
                    name: "B".into(),
                    default: Some("\"x y\"".into())
                },
            ])
        );
        assert_eq!(
            t[2],
            TypedInstruction::Env(vec![("K".into(), "V W".into())])
        );
        let TypedInstruction::Healthcheck(h) = &t[3] else {
            panic!("not a healthcheck")
        };
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.retries, Some(2));
        assert_eq!(h.command, Some(Command::Exec(vec!["true".into()])));
        assert!(matches!(&t[4], TypedInstruction::Onbuild(i) if i.kind == Kind::Run));
    }

    #[test]
    fn view_errors() {
        let cases = [
            ("FROM a\nARG =x\n", "ARG names can not be blank"),
            ("FROM a\nLABEL\n", "LABEL requires at least one argument"),
            (
                "FROM a\nEXPOSE 99999\n",
                "invalid containerPort: 99999 in EXPOSE 99999",
            ),
            (
                "FROM a\nEXPOSE 90-80\n",
                "invalid port range: 90-80 in EXPOSE 90-80",
            ),
            (
                "FROM a\nHEALTHCHECK CMD\n",
                "missing command after HEALTHCHECK CMD",
            ),
            (
                "FROM a\nHEALTHCHECK --timeout=1us CMD x\n",
                "interval \"timeout\" cannot be less than 1ms",
            ),
            ("FROM a\nSHELL []\n", "SHELL requires at least one argument"),
            (
                "FROM a\nONBUILD COPY --form=x a b\n",
                "unknown flag: form (did you mean --from?)",
            ),
        ];
        for (src, msg) in cases {
            assert_eq!(parse(src).unwrap_err().message, msg, "{src}");
        }
    }

    #[test]
    fn chmod_modes() {
        for ok in [
            "755",
            "0644",
            "u+x",
            "+x",
            "u=rwx,go=rx",
            "a-w",
            "g=u",
            "u+s,o-t",
        ] {
            assert!(valid_chmod(ok), "{ok}");
        }
        for bad in ["", "999", "07555", "x", "u", "u+q", "u+x,", "rwx"] {
            assert!(!valid_chmod(bad), "{bad}");
        }
    }

    #[test]
    fn stage_names() {
        for ok in ["a", "a-b", "a_b.c9"] {
            assert!(valid_stage_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a/b", "a:b", "é"] {
            assert!(!valid_stage_name(bad), "{bad}");
        }
    }
}
