//! The container verbs' shapes (`run`, `ps`, `stop`, `logs`…): Docker's flags, parsed by clap.

use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand};

/// Flags `create` and `run` share.
#[derive(Args, Clone, Default)]
pub(crate) struct ContainerOptions {
    /// Keep STDIN open
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub(crate) rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Set environment variables (KEY=value, or KEY to pass this shell's value)
    #[arg(short, long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<PathBuf>,
    /// Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto])
    #[arg(short, long = "publish")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Working directory inside the container
    #[arg(short, long)]
    pub(crate) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    /// Bind mount a volume (/host:/ctr[:ro], name:/ctr[:ro], or /ctr)
    #[arg(short, long = "volume")]
    pub(crate) volume: Vec<String>,
    /// Connect the container to a network: bridge (default), host or none
    #[arg(long, default_value = "bridge")]
    pub(crate) network: String,
    /// Container host name
    #[arg(short = 'h', long)]
    pub(crate) hostname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long)]
    pub(crate) memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub(crate) cpus: Option<f64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Give extended privileges to this container (all capabilities and devices, no seccomp)
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Add Linux capabilities (e.g. NET_ADMIN, or ALL)
    #[arg(long = "cap-add")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities (e.g. CHOWN, or ALL)
    #[arg(long = "cap-drop")]
    pub(crate) cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]
    #[arg(long = "security-opt")]
    pub(crate) security_opt: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER][:rwm])
    #[arg(long)]
    pub(crate) device: Vec<String>,
    /// Add additional groups to join (names from the image's /etc/group, or gids)
    #[arg(long = "group-add")]
    pub(crate) group_add: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub(crate) init: bool,
    /// Logging driver: json-file (default) or none
    #[arg(long = "log-driver")]
    pub(crate) log_driver: Option<String>,
    /// Command to run to check health (run with /bin/sh -c in the container)
    #[arg(long = "health-cmd")]
    pub(crate) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h), e.g. 30s
    #[arg(long = "health-interval")]
    pub(crate) health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub(crate) health_timeout: Option<String>,
    /// Start period for the container to initialize before failures count (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub(crate) health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub(crate) health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub(crate) no_healthcheck: bool,
    /// Log driver options: max-size=SIZE (e.g. 10m, -1 for no limit), max-file=N
    #[arg(long = "log-opt")]
    pub(crate) log_opt: Vec<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries]
    #[arg(long, default_value = "no")]
    pub(crate) restart: String,
    /// Set meta data on a container (KEY=value)
    #[arg(short, long = "label")]
    pub(crate) label: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub(crate) stop_timeout: Option<i64>,
    /// Set platform (only the host's is accepted)
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Pull image before running: missing, always or never
    #[arg(long, default_value = "missing")]
    pub(crate) pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
}

/// `IMAGE [COMMAND] [ARG...]`: as with Docker, everything after the image belongs to the
/// container (`strata run img --help` runs the image with `--help`), so this is one trailing
/// list whose first word is the image.
#[derive(Args)]
pub(crate) struct ImageAndCommand {
    /// The image, then the command and arguments that replace its CMD
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    words: Vec<String>,
}

impl ImageAndCommand {
    /// The image and the command (empty: the image's own).
    pub(crate) fn split(mut self) -> (String, Vec<String>) {
        let command = self.words.split_off(1.min(self.words.len()));
        (self.words.pop().unwrap_or_default(), command)
    }
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub(crate) detach: bool,
    #[command(flatten)]
    pub(crate) options: ContainerOptions,
    #[command(flatten)]
    pub(crate) target: ImageAndCommand,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) options: ContainerOptions,
    #[command(flatten)]
    pub(crate) target: ImageAndCommand,
}

#[derive(Args)]
pub(crate) struct StartArgs {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub(crate) attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub(crate) interactive: bool,
}

#[derive(Args)]
pub(crate) struct StopArgs {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time")]
    pub(crate) time: Option<i64>,
}

#[derive(Args)]
pub(crate) struct KillArgs {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub(crate) signal: String,
}

#[derive(Args)]
pub(crate) struct ContainersArgs {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct RmArgs {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub(crate) volumes: bool,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    pub(crate) container: String,
    /// Follow log output
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub(crate) tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub(crate) timestamps: bool,
}

#[derive(Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Show the latest created container
    #[arg(short, long)]
    pub(crate) latest: bool,
    /// Pretty-print containers using a Go template, or json
    #[arg(long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub(crate) struct ExecArgs {
    /// Keep STDIN open
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub(crate) env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub(crate) workdir: Option<String>,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
    pub(crate) container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args)]
pub(crate) struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeRmArgs),
}

#[derive(Args)]
pub(crate) struct VolumeCreateArgs {
    pub(crate) name: Option<String>,
}

#[derive(Args)]
pub(crate) struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct VolumeRmArgs {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    /// Accepted for Docker compatibility (a volume in use is never removed)
    #[arg(short, long)]
    pub(crate) force: bool,
}

/// `strata diff CONTAINER`
#[derive(Args)]
pub(crate) struct DiffArgs {
    pub(crate) container: String,
}

/// `strata commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`
#[derive(Args)]
pub(crate) struct CommitArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub(crate) message: Option<String>,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub(crate) author: Option<String>,
    /// Pause container during commit
    #[arg(short, long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true,
          default_missing_value = "true", require_equals = true)]
    pub(crate) pause: bool,
    pub(crate) container: String,
    pub(crate) reference: Option<String>,
}

/// `strata export [-o FILE] CONTAINER`
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    pub(crate) container: String,
}

/// `strata cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-` and `strata cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH`
#[derive(Args)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub(crate) follow_link: bool,
    pub(crate) source: String,
    pub(crate) destination: String,
}

/// `strata top CONTAINER [ps OPTIONS]`
#[derive(Args)]
pub(crate) struct TopArgs {
    pub(crate) container: String,
    /// ps options (accepted for compatibility; the columns are always those of `ps -ef`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) ps_args: Vec<String>,
}
