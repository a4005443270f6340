//! `strata inspect NAME...`: Docker's JSON array, or a `--format` template per image.
//! Goes on past a missing name and exits 1 at the end, as Docker does.

use strata_exit::ExitStatus;

use serde_json::Value;
use strata_container::{inspect_view, lookup};
use strata_image::{inspect, resolve_image};

use crate::cli::{GlobalOptions, InspectArgs};
use crate::failure::Failure;
use crate::render::{out, pretty_json, template};

/// `inspect`: containers first, then images (Docker's order), or only `--type`'s kind.
pub(crate) fn run(g: &GlobalOptions, a: InspectArgs) -> Result<ExitStatus, Failure> {
    let kinds: &[Kind] = match a.kind.as_deref() {
        None => &[Kind::Container, Kind::Image],
        Some("image") => &[Kind::Image],
        Some("container") => &[Kind::Container],
        Some(kind) => {
            return Err(Failure::new(format!(
                "unsupported --type {kind:?}: use container or image"
            )))
        }
    };
    inspect_kinds(g, a, kinds)
}

/// `container inspect`.
pub(crate) fn containers(g: &GlobalOptions, a: InspectArgs) -> Result<ExitStatus, Failure> {
    inspect_kinds(g, a, &[Kind::Container])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
}

fn inspect_kinds(g: &GlobalOptions, a: InspectArgs, kinds: &[Kind]) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let mut found: Vec<Value> = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let container = kinds
            .contains(&Kind::Container)
            .then(|| lookup(&store, name).ok())
            .flatten();
        let result = match container {
            Some(c) => Ok(inspect_view(&store, &c)),
            None if kinds.contains(&Kind::Image) => resolve_image(&store, name)
                .and_then(|image| inspect(&store, &image))
                .map_err(Failure::from)
                .and_then(|v| serde_json::to_value(v).map_err(Failure::new)),
            None => Err(Failure::new(format!("no such container: {name}"))),
        };
        match result {
            Ok(v) => found.push(v),
            Err(f) => {
                f.print();
                failed = true;
            }
        }
    }
    match &a.format {
        None => out(&format!("{}\n", pretty_json(&found))),
        Some(format) => {
            let mut text = String::new();
            for v in &found {
                text.push_str(&template::render(format, v).map_err(Failure::new)?);
                text.push('\n');
            }
            out(&text);
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
