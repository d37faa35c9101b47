//! /_ping, /version, /info.

use super::{json, Shared, SERVER};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::{Component, Platform, Version, API_VERSION, MIN_API_VERSION};
use serde_json::json as j;

const PING_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
    (header::PRAGMA, "no-cache"),
    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
];

pub async fn ping() -> Response {
    (StatusCode::OK, PING_HEADERS, "OK").into_response()
}

pub async fn ping_head() -> Response {
    (StatusCode::OK, PING_HEADERS).into_response()
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

pub async fn version() -> Response {
    let details = [
        ("ApiVersion", API_VERSION),
        ("MinAPIVersion", MIN_API_VERSION),
        ("Os", "linux"),
        ("Arch", arch()),
        ("Experimental", "false"),
        ("GitCommit", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("KernelVersion".to_string(), kernel_version())])
    .collect();
    let v = Version {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![Component {
            name: "Engine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            details,
        }],
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: String::new(),
        go_version: String::new(),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel_version(),
        build_time: String::new(),
    };
    json(StatusCode::OK, &v)
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

pub async fn info(State(s): State<Shared>) -> Response {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let forwarding = berth_net::osl::sysctl::read("net/ipv4/ip_forward").is_ok_and(|v| v == "1");
    let (store, advertise) = s.ctl.cluster_info().unwrap_or_default();
    let mut drivers: Vec<String> = ["bridge", "host", "null"].map(String::from).to_vec();
    if !store.is_empty() {
        drivers.push("overlay".into());
    }
    drivers.extend(s.ctl.plugin_drivers());
    let v = j!({
        "ID": s.instance,
        "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
        "Images": 0,
        "Driver": "overlayfs",
        "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": drivers, "Authorization": null, "Log": []},
        "MemoryLimit": true, "SwapLimit": false,
        "IPv4Forwarding": forwarding,
        "BridgeNfIptables": false, "BridgeNfIp6tables": false,
        "Debug": false,
        "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
        "SystemTime": berth_net::network::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "none", "CgroupVersion": "2",
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": s.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"runc": {"path": "runc"}},
        "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "ClusterStore": store,
        "ClusterAdvertise": advertise,
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [],
        "Warnings": null,
        "Networks": s.ctl.count(),
        "Server": SERVER,
        "Uptime": s.started.elapsed().as_secs(),
    });
    json(StatusCode::OK, &v)
}
