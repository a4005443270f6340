//! `strata history IMAGE`: newest step first, `<missing>` for steps whose image is not stored.

use strata_exit::ExitStatus;

use strata_image::{history, resolve_image, HistoryRow};

use crate::cli::{GlobalOptions, HistoryArgs};
use crate::failure::Failure;
use crate::render::{human, out, table::Table, template};

pub(crate) fn run(g: &GlobalOptions, a: HistoryArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let image = resolve_image(&store, &a.image)?;
    let rows = history(&store, &image)?;
    let id = |r: &HistoryRow| match &r.id {
        Some(id) if a.no_trunc => id.to_string(),
        Some(id) => id.short().to_string(),
        None => "<missing>".to_string(),
    };
    if a.quiet {
        out(&rows
            .iter()
            .map(|r| format!("{}\n", id(r)))
            .collect::<String>());
        return Ok(ExitStatus::Success);
    }
    let created = |r: &HistoryRow| {
        if a.human {
            human::since(r.created.as_deref())
        } else {
            r.created.clone().unwrap_or_default()
        }
    };
    let size = |r: &HistoryRow| {
        if a.human {
            human::size(r.size)
        } else {
            r.size.to_string()
        }
    };
    let created_by = |r: &HistoryRow| {
        let text = r.created_by.replace('\t', " ");
        if a.no_trunc {
            text
        } else {
            ellipsis(&text, 45)
        }
    };
    match a.format.as_deref() {
        None | Some("table") => {
            let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
            for r in &rows {
                t.row(vec![
                    id(r),
                    created(r),
                    created_by(r),
                    size(r),
                    r.comment.clone(),
                ]);
            }
            out(&t.render());
        }
        Some(format) => {
            let values: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "Comment": r.comment,
                        "CreatedAt": r.created.clone().unwrap_or_default(),
                        "CreatedBy": created_by(r),
                        "CreatedSince": human::since(r.created.as_deref()),
                        "ID": id(r),
                        "Size": size(r),
                    })
                })
                .collect();
            out(&template::render_rows(format, &values).map_err(Failure::new)?);
        }
    }
    Ok(ExitStatus::Success)
}

/// Docker's `stringutils.Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis_cuts_at_max_characters() {
        assert_eq!(super::ellipsis("short", 45), "short");
        let long = "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"echo Hello ${WHO:-World}\"]";
        let cut = super::ellipsis(long, 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
    }
}
