//! `strata registry serve|gc|htpasswd`: load the config, call strata-registry.

use std::io::BufRead;
use strata_exit::ExitStatus;

use strata_registry::{Config, LogFormat};

use crate::cli_registry::{
    LogFormatArg, RegistryCommand, RegistryConfigArgs, RegistryGcArgs, RegistryHtpasswdArgs,
    RegistryServeArgs,
};
use crate::failure::Failure;
use crate::render::{human, out};
use strata_exit::ErrorChain;

pub(crate) fn run(c: RegistryCommand) -> Result<ExitStatus, Failure> {
    match c {
        RegistryCommand::Serve(a) => serve(a),
        RegistryCommand::Gc(a) => gc(a),
        RegistryCommand::Htpasswd(a) => htpasswd(a),
    }
}

fn load(a: &RegistryConfigArgs) -> Result<Config, Failure> {
    let mut config = match &a.config {
        Some(path) => Config::load(path).map_err(|e| Failure::new(ErrorChain(&e)))?,
        None => Config::default(),
    };
    if let Some(s) = &a.storage {
        config.storage = s.clone();
    }
    Ok(config)
}

fn serve(a: RegistryServeArgs) -> Result<ExitStatus, Failure> {
    let mut config = load(&a.common)?;
    if let Some(addr) = a.addr {
        config.addr = addr;
    }
    config.http.plain_http |= a.plain_http;
    match a.log_format {
        Some(LogFormatArg::Json) => config.log.format = LogFormat::Json,
        Some(LogFormatArg::Text) => config.log.format = LogFormat::Text,
        None => {}
    }
    init_logging(&config);
    let server = strata_registry::Server::bind(&config).map_err(|e| {
        let f = Failure::new(ErrorChain(&e));
        match e {
            strata_registry::RegistryError::PlainHttpRefused(_) => {
                f.with_hint("loopback addresses may serve plain HTTP; see docs/registry.md")
            }
            _ => f,
        }
    })?;
    server.run().map_err(|e| Failure::new(ErrorChain(&e)))?;
    Ok(ExitStatus::Success)
}

/// Logs go to standard error, as text or one JSON object per line.
fn init_logging(config: &Config) {
    let level = match config.log.level.as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

fn gc(a: RegistryGcArgs) -> Result<ExitStatus, Failure> {
    let config = load(&a.common)?;
    let r =
        strata_registry::run_gc(&config, a.dry_run).map_err(|e| Failure::new(ErrorChain(&e)))?;
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    out(&format!(
        "{verb} {} blobs ({}) and {} untagged manifests; kept {} blobs and {} manifests in {} repositories; {} expired uploads, {} stale links; {:.1}s\n",
        r.blobs_deleted,
        human::size(r.bytes_freed),
        r.manifests_deleted,
        r.blobs_kept,
        r.manifests_kept,
        r.repositories,
        r.uploads_expired,
        r.links_removed,
        r.duration.as_secs_f64(),
    ));
    Ok(ExitStatus::Success)
}

fn htpasswd(a: RegistryHtpasswdArgs) -> Result<ExitStatus, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(format!("reading the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Failure::new("no password on standard input")
            .with_hint("echo \"$PASSWORD\" | strata registry htpasswd -f FILE USER"));
    }
    strata_registry::set_password(&a.file, &a.user, password, a.cost)
        .map_err(|e| Failure::new(ErrorChain(&e)))?;
    out(&format!("user {} set in {}\n", a.user, a.file.display()));
    Ok(ExitStatus::Success)
}
