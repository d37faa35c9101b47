//! `berth network ...`: docker's flags, output and client-side checks.

use crate::client::{query_escape, Client};
use crate::format;
use anyhow::bail;
use clap::{Args, Subcommand};
use hyper::Method;
use ipnet::IpNet;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

// Parsed once per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Explain whether and why one container (or the host, or an address) reaches another
    Diagnose(super::network_diag::DiagnoseArgs),
    /// Show the topology: networks, bridges, containers, ports
    Graph(super::network_diag::GraphArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Create swarm routing-mesh network
    #[arg(long)]
    ingress: bool,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    ipam_opt: Vec<String>,
    /// Control the network's scope
    #[arg(long, default_value = "")]
    scope: String,
    name: String,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    verbose: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    filter: Vec<String>,
}

pub async fn run(c: &Client, cmd: NetworkCmd) -> anyhow::Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => create(c, a).await,
        NetworkCmd::Ls(a) => ls(c, a).await,
        NetworkCmd::Inspect(a) => inspect(c, a).await,
        NetworkCmd::Rm(a) => rm(c, a).await,
        NetworkCmd::Prune(a) => prune(c, a).await,
        NetworkCmd::Connect(a) => connect(c, a).await,
        NetworkCmd::Disconnect(a) => disconnect(c, a).await,
        NetworkCmd::Diagnose(a) => super::network_diag::diagnose(c, a).await,
        NetworkCmd::Graph(a) => super::network_diag::graph(c, a).await,
    }
}

fn kv_list(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if what == "label" => Ok((s.clone(), String::new())),
            None => bail!("invalid {what} {s:?}: want KEY=VALUE"),
        })
        .collect()
}

/// The docker CLI's own checks: every range, gateway and aux address must sit in exactly one
/// of the given subnets, at most one range and gateway per subnet.
fn ipam_config(a: &CreateArgs) -> anyhow::Result<Vec<Value>> {
    if a.subnet.is_empty() && (!a.ip_range.is_empty() || !a.gateway.is_empty()) {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let nets: Vec<Option<IpNet>> = a
        .subnet
        .iter()
        .map(|s| s.parse::<IpNet>().ok().map(|n| n.trunc()))
        .collect();
    for (i, x) in nets.iter().enumerate() {
        for y in nets.iter().skip(i + 1) {
            if let (Some(x), Some(y)) = (x, y) {
                if x.contains(y) || y.contains(x) {
                    bail!("multiple overlapping subnet configuration is not supported");
                }
            }
        }
    }
    let find = |ip: IpAddr| nets.iter().position(|n| n.is_some_and(|n| n.contains(&ip)));
    let mut cfgs: Vec<Map<String, Value>> = a
        .subnet
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("Subnet".into(), json!(s));
            m
        })
        .collect();
    for r in &a.ip_range {
        let i = r
            .parse::<IpNet>()
            .ok()
            .and_then(|rn| {
                nets.iter()
                    .position(|n| n.is_some_and(|n| n.contains(&rn.trunc())))
            })
            .ok_or_else(|| anyhow::anyhow!("no matching subnet for range {r}"))?;
        if let Some(prev) = cfgs[i].get("IPRange") {
            bail!(
                "cannot configure multiple ranges ({}, {r}) on the same subnet ({})",
                prev.as_str().unwrap_or(""),
                a.subnet[i]
            );
        }
        cfgs[i].insert("IPRange".into(), json!(r));
    }
    for g in &a.gateway {
        let i = g
            .parse::<IpAddr>()
            .ok()
            .and_then(find)
            .ok_or_else(|| anyhow::anyhow!("no matching subnet for gateway {g}"))?;
        if let Some(prev) = cfgs[i].get("Gateway") {
            bail!(
                "cannot configure multiple gateways ({}, {g}) for the same subnet ({})",
                prev.as_str().unwrap_or(""),
                a.subnet[i]
            );
        }
        cfgs[i].insert("Gateway".into(), json!(g));
    }
    for (k, v) in kv_list(&a.aux_address, "aux-address")? {
        let i = v
            .parse::<IpAddr>()
            .ok()
            .and_then(find)
            .ok_or_else(|| anyhow::anyhow!("no matching subnet for aux-address {v}"))?;
        cfgs[i]
            .entry("AuxiliaryAddresses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(k, json!(v));
    }
    Ok(cfgs.into_iter().map(Value::Object).collect())
}

async fn create(c: &Client, a: CreateArgs) -> anyhow::Result<i32> {
    let body = json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Scope": a.scope,
        "EnableIPv6": a.ipv6,
        "IPAM": {
            "Driver": a.ipam_driver,
            "Options": kv_list(&a.ipam_opt, "ipam-opt")?,
            "Config": ipam_config(&a)?,
        },
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "Options": kv_list(&a.opt, "opt")?,
        "Labels": kv_list(&a.label, "label")?,
    });
    let (_, resp) = c
        .call(Method::POST, "/networks/create", Some(&body))
        .await?;
    let v: Value = serde_json::from_slice(&resp)?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("{w}");
    }
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub(crate) fn filters_param(items: &[String]) -> anyhow::Result<String> {
    if items.is_empty() {
        return Ok(String::new());
    }
    let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(format!(
        "?filters={}",
        query_escape(&berth_api::encode_filters(&f))
    ))
}

/// The fields `network ls --format` offers, as the docker CLI names them.
fn ls_row(n: &Value, no_trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let labels = n["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    // alphabetical, as docker's `--format json` prints them
    json!({
        "CreatedAt": go_time(n["Created"].as_str().unwrap_or("")),
        "Driver": n["Driver"],
        "ID": if no_trunc { id } else { &id[..id.len().min(12)] },
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels,
        "Name": n["Name"],
        "Scope": n["Scope"],
    })
}

/// Go's default time format: `2026-11-23 07:14:06.167643676 +0000 UTC`.
fn go_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z').and_then(|s| s.split_once('T')) {
        Some((d, t)) => format!("{d} {t} +0000 UTC"),
        None => rfc3339.to_string(),
    }
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let v = c
        .get_json(&format!("/networks{}", filters_param(&a.filter)?))
        .await?;
    let mut nets = v.as_array().cloned().unwrap_or_default();
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = nets.iter().map(|n| ls_row(n, a.no_trunc)).collect();
    let fmt = if a.quiet {
        "{{.ID}}"
    } else {
        format::resolve_list_format(a.format.as_deref(), format::NETWORK_LS_TABLE)
    };
    let headers = format::header_map(format::NETWORK_LS_HEADERS);
    let out = format::render_list(fmt, &headers, &rows).map_err(anyhow::Error::msg)?;
    print!("{out}");
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let verbose = if a.verbose { "?verbose=true" } else { "" };
    for n in &a.networks {
        match c
            .get_json(&format!("/networks/{}{verbose}", query_escape(n)))
            .await
        {
            Ok(v) => found.push(v),
            Err(e) => errors.push(crate::render_error(&e)),
        }
    }
    Ok(format::print_inspect(a.format.as_deref(), &found, errors))
}

async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for n in &a.networks {
        match c
            .call(
                Method::DELETE,
                &format!("/networks/{}", query_escape(n)),
                None,
            )
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) => {
                let not_found = e
                    .downcast_ref::<crate::client::DaemonError>()
                    .is_some_and(|d| d.status == hyper::StatusCode::NOT_FOUND);
                if !(a.force && not_found) {
                    eprintln!("{}", crate::render_error(&e));
                    code = 1;
                }
            }
        }
    }
    Ok(code)
}

async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force && !super::prune::confirm("all custom networks not used by at least one container")?
    {
        return Ok(0);
    }
    let (_, body) = c
        .call(
            Method::POST,
            &format!("/networks/prune{}", filters_param(&a.filter)?),
            None,
        )
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    super::prune::print_deleted(&v, "NetworksDeleted", "Networks");
    Ok(0)
}

#[derive(Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt")]
    driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
    network: String,
    container: String,
}

#[derive(Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

/// The `POST /networks/{id}/connect` body as docker 28 sends it (operational fields empty;
/// client-side checks of its flag parser).
fn connect_body(a: &ConnectArgs) -> anyhow::Result<Value> {
    let ip = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<String>> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => match s.parse::<IpAddr>() {
                Ok(ip) => Ok(Some(ip.to_string())),
                Err(_) => bail!(
                    "invalid argument {s:?} for \"--{flag}\" flag: invalid string being converted to IP address: {s}"
                ),
            },
        }
    };
    let mut ipam = Map::new();
    if let Some(v4) = ip("ip", &a.ip)? {
        ipam.insert("IPv4Address".into(), json!(v4));
    }
    if let Some(v6) = ip("ip6", &a.ip6)? {
        ipam.insert("IPv6Address".into(), json!(v6));
    }
    if !a.link_local_ip.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(a.link_local_ip));
    }
    for l in &a.link {
        if l.is_empty() || l.split(':').count() > 2 {
            bail!("invalid argument {l:?} for \"--link\" flag: bad format for links: {l}");
        }
    }
    let list = |v: &[String]| if v.is_empty() { Value::Null } else { json!(v) };
    Ok(json!({
        "Container": a.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": list(&a.link),
            "Aliases": list(&a.alias),
            "MacAddress": "",
            // like labels, a bare key means an empty value
            "DriverOpts": kv_list(&a.driver_opt, "label")?,
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
        },
    }))
}

async fn connect(c: &Client, a: ConnectArgs) -> anyhow::Result<i32> {
    let body = connect_body(&a)?;
    let path = format!("/networks/{}/connect", query_escape(&a.network));
    c.call(Method::POST, &path, Some(&body)).await?;
    Ok(0)
}

async fn disconnect(c: &Client, a: DisconnectArgs) -> anyhow::Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    let path = format!("/networks/{}/disconnect", query_escape(&a.network));
    c.call(Method::POST, &path, Some(&body)).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    fn cfg(args: &[&str]) -> Result<Vec<Value>, String> {
        let t = T::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        ipam_config(&t.a).map_err(|e| e.to_string())
    }

    #[test]
    fn client_side_ipam_checks() {
        assert_eq!(
            cfg(&["--gateway", "10.0.0.1", "n"]).unwrap_err(),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            cfg(&["--subnet", "10.0.0.0/24", "--gateway", "10.6.0.1", "n"]).unwrap_err(),
            "no matching subnet for gateway 10.6.0.1"
        );
        assert_eq!(
            cfg(&["--subnet", "10.0.0.0/24", "--ip-range", "10.10.0.0/25", "n"]).unwrap_err(),
            "no matching subnet for range 10.10.0.0/25"
        );
        assert_eq!(
            cfg(&["--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "n"]).unwrap_err(),
            "multiple overlapping subnet configuration is not supported"
        );
        let ok = cfg(&[
            "--subnet=10.0.1.0/24",
            "--gateway=10.0.1.254",
            "--ip-range=10.0.1.128/25",
            "--aux-address",
            "a=10.0.1.130",
            "n",
        ])
        .unwrap();
        assert_eq!(
            ok[0],
            json!({"Subnet":"10.0.1.0/24","IPRange":"10.0.1.128/25","Gateway":"10.0.1.254","AuxiliaryAddresses":{"a":"10.0.1.130"}})
        );
    }

    #[derive(Parser)]
    struct C {
        #[command(flatten)]
        a: ConnectArgs,
    }

    fn connect_json(args: &[&str]) -> Result<Value, String> {
        let c = C::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        connect_body(&c.a).map_err(|e| e.to_string())
    }

    #[test]
    fn connect_bodies() {
        let v = connect_json(&[
            "--ip",
            "10.201.0.200",
            "--alias",
            "ca1",
            "--link",
            "rsch-c3:l3",
            "--driver-opt",
            "com.example=1",
            "rsch-n4",
            "rsch-rr1",
        ])
        .unwrap();
        assert_eq!(v["Container"], "rsch-rr1");
        let ep = &v["EndpointConfig"];
        assert_eq!(ep["IPAMConfig"], json!({"IPv4Address": "10.201.0.200"}));
        assert_eq!(ep["Links"], json!(["rsch-c3:l3"]));
        assert_eq!(ep["Aliases"], json!(["ca1"]));
        assert_eq!(ep["DriverOpts"], json!({"com.example": "1"}));
        let v = connect_json(&["n", "c"]).unwrap();
        assert_eq!(v["EndpointConfig"]["IPAMConfig"], json!({}));
        assert_eq!(v["EndpointConfig"]["Aliases"], Value::Null);
        assert_eq!(
            connect_json(&["--ip", "notanip", "n", "c"]).unwrap_err(),
            "invalid argument \"notanip\" for \"--ip\" flag: invalid string being converted to IP address: notanip"
        );
    }

    #[test]
    fn go_time_format() {
        assert_eq!(
            go_time("2026-11-23T07:14:06.167643676Z"),
            "2026-11-23 07:14:06.167643676 +0000 UTC"
        );
    }
}
