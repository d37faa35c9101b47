//! Container commands (`run`, `create`, `start`, `ps`, `exec`, ...), with docker's flags,
//! request sequences (engine-api.md §3.1), output and exit codes.

mod attach;
pub mod create_args;
mod exec;
mod inspect;
mod lifecycle;
mod logs;
pub mod mount_args;
pub mod ports;
mod prune;
mod ps;
pub mod resource_args;
mod run;
mod session;
mod stats;
mod update;

#[cfg(test)]
mod create_args_tests;

use crate::client::{query_escape, Client, DaemonError};
use clap::{ArgAction, Args, Subcommand};
use hyper::StatusCode;

pub use attach::attach;
pub use exec::exec;
pub use inspect::{inspect, port};
pub use lifecycle::{kill, restart, rm, stop, wait};
pub use logs::logs;
pub use ps::ps;
pub use run::{create, run, start, start_created};
pub use stats::{stats, StatsArgs};
pub use update::{pause, unpause, update, PauseArgs, UpdateArgs};

/// `berth container <verb>`: the same commands under docker's management command.
// Parsed once per process; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Remove all stopped containers
    Prune(prune::PruneArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

pub async fn container(c: &Client, cmd: ContainerCmd) -> anyhow::Result<i32> {
    match cmd {
        ContainerCmd::Attach(a) => attach(c, a).await,
        ContainerCmd::Create(a) => create(c, a).await,
        ContainerCmd::Exec(a) => exec(c, a).await,
        ContainerCmd::Inspect(a) => inspect::container_inspect(c, a).await,
        ContainerCmd::Kill(a) => kill(c, a).await,
        ContainerCmd::Logs(a) => logs(c, a).await,
        ContainerCmd::Ls(a) => ps(c, a).await,
        ContainerCmd::Port(a) => port(c, a).await,
        ContainerCmd::Pause(a) => pause(c, a).await,
        ContainerCmd::Prune(a) => prune::prune(c, a).await,
        ContainerCmd::Restart(a) => restart(c, a).await,
        ContainerCmd::Rm(a) => rm(c, a).await,
        ContainerCmd::Run(a) => run(c, a).await,
        ContainerCmd::Start(a) => start(c, a).await,
        ContainerCmd::Stats(a) => stats(c, a).await,
        ContainerCmd::Stop(a) => stop(c, a).await,
        ContainerCmd::Unpause(a) => unpause(c, a).await,
        ContainerCmd::Update(a) => update(c, a).await,
        ContainerCmd::Wait(a) => wait(c, a).await,
    }
}

/// pflag-style boolean that defaults to true: `--sig-proxy` or `--sig-proxy=false`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: create_args::CreateFlags,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: create_args::CreateFlags,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub type RestartArgs = StopArgs;

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short, long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARG...]"
    )]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// `/containers/{name}` with the name escaped.
fn path(name: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", query_escape(name))
}

fn daemon_status(e: &anyhow::Error) -> Option<StatusCode> {
    e.downcast_ref::<DaemonError>().map(|d| d.status)
}

/// The `Error response from daemon: ...` (or connection error) line docker would print.
fn render(e: &anyhow::Error) -> String {
    crate::render_error(e)
}
