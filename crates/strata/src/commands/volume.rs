//! `strata volume create|ls|rm|inspect`.

use strata_exit::ExitStatus;

use serde_json::json;
use strata_container::{ensure_volume, list_volumes, random_id, remove_volume};

use crate::cli::{GlobalOptions, VolumeCommand};
use crate::failure::Failure;
use crate::render::{out, pretty_json, table::Table};

pub(crate) fn run(g: &GlobalOptions, command: VolumeCommand) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    match command {
        VolumeCommand::Create(a) => {
            let name = match a.name {
                Some(n) => n,
                None => random_id()?,
            };
            ensure_volume(&store, &name)?;
            out(&format!("{name}\n"));
        }
        VolumeCommand::Ls(a) => {
            let volumes = list_volumes(&store)?;
            if a.quiet {
                out(&volumes
                    .iter()
                    .map(|v| format!("{}\n", v.name))
                    .collect::<String>());
            } else {
                let mut table = Table::new(&["DRIVER", "VOLUME NAME"]);
                for v in &volumes {
                    table.row(vec!["local".to_owned(), v.name.clone()]);
                }
                out(&table.render());
            }
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.names {
                match remove_volume(&store, name) {
                    Ok(()) => out(&format!("{name}\n")),
                    Err(e) => {
                        Failure::from(e).print();
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitStatus::Failure);
            }
        }
        VolumeCommand::Inspect(a) => {
            let volumes = list_volumes(&store)?;
            let mut found = Vec::new();
            let mut failed = false;
            for name in &a.names {
                match volumes.iter().find(|v| &v.name == name) {
                    Some(v) => found.push(json!({
                        "Driver": "local",
                        "Labels": null,
                        "Mountpoint": v.mountpoint,
                        "Name": v.name,
                        "Options": null,
                        "Scope": "local",
                    })),
                    None => {
                        Failure::new(format!("no such volume: {name}")).print();
                        failed = true;
                    }
                }
            }
            out(&format!("{}\n", pretty_json(&found)));
            if failed {
                return Ok(ExitStatus::Failure);
            }
        }
    }
    Ok(ExitStatus::Success)
}
