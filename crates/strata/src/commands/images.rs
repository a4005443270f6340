//! `strata images [REPOSITORY[:TAG]]`: one row per tag, `<none>` for untagged images,
//! intermediate build images only with `-a`, as Docker lists them.

use strata_exit::ExitStatus;

use strata_image::{image_summaries, ImageSummary};
use strata_oci::Reference;

use crate::cli::{GlobalOptions, ImagesArgs};
use crate::failure::Failure;
use crate::render::{human, out, table::Table, template};

struct Row<'a> {
    image: &'a ImageSummary,
    repository: String,
    tag: String,
    digest: String,
}

pub(crate) fn run(g: &GlobalOptions, a: ImagesArgs) -> Result<ExitStatus, Failure> {
    let filter = Filter::parse(&a)?;
    let store = super::open_store(g)?;
    let images = image_summaries(&store)?;
    let mut rows: Vec<Row> = Vec::new();
    for image in &images {
        let dangling = image.tags.is_empty();
        if dangling && image.has_children && !a.all {
            continue;
        }
        if filter.dangling.is_some_and(|want| want != dangling) {
            continue;
        }
        // The digest a row shows is the one the registry knows its repository by.
        let digest_of = |name: &str| {
            image
                .repo_digests
                .iter()
                .find(|r| r.name() == name)
                .and_then(|r| r.digest().map(|d| d.to_string()))
                .unwrap_or_else(|| "<none>".to_string())
        };
        if dangling {
            if filter.reference.is_none() {
                if image.repo_digests.is_empty() {
                    rows.push(Row {
                        image,
                        repository: "<none>".into(),
                        tag: "<none>".into(),
                        digest: "<none>".into(),
                    });
                }
                // Pulled by digest: Docker lists it under its repository with no tag.
                for r in &image.repo_digests {
                    rows.push(Row {
                        image,
                        repository: r.familiar_name(),
                        tag: "<none>".into(),
                        digest: r.digest().map(|d| d.to_string()).unwrap_or_default(),
                    });
                }
            }
            continue;
        }
        for tag in &image.tags {
            if filter.reference.as_ref().is_some_and(|f| !f.matches(tag)) {
                continue;
            }
            rows.push(Row {
                image,
                repository: tag.familiar_name(),
                tag: tag.tag().unwrap_or("<none>").to_string(),
                digest: digest_of(&tag.name()),
            });
        }
    }
    let id = |i: &ImageSummary| {
        if a.no_trunc {
            i.id.to_string()
        } else {
            i.id.short().to_string()
        }
    };
    if a.quiet {
        let mut seen = Vec::new();
        let mut text = String::new();
        for row in &rows {
            let id = id(row.image);
            if !seen.contains(&id) {
                text.push_str(&id);
                text.push('\n');
                seen.push(id);
            }
        }
        out(&text);
        return Ok(ExitStatus::Success);
    }
    match a.format.as_deref() {
        None | Some("table") => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if a.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut t = Table::new(&header);
            for row in &rows {
                let mut cells = vec![row.repository.clone(), row.tag.clone()];
                if a.digests {
                    cells.push(row.digest.clone());
                }
                cells.push(id(row.image));
                cells.push(human::since(row.image.created.as_deref()));
                cells.push(human::size(row.image.size));
                t.row(cells);
            }
            out(&t.render());
        }
        Some(format) => {
            let values: Vec<_> = rows.iter().map(|r| json_row(r, &id(r.image))).collect();
            out(&template::render_rows(format, &values).map_err(Failure::new)?);
        }
    }
    Ok(ExitStatus::Success)
}

/// The keys Docker's `--format '{{json .}}'` prints for an image row.
fn json_row(row: &Row, id: &str) -> serde_json::Value {
    let created_at = row
        .image
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_default();
    serde_json::json!({
        "Containers": row.image.containers.to_string(),
        "CreatedAt": created_at,
        "CreatedSince": human::since(row.image.created.as_deref()),
        "Digest": row.digest,
        "ID": id,
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": human::size(row.image.size),
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human::size(row.image.size),
    })
}

#[derive(Default)]
struct Filter {
    dangling: Option<bool>,
    reference: Option<ReferenceFilter>,
}

/// `busybox` matches every tag of that repository; `busybox:1*` globs the tag too.
struct ReferenceFilter {
    repository: String,
    tag: Option<String>,
}

impl ReferenceFilter {
    fn matches(&self, r: &Reference) -> bool {
        glob(&self.repository, &r.familiar_name())
            && self
                .tag
                .as_ref()
                .is_none_or(|t| glob(t, r.tag().unwrap_or_default()))
    }
}

impl Filter {
    fn parse(a: &ImagesArgs) -> Result<Filter, Failure> {
        let mut f = Filter::default();
        let mut references: Vec<&str> = a.reference.iter().map(String::as_str).collect();
        for item in &a.filters {
            match item.split_once('=') {
                Some(("dangling", v)) => {
                    f.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Failure::new(format!(
                                "invalid filter 'dangling={v}': expected true or false"
                            )))
                        }
                    })
                }
                Some(("reference", v)) => references.push(v),
                _ => {
                    return Err(Failure::new(format!("invalid filter '{item}'")).with_hint(
                        "supported filters: dangling=true|false, reference=REPOSITORY[:TAG]",
                    ))
                }
            }
        }
        if let Some(r) = references.first() {
            let (repository, tag) = match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((repo, tag)) => (repo.to_string(), Some(tag.to_string())),
                None => (r.to_string(), None),
            };
            let repository = Reference::parse(&repository)
                .map(|p| p.familiar_name())
                .unwrap_or(repository);
            f.reference = Some(ReferenceFilter { repository, tag });
        }
        Ok(f)
    }
}

/// Shell-style `*` and `?` matching, enough for reference filters.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn reference_globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("1.?", "1.2"));
        assert!(!glob("alpine", "busybox"));
    }
}
