//! `strata inspect NAME...`: Docker's JSON array, or a `--format` template per image.
//! Goes on past a missing name and exits 1 at the end, as Docker does.

use std::process::ExitCode;

use strata_image::{inspect, resolve_image};

use crate::cli::{GlobalOptions, InspectArgs};
use crate::failure::Failure;
use crate::render::{out, pretty_json, template};

pub(crate) fn run(g: &GlobalOptions, a: InspectArgs) -> Result<ExitCode, Failure> {
    if let Some(kind) = a.kind.as_deref().filter(|k| *k != "image") {
        return Err(Failure::new(format!(
            "unsupported --type {kind:?}: this version inspects images only"
        )));
    }
    let store = super::open_store(g)?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.names {
        match resolve_image(&store, name).and_then(|image| inspect(&store, &image)) {
            Ok(v) => found.push(v),
            Err(e) => {
                Failure::from(e).print();
                failed = true;
            }
        }
    }
    match &a.format {
        None => out(&format!("{}\n", pretty_json(&found))),
        Some(format) => {
            let mut text = String::new();
            for v in &found {
                let value = serde_json::to_value(v).map_err(Failure::new)?;
                text.push_str(&template::render(format, &value).map_err(Failure::new)?);
                text.push('\n');
            }
            out(&text);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
