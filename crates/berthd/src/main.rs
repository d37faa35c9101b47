#![recursion_limit = "256"]
//! berthd: the berth daemon. Serves the Docker Engine API on a unix socket and drives the
//! network library.

mod api;
mod config;
mod engine;
mod guard;
mod heap;

use anyhow::Context;
use berth_net::firewall::Nftables;
use berth_net::osl::netlink::Netlink;
use berth_net::store::Store;
use berth_net::Controller;
use clap::Parser;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    heap::tune();
    // `berthd keeper SOCKET`: the fd keeper berthd starts for itself (see container::keeper).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.len() == 3 && argv[1] == "keeper" {
        return Ok(berth_runtime::container::keeper::serve(
            std::path::Path::new(&argv[2]),
        )?);
    }
    let args = config::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(args.log_level.as_filter())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Two workers match the machines berth targets; netlink and nftables calls are short.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: config::Args) -> anyhow::Result<()> {
    let socket = args.socket_path()?;
    std::fs::create_dir_all(&args.data_root)
        .with_context(|| format!("creating data root {}", args.data_root.display()))?;
    std::fs::create_dir_all(&args.exec_root)
        .with_context(|| format!("creating exec root {}", args.exec_root.display()))?;
    // Before anything is read or changed: another daemon on the same root or socket wins.
    let _lock = guard::lock_data_root(&args.data_root)?;
    guard::refuse_live_socket(&socket)?;
    heap::spawn_trimmer();
    let store = Store::open(&args.data_root.join("berth.db"))?;
    let instance = args.instance();
    let osl = Arc::new(Netlink::new().context("opening netlink")?);
    let fw = Arc::new(Nftables::new(&instance)?);
    let ctl = Controller::start(args.net_config(&instance)?, store.clone(), osl, fw)
        .await
        .map_err(|e| anyhow::anyhow!("starting the network controller: {e}"))?;

    let listener = guard::bind_api_socket(&socket, 0o660)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    tracing::info!(
        "berthd {} listening on unix://{} (data root {}, firewall table inet {})",
        env!("CARGO_PKG_VERSION"),
        socket.display(),
        args.data_root.display(),
        instance
    );
    let images = berth_runtime::image::ImageStore::open(
        &args.data_root.join("image"),
        Some(std::path::PathBuf::from("/bin/busybox")).filter(|p| p.exists()),
    )
    .map_err(|e| anyhow::anyhow!("opening the image store: {e}"))?;
    let mut runtime = berth_runtime::container::Runtime::new(
        args.runtime.clone(),
        args.data_root.join("containers"),
        args.exec_root.join("containers"),
    )
    .map_err(|e| anyhow::anyhow!("preparing the container runtime: {e}"))?;
    // The keeper runs runc and is the containers' parent, so their exit codes are collected
    // without a shim per container, and outlive berthd (see container::keeper).
    runtime
        .use_keeper(berth_runtime::container::keeper::Keeper {
            // its own 0700 directory: the exec root holds the API socket, open to a group
            sock: args.exec_root.join("keeper").join("keeper.sock"),
            exe: std::env::current_exe().context("locating berthd")?,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // After the keeper started: containers keep the limits berthd was given.
    raise_nofile();
    let engine =
        engine::Engine::start(ctl.clone(), Arc::new(images), Arc::new(runtime), store).await?;
    let state = Arc::new(api::AppState::new(engine, &args, &instance));
    api::serve(listener, state, shutdown()).await?;
    ctl.settle().await;
    let _ = std::fs::remove_file(&socket);
    tracing::info!("berthd stopped");
    Ok(())
}

/// berthd holds one socket per published host port (a 10,001-port range is 10,001 of them,
/// twice with IPv6): raise its open-file limit as far as the kernel allows.
fn raise_nofile() {
    let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(1 << 20);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let want = libc::rlimit {
            rlim_cur: max.max(lim.rlim_max),
            rlim_max: max.max(lim.rlim_max),
        };
        // Raising the hard limit needs CAP_SYS_RESOURCE; without it, the soft one up to it.
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
