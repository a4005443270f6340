//! `strata ps`: Docker's container table, `-q`, `--no-trunc`, `--format json|TEMPLATE`.

use strata_exit::ExitStatus;

use serde_json::{json, Value};
use strata_container::{list, Container, HealthStatus, Status};

use crate::cli::{GlobalOptions, PsArgs};
use crate::failure::Failure;
use crate::render::{human, out, table::Table, template};

pub(crate) fn run(g: &GlobalOptions, a: PsArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let mut containers: Vec<Container> = list(&store)?
        .into_iter()
        .filter(|c| {
            a.all || a.latest || matches!(c.state.status, Status::Running | Status::Restarting)
        })
        .collect();
    if a.latest {
        containers.truncate(1);
    }
    if a.quiet {
        let ids: String = containers
            .iter()
            .map(|c| format!("{}\n", if a.no_trunc { &c.id } else { c.short_id() }))
            .collect();
        out(&ids);
        return Ok(ExitStatus::Success);
    }
    let rows: Vec<Value> = containers.iter().map(|c| row(c, a.no_trunc)).collect();
    match a.format.as_deref() {
        Some("json") => {
            let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
            out(&text);
        }
        Some(format) if format != "table" => {
            out(&template::render_rows(format, &rows).map_err(Failure::new)?);
        }
        _ => {
            let mut table = Table::new(&[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]);
            for r in &rows {
                let cell = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                table.row(vec![
                    cell("ID"),
                    cell("Image"),
                    cell("Command"),
                    cell("RunningFor"),
                    cell("Status"),
                    cell("Ports"),
                    cell("Names"),
                ]);
            }
            out(&table.render());
        }
    }
    Ok(ExitStatus::Success)
}

/// One container as `docker ps --format '{{json .}}'` shows it.
fn row(c: &Container, no_trunc: bool) -> Value {
    let command = quoted_command(&c.config.process_args());
    let command = if no_trunc {
        command
    } else {
        truncate(&command, 20)
    };
    let created = chrono::DateTime::from_timestamp_nanos(c.created);
    let ports: Vec<String> = if c.state.status == Status::Running {
        c.state.ports.iter().map(|p| p.display()).collect()
    } else {
        Vec::new()
    };
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "Command": command,
        "CreatedAt": created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
        "ID": if no_trunc { c.id.as_str() } else { c.short_id() },
        "Image": c.config.image,
        "Labels": labels.join(","),
        "LocalVolumes": c.config.mounts.iter().filter(|m| matches!(m, strata_container::MountSpec::Volume { .. })).count().to_string(),
        "Mounts": c.config.mounts.iter().map(|m| m.destination().to_owned()).collect::<Vec<_>>().join(","),
        "Names": c.name,
        "Networks": c.config.network.as_str(),
        "Ports": ports.join(", "),
        "RunningFor": human::since(Some(&created.to_rfc3339())),
        "Size": "0B",
        "State": c.state.status.as_str(),
        "Status": status_text(c),
    })
}

/// `Up 5 seconds`, `Exited (3) 2 minutes ago`, `Created`, `Restarting (1) 1 second ago`, `Dead`.
pub(crate) fn status_text(c: &Container) -> String {
    let ago = |t: &str| human::since(Some(t));
    let up = |t: &str| ago(t).trim_end_matches(" ago").to_owned();
    match c.state.status {
        Status::Created => "Created".to_owned(),
        Status::Running => {
            let health = match c.state.health.as_ref().map(|h| h.status) {
                Some(HealthStatus::Starting) => " (health: starting)",
                Some(HealthStatus::Healthy) => " (healthy)",
                Some(HealthStatus::Unhealthy) => " (unhealthy)",
                None => "",
            };
            format!("Up {}{health}", up(&c.state.started_at))
        }
        Status::Restarting => format!(
            "Restarting ({}) {}",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {}",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        Status::Dead => "Dead".to_owned(),
    }
}

/// Docker quotes the whole command: `"sh -c 'exit 3'"`.
fn quoted_command(args: &[String]) -> String {
    format!("\"{}\"", args.join(" "))
}

/// Docker's ellipsis truncation (the closing quote goes with the cut).
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_cut_like_docker() {
        let args = ["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        assert_eq!(quoted_command(&args), "\"sh -c exit 3\"");
        assert_eq!(
            truncate("\"httpd -f -p 8080 -h /www\"", 20),
            "\"httpd -f -p 8080 -…"
        );
        assert_eq!(truncate("\"true\"", 20), "\"true\"");
    }
}
