//! `berth-testplug`: a small but real network and IPAM plugin (Docker's legacy remote
//! protocol on a unix socket), like the simple plugins in the wild:
//! - CreateNetwork makes a bridge `tpbr<8 hex of id>` holding the gateway address;
//! - CreateEndpoint makes a veth pair `tph<9 hex>` (on the bridge, up) / `tpc<9 hex>` in the
//!   namespace it runs in, and answers the container end's MAC when berth gave none;
//! - Join answers `SrcName: tpc…`, `DstPrefix: eth` and the gateway (unless
//!   `--no-gateway`), so berth moves `tpc…` into the sandbox as `ethN`;
//! - its IPAM hands out /24 pools from `--range` and addresses from them.
//!
//! Every call is appended to `--record FILE` as a JSON line `{"Method":…,"Request":…}`;
//! `--fail Method=msg` answers 500 `{"Err":msg}`, `--ipam-error Method=msg` 200
//! `{"Error":msg}`, `--hang Method` never answers (`--hang-first Method`: only the first),
//! `--delay Method=ms` answers late.
//!
//! With `--scope global` (GetCapabilities Scope and ConnectivityScope) a CreateEndpoint for a
//! network it never got CreateNetwork for (one made on another host) makes its bridge then;
//! `--shared-ipam FILE` keeps the pools in a file every instance shares.
//!
//! Usage: `berth-testplug --socket /run/docker/plugins/testplug.sock [--range 10.123.0.0/16]`.

mod state;

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use serde_json::{json, Value};
use state::Plug;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug, Clone)]
pub struct Args {
    /// Unix socket to listen on (its directory is created).
    #[arg(long)]
    pub socket: PathBuf,
    /// Where pools come from when RequestPool names none (/24 each).
    #[arg(long, default_value = "10.123.0.0/16")]
    pub range: ipnet::Ipv4Net,
    /// GetCapabilities Scope.
    #[arg(long, default_value = "local")]
    pub scope: String,
    /// GetCapabilities ConnectivityScope (`--scope` when not given).
    #[arg(long)]
    pub connectivity_scope: Option<String>,
    /// Join answers no gateway (berth then adds its gateway bridge).
    #[arg(long)]
    pub no_gateway: bool,
    /// Append every call to this file as JSON lines.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// `Method=message`: answer that call with HTTP 500 {"Err": message}. Repeatable.
    #[arg(long)]
    pub fail: Vec<String>,
    /// Never answer this call. Repeatable.
    #[arg(long)]
    pub hang: Vec<String>,
    /// `Method=message`: answer that IPAM call with 200 {"Error": message}, the in-band
    /// error of the IPAM protocol (as moby's own test IPAM does). Repeatable.
    #[arg(long)]
    pub ipam_error: Vec<String>,
    /// IPAM GetCapabilities answers RequiresMACAddress.
    #[arg(long)]
    pub requires_mac: bool,
    /// IPAM GetCapabilities answers RequiresRequestReplay.
    #[arg(long)]
    pub replay: bool,
    /// `DEST=NEXTHOP`: a static route of Join's answer (RouteType 0, via NEXTHOP). Repeatable.
    #[arg(long)]
    pub route: Vec<String>,
    /// `Method=ms`: answer that call only after so many milliseconds. Repeatable.
    #[arg(long)]
    pub delay: Vec<String>,
    /// Never answer the first call of this method (later ones are served). Repeatable.
    #[arg(long)]
    pub hang_first: Vec<String>,
    /// Keep the IPAM's pools in this file, shared by every instance given it (locked per
    /// call): one global address space across hosts, as a cluster-wide IPAM has.
    #[arg(long)]
    pub shared_ipam: Option<PathBuf>,
    /// Append `{"Method":…,"Micros":…}` per answered call: the time spent inside the plugin
    /// (from the request read to the reply built), for berth-bench.
    #[arg(long)]
    pub timings: Option<PathBuf>,
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("Content-Type", "application/vnd.docker.plugins.v1.2+json")],
        v.to_string(),
    )
        .into_response()
}

async fn handle(plug: Arc<Plug>, uri: Uri, body: Bytes) -> Response {
    let t0 = std::time::Instant::now();
    let r = answer(&plug, &uri, body).await;
    if let Some(path) = &plug.args.timings {
        use std::io::Write as _;
        let method = uri.path().trim_start_matches('/');
        let line = json!({"Method": method, "Micros": t0.elapsed().as_micros() as u64});
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    r
}

async fn answer(plug: &Plug, uri: &Uri, body: Bytes) -> Response {
    let method = uri.path().trim_start_matches('/').to_string();
    let req: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return reply(StatusCode::BAD_REQUEST, json!({ "Err": e.to_string() })),
        }
    };
    plug.record(&method, &req);
    if plug.args.hang.contains(&method)
        || (plug.args.hang_first.contains(&method) && plug.first_call(&method))
    {
        std::future::pending::<()>().await;
    }
    let prefix = format!("{method}=");
    if let Some(ms) = plug
        .args
        .delay
        .iter()
        .find_map(|f| f.strip_prefix(&prefix)?.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(msg) = plug.args.fail.iter().find_map(|f| f.strip_prefix(&prefix)) {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, json!({ "Err": msg }));
    }
    if let Some(msg) = plug
        .args
        .ipam_error
        .iter()
        .find_map(|f| f.strip_prefix(&prefix))
    {
        return reply(StatusCode::OK, json!({ "Error": msg }));
    }
    match plug.call(&method, &body).await {
        Ok(Some(v)) => reply(StatusCode::OK, v),
        Ok(None) => reply(
            StatusCode::NOT_FOUND,
            json!({ "Err": "404 page not found" }),
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "Err": e.to_string() }),
        ),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&args.socket);
    let listener = tokio::net::UnixListener::bind(&args.socket)?;
    let socket = args.socket.clone();
    let plug = Arc::new(Plug::new(args)?);
    let app =
        axum::Router::new().fallback(move |uri: Uri, body: Bytes| handle(plug.clone(), uri, body));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    eprintln!("berth-testplug listening on {}", socket.display());
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
