//! berth: the command line, with docker's syntax. It only speaks HTTP to berthd: anything it
//! does, an API client can do.

mod client;
mod cmd;
mod format;

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
    /// Manage networks
    #[command(subcommand)]
    Network(cmd::network::NetworkCmd),
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
        let r = match cli.cmd {
            Command::Network(n) => cmd::network::run(&client, n).await,
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
