//! A container's filesystem: `diff`, `commit`, `export`, `cp`, `top`.

use std::io::Write;
use std::path::PathBuf;
use strata_exit::ExitStatus;

use strata_container::{Container, ContainerError, CopyOptions};
use strata_oci::Reference;
use strata_store::Store;

use crate::cli::{CommitArgs, CpArgs, DiffArgs, ExportArgs, GlobalOptions, TopArgs};
use crate::failure::{Context, Failure};
use crate::render::{out, table::Table};
use strata_exit::ErrorChain;

fn failed(e: ContainerError) -> Failure {
    Failure::new(ErrorChain(&e))
}

fn open(g: &GlobalOptions, name: &str) -> Result<(Store, Container), Failure> {
    let store = super::open_store(g)?;
    let c = strata_container::lookup(&store, name).map_err(failed)?;
    Ok((store, c))
}

pub(crate) fn diff(g: &GlobalOptions, a: DiffArgs) -> Result<ExitStatus, Failure> {
    let (store, c) = open(g, &a.container)?;
    let mut text = String::new();
    for change in strata_container::changes(&store, &c).map_err(failed)? {
        text.push_str(&format!(
            "{} {}\n",
            change.kind.letter(),
            change.path.display()
        ));
    }
    out(&text);
    Ok(ExitStatus::Success)
}

pub(crate) fn commit(g: &GlobalOptions, a: CommitArgs) -> Result<ExitStatus, Failure> {
    let tag = a.reference.as_deref().map(Reference::parse).transpose()?;
    if tag.as_ref().is_some_and(|t| t.digest().is_some()) {
        return Err(Failure::new(
            "commit takes REPOSITORY[:TAG], not a digest reference",
        ));
    }
    let (store, c) = open(g, &a.container)?;
    let opts = strata_container::CommitOptions {
        changes: a.change,
        message: a.message,
        author: a.author,
        pause: a.pause,
        tag,
    };
    let id = strata_container::commit(&store, &c, &opts).map_err(failed)?;
    out(&format!("{id}\n"));
    Ok(ExitStatus::Success)
}

pub(crate) fn export(g: &GlobalOptions, a: ExportArgs) -> Result<ExitStatus, Failure> {
    let (store, c) = open(g, &a.container)?;
    let write = |w: &mut dyn Write| -> Result<(), Failure> {
        strata_container::export(&store, &c, w).map_err(failed)
    };
    match &a.output {
        Some(path) => super::output_file::write_file(path, write)?,
        None => super::output_file::write_stdout(write)?,
    }
    Ok(ExitStatus::Success)
}

/// One `cp` operand: `-`, a host path, or `CONTAINER:PATH`.
enum Operand {
    Stream,
    Host(PathBuf),
    Container { name: String, path: String },
}

/// Docker's rule: a path that starts with `/` or `.` is local even with a `:` in it;
/// otherwise `NAME:PATH` names a container.
fn operand(arg: &str) -> Operand {
    if arg == "-" {
        return Operand::Stream;
    }
    if arg.starts_with('/') || arg.starts_with('.') {
        return Operand::Host(PathBuf::from(arg));
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() => Operand::Container {
            name: name.to_owned(),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
        },
        _ => Operand::Host(PathBuf::from(arg)),
    }
}

pub(crate) fn cp(g: &GlobalOptions, a: CpArgs) -> Result<ExitStatus, Failure> {
    let opts = CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    match (operand(&a.source), operand(&a.destination)) {
        (Operand::Container { name, path }, Operand::Host(dest)) => {
            let (store, c) = open(g, &name)?;
            strata_container::copy_from_container(&store, &c, &path, &dest, opts)
                .map_err(failed)?;
        }
        (Operand::Container { name, path }, Operand::Stream) => {
            let (store, c) = open(g, &name)?;
            let stdout = std::io::stdout().lock();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout);
            strata_container::copy_from_container_to_tar(&store, &c, &path, &mut w, opts)
                .map_err(failed)?;
            w.flush().context("writing the archive")?;
        }
        (Operand::Host(src), Operand::Container { name, path }) => {
            let (store, c) = open(g, &name)?;
            strata_container::copy_into_container(&store, &c, &src, &path, opts).map_err(failed)?;
        }
        (Operand::Stream, Operand::Container { name, path }) => {
            let (store, c) = open(g, &name)?;
            let stdin = std::io::stdin().lock();
            strata_container::copy_tar_into_container(&store, &c, stdin, &path, opts)
                .map_err(failed)?;
        }
        (Operand::Container { .. }, Operand::Container { .. }) => {
            return Err(Failure::new("copying between containers is not supported"));
        }
        _ => {
            return Err(Failure::new("must specify at least one container source")
                .with_hint("use CONTAINER:PATH for the container side"));
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn top(g: &GlobalOptions, a: TopArgs) -> Result<ExitStatus, Failure> {
    let (_store, c) = open(g, &a.container)?;
    let table = strata_container::top(&c).map_err(failed)?;
    let titles: Vec<&str> = table.titles.iter().map(String::as_str).collect();
    let mut rendered = Table::new(&titles);
    for row in table.processes {
        rendered.row(row);
    }
    out(&rendered.render());
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_operands_split_like_docker() {
        let cases = [
            ("-", "stream"),
            ("/tmp/a:b", "host"),
            ("./x:y", "host"),
            ("file", "host"),
            ("web:/etc/passwd", "web /etc/passwd"),
            ("web:", "web /"),
        ];
        for (arg, want) in cases {
            let got = match operand(arg) {
                Operand::Stream => "stream".to_owned(),
                Operand::Host(_) => "host".to_owned(),
                Operand::Container { name, path } => format!("{name} {path}"),
            };
            assert_eq!(got, want, "{arg}");
        }
    }
}
