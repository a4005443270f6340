//! The command line: Docker's verbs and flags, parsed by clap. Only shapes live here; each
//! command's behaviour is a short function in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use crate::cli_container::*;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Build, store, run and ship container images: one daemonless binary",
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalOptions,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct GlobalOptions {
    /// Root directory of the store
    #[arg(
        long,
        global = true,
        env = "STRATA_ROOT",
        default_value = "/var/lib/strata"
    )]
    pub(crate) root: PathBuf,
    /// Snapshot driver: overlay (default) or vfs; recorded when the store is created
    #[arg(long = "storage-driver", global = true, env = "STRATA_STORAGE_DRIVER")]
    pub(crate) storage_driver: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Return low-level information on images
    Inspect(InspectArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Inspect manifests and manifest lists in a registry
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage strata
    #[command(subcommand)]
    System(SystemCommand),
    /// Dockerfile tooling
    #[command(subcommand)]
    Dockerfile(DockerfileCommand),
    /// Check a Dockerfile against best-practice rules
    Lint(LintArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Create and run a new container from an image
    #[command(override_usage = "strata run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Run(RunArgs),
    /// Create a new container
    #[command(override_usage = "strata create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    Ps(PsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Show the strata version information
    Version(VersionArgs),
    /// Display system-wide information (store, driver, counts, cgroups, runtime, network)
    Info(InfoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion(CompletionArgs),
    /// Write man pages for strata and every command into a directory
    Man(ManArgs),
    /// Run a registry server
    #[command(subcommand)]
    Registry(crate::cli_registry::RegistryCommand),
}

#[derive(Subcommand)]
pub(crate) enum BuilderCommand {
    /// Remove build cache: step images no tagged image descends from (all entries with -a),
    /// or only the least recently used down to --keep-storage / those unused for --filter until=
    Prune(BuilderPruneArgs),
}

#[derive(Args)]
pub(crate) struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Amount of disk space to keep for cache (e.g. 512mb, 10GB), least recently used removed first
    #[arg(long = "keep-storage", value_name = "SIZE")]
    pub(crate) keep_storage: Option<String>,
    /// Provide filter values (until=DURATION: only cache unused for that long, e.g. until=24h)
    #[arg(long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(override_usage = "strata run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Run(RunArgs),
    /// Create a new container
    #[command(override_usage = "strata create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Display the running processes of a container
    Top(TopArgs),
}

#[derive(Args)]
pub(crate) struct VersionArgs {
    /// Format the output: json, or a Go-style template such as '{{.Client.Version}}'
    #[arg(short, long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct InfoArgs {
    /// Format the output: json, or a Go-style template such as '{{.Driver}}'
    #[arg(short, long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Args)]
pub(crate) struct ManArgs {
    /// Directory the pages are written to (created if missing), e.g. /usr/local/share/man/man1
    pub(crate) dir: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Subcommand)]
pub(crate) enum ManifestCommand {
    /// Display an image manifest or manifest list as the registry serves it
    Inspect(ManifestInspectArgs),
}

#[derive(Args)]
pub(crate) struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    pub(crate) name: String,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Set platform if the image is multi-platform (os/arch[/variant])
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum PushCompression {
    Gzip,
    Zstd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ManifestFormat {
    /// Docker image manifest v2, schema 2 (what docker pull expects)
    Docker,
    /// OCI image manifest
    Oci,
}

#[derive(Args)]
pub(crate) struct PushArgs {
    /// NAME[:TAG]
    pub(crate) name: String,
    /// Push all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Compression of layers stored uncompressed (built, committed, loaded from docker save)
    #[arg(long, value_enum, default_value_t = PushCompression::Gzip)]
    pub(crate) compression: PushCompression,
    /// Compression level (gzip 1-9, default 6; zstd 1-19, default 3)
    #[arg(long = "compression-level")]
    pub(crate) compression_level: Option<i32>,
    /// Manifest format (default: a pulled image's own, else docker; zstd layers need oci)
    #[arg(long, value_enum)]
    pub(crate) format: Option<ManifestFormat>,
}

#[derive(Args)]
pub(crate) struct LoginArgs {
    /// Registry (default: Docker Hub)
    pub(crate) server: Option<String>,
    /// Username
    #[arg(short, long)]
    pub(crate) username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub(crate) password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub(crate) password_stdin: bool,
}

#[derive(Args)]
pub(crate) struct LogoutArgs {
    /// Registry (default: Docker Hub)
    pub(crate) server: Option<String>,
}

#[derive(Args)]
pub(crate) struct ManifestInspectArgs {
    /// NAME[:TAG|@DIGEST]
    pub(crate) name: String,
}

#[derive(Subcommand)]
pub(crate) enum SystemCommand {
    /// Show strata disk usage
    Df(DfArgs),
    /// Verify every blob digest and every reference in the store
    Check,
    /// Remove unused data: dangling images (all unused with -a) and unreferenced blobs and snapshots
    Prune(PruneArgs),
    /// Show or change store-wide settings (log-max-size, log-max-file: new containers' log
    /// rotation; build-cache-max: the build cache budget a build enforces when it ends)
    Config(ConfigArgs),
}

#[derive(Args)]
pub(crate) struct ConfigArgs {
    /// The setting to show or change; all settings when omitted
    pub(crate) key: Option<String>,
    /// The new value (e.g. 50m for log-max-size, 3 for log-max-file, 10GB for build-cache-max)
    pub(crate) value: Option<String>,
    /// Remove the setting (back to the default)
    #[arg(long, conflicts_with = "value")]
    pub(crate) unset: bool,
}

#[derive(Subcommand)]
pub(crate) enum DockerfileCommand {
    /// Parse a Dockerfile and print its instructions
    Parse(ParseArgs),
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// Tarball to import (plain, gzip or zstd), or - for STDIN
    pub(crate) file: String,
    /// Repository and tag for the new image
    pub(crate) reference: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change")]
    pub(crate) changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub(crate) message: Option<String>,
    /// Set platform (only the host's is accepted)
    #[arg(long)]
    pub(crate) platform: Option<String>,
}

#[derive(Args)]
pub(crate) struct ImagesArgs {
    /// Show only images matching REPOSITORY[:TAG]
    pub(crate) reference: Option<String>,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Show digests
    #[arg(long)]
    pub(crate) digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN)
    #[arg(short, long = "filter")]
    pub(crate) filters: Vec<String>,
    /// Output format: table, json, or a Go-style template such as '{{.ID}} {{.Repository}}'
    #[arg(long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct TagArgs {
    pub(crate) source: String,
    pub(crate) target: String,
}

#[derive(Args)]
pub(crate) struct RmiArgs {
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
    /// Force removal of the image (even if tagged in several repositories or used by a container)
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
}

#[derive(Args)]
pub(crate) struct HistoryArgs {
    pub(crate) image: String,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) human: bool,
    /// Output format: table, json, or a Go-style template
    #[arg(long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    /// Format the output using a Go-style template such as '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub(crate) format: Option<String>,
    /// Return JSON for specified type (only image in this version)
    #[arg(long = "type")]
    pub(crate) kind: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ArchiveFormat {
    /// `docker save` layout, loadable by docker load and podman load
    Docker,
    /// OCI image layout
    Oci,
}

#[derive(Args)]
pub(crate) struct SaveArgs {
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = ArchiveFormat::Docker)]
    pub(crate) format: ArchiveFormat,
}

#[derive(Args)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub(crate) input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(Args)]
pub(crate) struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub(crate) verbose: bool,
}

#[derive(Args)]
pub(crate) struct ParseArgs {
    /// Dockerfile to read, or - for STDIN
    #[arg(default_value = "Dockerfile")]
    pub(crate) file: String,
    /// Print the instructions as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum LintFormat {
    Tty,
    Json,
}

#[derive(Args, Clone)]
pub(crate) struct LintArgs {
    /// Dockerfile to check, or - for STDIN
    #[arg(default_value = "Dockerfile")]
    pub(crate) file: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = LintFormat::Tty)]
    pub(crate) format: LintFormat,
    /// Rule to ignore (id or name); repeatable
    #[arg(long = "ignore")]
    pub(crate) ignore: Vec<String>,
    /// Exit non-zero when a finding is at or above this severity: error, warning, info, style, none
    #[arg(long = "failure-threshold", default_value = "info")]
    pub(crate) failure_threshold: String,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Progress {
    /// tty when stderr is a terminal, plain otherwise
    Auto,
    /// One line per event, the whole output of every RUN
    Plain,
    /// A live view: running steps with a timer and the tail of their output
    Tty,
    /// One JSON object per line on stderr (docs/build-progress-json.md)
    Json,
    /// Nothing but errors
    Quiet,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum BuildNetwork {
    /// A private network with outbound access and no way to the host's loopback
    Default,
    Host,
    /// Loopback only
    None,
}

#[derive(Args)]
pub(crate) struct BuildArgs {
    /// Build context directory, or - for a tar archive (or a lone Dockerfile) on STDIN
    #[arg(default_value = ".")]
    pub(crate) context: PathBuf,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile), or - for STDIN
    #[arg(short, long)]
    pub(crate) file: Option<PathBuf>,
    /// Name and optionally a tag in the name:tag format; repeatable
    #[arg(short, long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Set build-time variables (NAME=value, or NAME to take it from the environment)
    #[arg(long = "build-arg")]
    pub(crate) build_args: Vec<String>,
    /// Secret for RUN --mount=type=secret (id=NAME,src=FILE)
    #[arg(long = "secret")]
    pub(crate) secrets: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub(crate) iidfile: Option<PathBuf>,
    /// Type of progress output
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub(crate) progress: Progress,
    /// Set platform (only the host's is accepted)
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Check the Dockerfile with the lint rules and exit, without building
    #[arg(long)]
    pub(crate) check: bool,
    /// Set metadata for the image (KEY=VALUE); repeatable
    #[arg(long = "label")]
    pub(crate) labels: Vec<String>,
    /// Network for RUN instructions
    #[arg(long, value_enum, default_value_t = BuildNetwork::Default)]
    pub(crate) network: BuildNetwork,
    /// Also write the result: type=docker|oci,dest=FILE (dest=- for STDOUT) or type=local,dest=DIR
    #[arg(short = 'o', long = "output")]
    pub(crate) outputs: Vec<String>,
    /// Say why each step that misses the cache missed
    #[arg(long = "explain-cache")]
    pub(crate) explain_cache: bool,
    /// Always check the registry for newer images (--pull), or --pull=missing|always|never
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "always", default_value = "missing")]
    pub(crate) pull: String,
    /// When a RUN step fails, open a shell in its container (needs a terminal on STDIN)
    #[arg(long = "debug-on-fail")]
    pub(crate) debug_on_fail: bool,
    /// The shell --debug-on-fail runs (words split at spaces)
    #[arg(
        long = "debug-shell",
        value_name = "CMD",
        default_value = "sh",
        requires = "debug_on_fail"
    )]
    pub(crate) debug_shell: String,
}
