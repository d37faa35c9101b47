//! berth: the command line, with docker's syntax. It only speaks HTTP to berthd: anything it
//! does, an API client can do.

mod client;
mod cmd;
mod compose;
mod format;
mod hijack;

use clap::{Parser, Subcommand};

const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Container networking done right, with docker's syntax"
)]
struct Cli {
    /// Daemon socket to connect to (also BERTH_HOST, DOCKER_HOST)
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    #[command(subcommand)]
    cmd: Command,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(cmd::container::RunArgs),
    /// Execute a command in a running container
    Exec(cmd::container::ExecArgs),
    /// List containers
    Ps(cmd::container::PsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(cmd::container::ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(cmd::image::ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(cmd::network::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(cmd::volume::VolumeCmd),
    /// Copy files/folders between a container and the local filesystem
    Cp(cmd::cp::CpArgs),
    /// Run multi-container projects described in compose files
    Compose(compose::ComposeArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(cmd::container::AttachArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(cmd::container::CreateArgs),
    /// List images
    Images(cmd::image::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::image::ImportArgs),
    /// Return low-level information on berth objects
    Inspect(cmd::container::InspectArgs),
    /// Kill one or more running containers
    Kill(cmd::container::KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(cmd::image::LoadArgs),
    /// Fetch the logs of a container
    Logs(cmd::container::LogsArgs),
    /// List port mappings or a specific mapping for the container
    Port(cmd::container::PortArgs),
    /// Pause all processes within one or more containers
    Pause(cmd::container::PauseArgs),
    /// Restart one or more containers
    Restart(cmd::container::RestartArgs),
    /// Remove one or more containers
    Rm(cmd::container::RmArgs),
    /// Remove one or more images
    Rmi(cmd::image::RmiArgs),
    /// Start one or more stopped containers
    Start(cmd::container::StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(cmd::container::StatsArgs),
    /// Stop one or more running containers
    Stop(cmd::container::StopArgs),
    /// Unpause all processes within one or more containers
    Unpause(cmd::container::PauseArgs),
    /// Update configuration of one or more containers
    Update(cmd::container::UpdateArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd::image::TagArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cmd::container::WaitArgs),
    /// Show the berth version information
    Version,
    /// Display system-wide information
    Info,
}

fn host(cli: &Cli) -> String {
    cli.host
        .clone()
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

fn main() {
    // Like any Unix filter (and the docker CLI), stop quietly when the reader goes away:
    // `berth network ls | head -1` must not panic on a closed pipe.
    // SAFETY: restoring a default disposition installs no handler; no thread runs yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        let client = match client::Client::new(&host(&cli)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        use cmd::container as ctr;
        let r = match cli.cmd {
            Command::Run(a) => ctr::run(&client, a).await,
            Command::Exec(a) => ctr::exec(&client, a).await,
            Command::Ps(a) => ctr::ps(&client, a).await,
            Command::Container(c) => ctr::container(&client, c).await,
            Command::Image(i) => cmd::image::run(&client, i).await,
            Command::Attach(a) => ctr::attach(&client, a).await,
            Command::Create(a) => ctr::create(&client, a).await,
            Command::Images(a) => cmd::image::images(&client, a).await,
            Command::Import(a) => cmd::image::import(&client, a).await,
            Command::Inspect(a) => ctr::inspect(&client, a).await,
            Command::Kill(a) => ctr::kill(&client, a).await,
            Command::Load(a) => cmd::image::load(&client, a).await,
            Command::Logs(a) => ctr::logs(&client, a).await,
            Command::Port(a) => ctr::port(&client, a).await,
            Command::Pause(a) => ctr::pause(&client, a).await,
            Command::Restart(a) => ctr::restart(&client, a).await,
            Command::Rm(a) => ctr::rm(&client, a).await,
            Command::Rmi(a) => cmd::image::rmi(&client, a).await,
            Command::Start(a) => ctr::start(&client, a).await,
            Command::Stats(a) => ctr::stats(&client, a).await,
            Command::Stop(a) => ctr::stop(&client, a).await,
            Command::Unpause(a) => ctr::unpause(&client, a).await,
            Command::Update(a) => ctr::update(&client, a).await,
            Command::Tag(a) => cmd::image::tag(&client, a).await,
            Command::Wait(a) => ctr::wait(&client, a).await,
            Command::Network(n) => cmd::network::run(&client, n).await,
            Command::Compose(a) => compose::run(&client, a).await,
            Command::Volume(v) => cmd::volume::run(&client, v).await,
            Command::Cp(a) => cmd::cp::run(&client, a).await,
            Command::Version => cmd::system::version(&client).await,
            Command::Info => cmd::system::info(&client).await,
        };
        match r {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{}", render_error(&e));
                1
            }
        }
    });
    // exit runs no destructors: put a raw terminal back first
    hijack::term::restore();
    std::process::exit(code);
}

/// Daemon errors print as docker prints them; connection errors with their cause.
fn render_error(e: &anyhow::Error) -> String {
    if let Some(d) = e.downcast_ref::<client::DaemonError>() {
        return d.to_string();
    }
    let mut s = e.to_string();
    if let Some(c) = e.chain().nth(1) {
        if !s.contains("Is the berth daemon running") {
            s = format!("{s}: {c}");
        }
    }
    s
}
