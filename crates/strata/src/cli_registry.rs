//! `strata registry …`: the registry server and its helpers.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Subcommand)]
pub(crate) enum RegistryCommand {
    /// Serve a private registry (OCI distribution spec, Docker's registry API)
    Serve(RegistryServeArgs),
    /// Remove blobs and manifests no tag needs (safe while a server runs)
    Gc(RegistryGcArgs),
    /// Add or replace a user in an htpasswd file (bcrypt), the password read from STDIN
    Htpasswd(RegistryHtpasswdArgs),
}

#[derive(Args)]
pub(crate) struct RegistryConfigArgs {
    /// Configuration file (TOML, see docs/registry.md); every key has a default
    #[arg(long, short = 'c', env = "STRATA_REGISTRY_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Storage directory (overrides the config's `storage`; default /var/lib/strata-registry)
    #[arg(long)]
    pub(crate) storage: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct RegistryServeArgs {
    #[command(flatten)]
    pub(crate) common: RegistryConfigArgs,
    /// Address to listen on (overrides the config's `addr`; default 127.0.0.1:5000)
    #[arg(long)]
    pub(crate) addr: Option<std::net::SocketAddr>,
    /// Serve plain HTTP on a non-loopback address (otherwise TLS is required there)
    #[arg(long = "plain-http")]
    pub(crate) plain_http: bool,
    /// Log format (overrides the config's `log.format`)
    #[arg(long = "log-format", value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
}

#[derive(Args)]
pub(crate) struct RegistryGcArgs {
    #[command(flatten)]
    pub(crate) common: RegistryConfigArgs,
    /// Report what would be removed, remove nothing
    #[arg(long = "dry-run", short = 'n')]
    pub(crate) dry_run: bool,
}

#[derive(Args)]
pub(crate) struct RegistryHtpasswdArgs {
    /// The htpasswd file (created 0600 when missing)
    #[arg(long, short = 'f')]
    pub(crate) file: PathBuf,
    /// bcrypt cost (4-31)
    #[arg(long, default_value_t = strata_registry::HTPASSWD_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub(crate) cost: u32,
    /// User name
    pub(crate) user: String,
}
