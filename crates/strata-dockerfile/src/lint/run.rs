//! Rules about RUN scripts and layer order: apt-get, cd, consecutive RUNs, `COPY .` before a
//! dependency install.

use crate::ast::{Args, Instruction, Kind};
use crate::lint::shell::{commands, SimpleCommand};
use crate::lint::{
    run_script, Sink, StageView, APT_NO_RECOMMENDS, APT_NO_YES, APT_UPDATE_ALONE, APT_UPGRADE,
    CD_IN_RUN, CONSECUTIVE_RUN, COPY_ALL_BEFORE_INSTALL,
};
use crate::scope::words;

pub(crate) fn check(stages: &[StageView<'_>], sink: &mut Sink<'_>) {
    for stage in stages {
        let mut previous: Option<&Instruction> = None;
        for (n, inst) in stage.body.iter().enumerate() {
            if inst.kind == Kind::Run {
                let cmds = commands(&run_script(inst));
                apt(inst, &cmds, sink);
                if cmds.iter().any(|c| c.program() == Some("cd")) {
                    sink.report(
                        CD_IN_RUN,
                        inst,
                        "cd in RUN only lasts for this RUN: use WORKDIR to change directory",
                    );
                }
                if let Some(prev) = previous.filter(|p| p.kind == Kind::Run) {
                    if prev.flags.is_empty() && inst.flags.is_empty() {
                        sink.report(
                            CONSECUTIVE_RUN,
                            inst,
                            format!("RUN right after the RUN on line {}: join them with && to save a layer", prev.span.start_line),
                        );
                    }
                }
            }
            if inst.kind == Kind::Copy && copies_everything(inst) {
                if let Some(install) = stage.body[n + 1..]
                    .iter()
                    .find(|i| i.kind == Kind::Run && installs_dependencies(i))
                {
                    sink.report(
                        COPY_ALL_BEFORE_INSTALL,
                        inst,
                        format!(
                            "COPY . before the dependency install on line {}: copy only the manifest (package.json, requirements.txt, go.mod, Cargo.toml...) first, install, then copy the rest",
                            install.span.start_line
                        ),
                    );
                }
            }
            previous = Some(inst);
        }
    }
}

fn is_apt(c: &SimpleCommand) -> bool {
    matches!(c.program(), Some("apt-get" | "apt"))
}

fn apt_subcommand(c: &SimpleCommand) -> Option<&str> {
    c.subcommand(&[
        "-o",
        "-c",
        "-t",
        "--option",
        "--config-file",
        "--target-release",
    ])
}

/// `-y`, `--yes`, `--assume-yes`, `-qq`, `-q=2`, or `y` among combined short options (`-qy`).
fn assumes_yes(c: &SimpleCommand) -> bool {
    c.args().iter().any(|a| {
        matches!(a.as_str(), "--yes" | "--assume-yes" | "-qq" | "-q=2")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('y'))
    })
}

fn apt(inst: &Instruction, cmds: &[SimpleCommand], sink: &mut Sink<'_>) {
    let mut update = false;
    let mut install = false;
    for c in cmds.iter().filter(|c| is_apt(c)) {
        let program = c.program().unwrap_or("apt-get");
        match apt_subcommand(c) {
            Some("update") => update = true,
            Some("install") => {
                install = true;
                if !c.has_arg("--no-install-recommends") && !c.args().iter().any(|a| a.contains("Install-Recommends=")) {
                    sink.report(
                        APT_NO_RECOMMENDS,
                        inst,
                        format!("{program} install without --no-install-recommends pulls in packages nobody asked for"),
                    );
                }
                if !assumes_yes(c) {
                    sink.report(
                        APT_NO_YES,
                        inst,
                        format!("{program} install without -y: the build cannot answer its prompt"),
                    );
                }
            }
            Some(sub @ ("upgrade" | "dist-upgrade" | "full-upgrade")) => sink.report(
                APT_UPGRADE,
                inst,
                format!("{program} {sub} in a build: use a newer base image instead, the result depends on the day it ran"),
            ),
            _ => {}
        }
    }
    if update && !install {
        sink.report(
            APT_UPDATE_ALONE,
            inst,
            "apt-get update alone in a RUN: the index stays cached in its layer and a later install uses a stale one; chain it: apt-get update && apt-get install ...",
        );
    }
}

/// `COPY . <dst>` (or `./`): the whole context, so any change invalidates what follows.
fn copies_everything(inst: &Instruction) -> bool {
    if inst.flags.iter().any(|f| f.name == "from") {
        return false;
    }
    let list = match &inst.args {
        Args::Words(_) => words(inst),
        Args::Exec(w) => w.as_slice(),
        _ => return false,
    };
    list.split_last().is_some_and(|(_, sources)| {
        sources
            .iter()
            .any(|s| matches!(s.trim_matches('"'), "." | "./" | "*"))
    })
}

/// A RUN that installs dependencies from manifests: npm/yarn/pnpm, pip, apt, go mod, bundle,
/// cargo, composer, poetry.
fn installs_dependencies(inst: &Instruction) -> bool {
    commands(&run_script(inst)).iter().any(|c| {
        let sub = c.subcommand(&[]);
        match c.program() {
            Some("npm") => matches!(sub, Some("install" | "i" | "ci")),
            Some("yarn") => matches!(sub, None | Some("install")),
            Some("pnpm") => matches!(sub, Some("install" | "i")),
            Some("pip" | "pip3") => sub == Some("install"),
            Some("python" | "python3") => c
                .args()
                .windows(3)
                .any(|w| w[0] == "-m" && w[1].starts_with("pip") && w[2] == "install"),
            Some("apt-get" | "apt") => apt_subcommand(c) == Some("install"),
            Some("go") => {
                c.args()
                    .windows(2)
                    .any(|w| w[0] == "mod" && w[1] == "download")
                    || sub == Some("get")
            }
            Some("bundle") => matches!(sub, None | Some("install")),
            Some("cargo") => matches!(sub, Some("build" | "fetch" | "install")),
            Some("composer") => sub == Some("install"),
            Some("poetry") => sub == Some("install"),
            _ => false,
        }
    })
}
