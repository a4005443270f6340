//! `strata load [-i FILE]`: prints `Loaded image: NAME` per tag, `Loaded image ID: ID` otherwise.

use std::io::IsTerminal;
use strata_exit::ExitStatus;

use strata_image::load_archive;

use crate::cli::{GlobalOptions, LoadArgs};
use crate::failure::{Context, Failure};
use crate::render::out;

pub(crate) fn run(g: &GlobalOptions, a: LoadArgs) -> Result<ExitStatus, Failure> {
    let store = super::open_store(g)?;
    let loaded = match &a.input {
        Some(path) => {
            let file = std::fs::File::open(path).context(format!("opening {}", path.display()))?;
            load_archive(&store, file).context(format!("loading {}", path.display()))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(
                    Failure::new("requested load from stdin, but stdin is a terminal")
                        .with_hint("use -i FILE or pipe an archive in: strata load < image.tar"),
                );
            }
            load_archive(&store, std::io::stdin().lock()).context("loading from standard input")?
        }
    };
    if !a.quiet {
        let mut text = String::new();
        for image in &loaded {
            if image.tags.is_empty() {
                text.push_str(&format!("Loaded image ID: {}\n", image.id));
            }
            for tag in &image.tags {
                text.push_str(&format!("Loaded image: {}\n", tag.familiar()));
            }
        }
        out(&text);
    }
    Ok(ExitStatus::Success)
}
