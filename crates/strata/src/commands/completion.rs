//! `strata completion SHELL` and `strata man DIR`: shell completions and man pages generated
//! from the same clap definitions the parser uses, so they cannot drift from the flags.

use std::path::Path;
use strata_exit::ExitStatus;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManArgs};
use crate::failure::{Context, Failure};
use crate::render::out;

pub(crate) fn completion(a: CompletionArgs) -> Result<ExitStatus, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "strata", &mut script);
    out(&String::from_utf8_lossy(&script));
    Ok(ExitStatus::Success)
}

/// One page per command (`strata.1`, `strata-run.1`, `strata-image-ls.1`…) in `a.dir`.
pub(crate) fn man(a: ManArgs) -> Result<ExitStatus, Failure> {
    std::fs::create_dir_all(&a.dir).context(format!("creating {}", a.dir.display()))?;
    let mut written = 0;
    write_pages(&Cli::command(), "strata", &a.dir, &mut written)?;
    out(&format!(
        "{written} man pages written to {}\n",
        a.dir.display()
    ));
    Ok(ExitStatus::Success)
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut usize,
) -> Result<(), Failure> {
    let cmd = cmd.clone().bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name)
        .render(&mut page)
        .context(format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).context(format!("writing {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
