//! `create`/`run` flags and their conversion into the `POST /containers/create` body
//! (container Config + HostConfig + NetworkingConfig), following docker 28's `parse` and
//! `parseNetworkOpts` (engine-api.md §2.4).

use super::ports;
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Args, Debug, Default)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set meta data on a container
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    #[command(flatten)]
    pub resources: super::resource_args::ResourceFlags,
    #[command(flatten)]
    pub create_only: super::resource_args::CreateOnlyFlags,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// What `run`/`create` need besides the body.
#[derive(Debug)]
pub struct Spec {
    pub body: Value,
    pub image: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub auto_remove: bool,
}

/// The environment and terminal the body depends on, injectable for tests.
pub struct Host<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// (rows, columns) of our stdout when it is a terminal
    pub console: (u16, u16),
}

/// pflag's wording for a value its validator refused.
fn bad_flag(value: &str, flag: &str, err: String) -> String {
    format!("invalid argument \"{value}\" for \"{flag}\" flag: {err}")
}

fn each<T>(
    values: &[String],
    flag: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    values
        .iter()
        .map(|v| f(v).map_err(|e| bad_flag(v, flag, e)))
        .collect()
}

/// `opts.ValidateEnv`: a bare name takes its value from our environment if set there.
pub fn validate_env(v: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (k, has_value) = match v.split_once('=') {
        Some((k, _)) => (k, true),
        None => (v, false),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {v}"));
    }
    if has_value {
        return Ok(v.to_string());
    }
    Ok(env(k).map_or_else(|| v.to_string(), |val| format!("{k}={val}")))
}

fn validate_ip(v: &str) -> Result<String, String> {
    v.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {v}"))
}

/// `opts.ValidateExtraHost`: `host:ip` or `host=ip`, sent as `host:ip`.
fn validate_extra_host(v: &str) -> Result<String, String> {
    let (k, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .filter(|(k, _)| !k.is_empty() && !k.contains(':'))
        .ok_or_else(|| format!("bad format for add-host: {v:?}"))?;
    if ip != "host-gateway" {
        let bare = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(ip);
        if bare.parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {bare:?}"));
        }
        return Ok(format!("{k}:{bare}"));
    }
    Ok(format!("{k}:{ip}"))
}

/// `opts.ParseLink`: `name` or `name:alias`.
fn validate_link(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("empty string specified for links".into());
    }
    if v.split(':').count() > 2 {
        return Err(format!("bad format for links: {v}"));
    }
    Ok(v.to_string())
}

fn validate_label(v: &str) -> Result<String, String> {
    let key = v.split('=').next().unwrap_or_default().trim();
    if key.is_empty() {
        return Err(format!("invalid label '{v}': empty name"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(v.to_string())
}

/// `opts.ValidateDNSSearch`: a domain name, or `.`.
fn validate_dns_search(v: &str) -> Result<String, String> {
    let v = v.trim_matches(' ');
    if v == "." {
        return Ok(v.into());
    }
    let name = v.strip_suffix('.').unwrap_or(v);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.split('.').all(label_ok) && v.len() <= 255 {
        Ok(v.into())
    } else {
        Err(format!("{v} is not a valid domain"))
    }
}

fn valid_mac(v: &str) -> bool {
    let parts: Vec<&str> = v.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Mirrors `container.NetworkMode.IsUserDefined`.
fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// One `--network` value: a name, or docker's `name=n,alias=a,ip=...` form.
#[derive(Debug, Default, Clone)]
struct Attachment {
    target: String,
    aliases: Vec<String>,
    links: Vec<String>,
    ipv4: String,
    ipv6: String,
    mac: String,
    link_local: Vec<String>,
    driver_opts: BTreeMap<String, String>,
}

fn parse_network(v: &str) -> Result<Attachment, String> {
    let long = v
        .split(',')
        .all(|f| f.split_once('=').is_some_and(|(k, _)| !k.is_empty()));
    if !long {
        return Ok(Attachment {
            target: v.to_string(),
            ..Default::default()
        });
    }
    let mut a = Attachment::default();
    for field in v.split(',') {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        let val = val.trim().to_string();
        match k.trim().to_lowercase().as_str() {
            "name" => a.target = val,
            "alias" => a.aliases.push(val),
            "ip" => a.ipv4 = val,
            "ip6" => a.ipv6 = val,
            "mac-address" => a.mac = val,
            "link-local-ip" => a.link_local.push(val),
            "driver-opt" => {
                let (dk, dv) = val
                    .split_once('=')
                    .ok_or_else(|| "invalid key value pair format in driver options".to_string())?;
                a.driver_opts
                    .insert(dk.trim().to_lowercase(), dv.trim().to_string());
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if a.target.is_empty() {
        return Err("network name not specified".into());
    }
    Ok(a)
}

/// `parseNetworkAttachmentOpt`'s checks.
fn check(a: &Attachment) -> Result<(), String> {
    if a.target.trim().is_empty() {
        return Err("no name set for network".into());
    }
    if !is_user_defined(&a.target) {
        if !a.aliases.is_empty() {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".into(),
            );
        }
        if !a.links.is_empty() {
            return Err("links are only supported for user-defined networks".into());
        }
    }
    if !a.mac.is_empty() && !valid_mac(&a.mac) {
        return Err(format!("{} is not a valid mac address", a.mac));
    }
    Ok(())
}

fn has_options(a: &Attachment) -> bool {
    !(a.ipv4.is_empty()
        && a.ipv6.is_empty()
        && a.link_local.is_empty()
        && a.aliases.is_empty()
        && a.links.is_empty()
        && a.mac.is_empty()
        && a.driver_opts.is_empty())
}

/// An EndpointSettings as the docker CLI sends it (operational fields empty).
fn endpoint(a: &Attachment) -> Value {
    let list = |v: &[String]| if v.is_empty() { Value::Null } else { json!(v) };
    let ipam = if a.ipv4.is_empty() && a.ipv6.is_empty() && a.link_local.is_empty() {
        Value::Null
    } else {
        let mut m = Map::new();
        if !a.ipv4.is_empty() {
            m.insert("IPv4Address".into(), json!(a.ipv4));
        }
        if !a.ipv6.is_empty() {
            m.insert("IPv6Address".into(), json!(a.ipv6));
        }
        if !a.link_local.is_empty() {
            m.insert("LinkLocalIPs".into(), json!(a.link_local));
        }
        Value::Object(m)
    };
    json!({
        "IPAMConfig": ipam,
        "Links": list(&a.links),
        "Aliases": list(&a.aliases),
        "MacAddress": a.mac,
        "DriverOpts": if a.driver_opts.is_empty() { Value::Null } else { json!(a.driver_opts) },
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
    })
}

/// `parseNetworkOpts`: the first network takes `--network-alias`, `--link` (not on the
/// default network, where links stay in HostConfig), `--ip`, `--ip6`, `--mac-address`; a lone
/// network without options sends no endpoint config, and no `--network` at all sends one for
/// `default`.
fn endpoints(f: &CreateFlags) -> Result<(String, Map<String, Value>), String> {
    let mut nets = f
        .network
        .iter()
        .map(|v| parse_network(v).map_err(|e| bad_flag(v, "--network", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let implicit = nets.is_empty();
    if implicit {
        nets.push(Attachment {
            target: "default".into(),
            ..Default::default()
        });
    }
    let first = &mut nets[0];
    let conflict = |what: &str, per: &str| {
        Err(format!(
            "conflicting options: cannot specify both --{what} and per-network {per}"
        ))
    };
    if !first.aliases.is_empty() && !f.network_alias.is_empty() {
        return conflict("network-alias", "alias");
    }
    if !first.ipv4.is_empty() && f.ip.is_some() {
        return conflict("ip", "IPv4 address");
    }
    if !first.ipv6.is_empty() && f.ip6.is_some() {
        return conflict("ip6", "IPv6 address");
    }
    if !first.mac.is_empty() && f.mac_address.is_some() {
        return conflict("mac-address", "MAC address");
    }
    if !f.network_alias.is_empty() {
        first.aliases = f.network_alias.clone();
    }
    if first.target != "default" && !f.link.is_empty() {
        first.links = f.link.clone();
    }
    first.ipv4 = f.ip.clone().unwrap_or(std::mem::take(&mut first.ipv4));
    first.ipv6 = f.ip6.clone().unwrap_or(std::mem::take(&mut first.ipv6));
    first.mac = f
        .mac_address
        .clone()
        .unwrap_or(std::mem::take(&mut first.mac));
    if !f.link_local_ip.is_empty() {
        first.link_local = f.link_local_ip.clone();
    }
    let mode = nets[0].target.clone();
    let (mut user, mut builtin) = (false, false);
    let mut out = Map::new();
    let alone = nets.len() == 1;
    for (i, n) in nets.iter().enumerate() {
        if is_user_defined(&n.target) {
            user = true;
        } else {
            builtin = true;
        }
        check(n)?;
        if out.contains_key(&n.target) {
            return Err(format!(
                "network {:?} is specified multiple times",
                n.target
            ));
        }
        if i == 0 && alone && !implicit && !has_options(n) {
            continue;
        }
        out.insert(n.target.clone(), endpoint(n));
    }
    if user && builtin && !implicit {
        return Err(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                .into(),
        );
    }
    Ok((mode, out))
}

/// Flags → create request, validated like docker (errors are printed as docker prints
/// them, with the `run`/`create` help hint). `detach` is `run -d`: nothing is attached.
pub fn build(f: &CreateFlags, host: &Host, detach: bool) -> Result<Spec, String> {
    let image = f.args.first().cloned().unwrap_or_default();
    let cmd: Option<Vec<String>> = (f.args.len() > 1).then(|| f.args[1..].to_vec());
    let env = each(&f.env, "-e, --env", |v| validate_env(v, host.env))?;
    let labels = each(&f.label, "-l, --label", validate_label)?;
    let dns = each(&f.dns, "--dns", validate_ip)?;
    let dns_search = each(&f.dns_search, "--dns-search", validate_dns_search)?;
    let extra_hosts = each(&f.add_host, "--add-host", validate_extra_host)?;
    let links = each(&f.link, "--link", validate_link)?;
    let attach = each(&f.attach, "-a, --attach", |v| {
        let l = v.to_lowercase();
        if ["stdin", "stdout", "stderr"].contains(&l.as_str()) {
            Ok(l)
        } else {
            Err("valid streams are STDIN, STDOUT and STDERR".into())
        }
    })?;
    if detach && !attach.is_empty() {
        return Err("conflicting options: cannot specify both --attach and --detach".into());
    }
    if let Some(m) = f.mac_address.as_deref().filter(|m| !valid_mac(m)) {
        return Err(format!("{m} is not a valid mac address"));
    }
    let has = |s: &str| attach.iter().any(|a| a == s);
    let mut attach_stdin = has("stdin") || f.interactive;
    let (mut attach_stdout, mut attach_stderr) = if attach.is_empty() {
        (true, true)
    } else {
        (has("stdout"), has("stderr"))
    };
    let mut stdin_once = f.interactive && attach_stdin;
    if detach {
        (attach_stdin, attach_stdout, attach_stderr, stdin_once) = (false, false, false, false);
    }
    let published = ports::parse_all(&f.publish, &f.expose)?;
    let (mode, endpoints) = endpoints(f)?;
    let entrypoint = f.entrypoint.as_ref().map(|e| vec![e.clone()]);
    let label_map: BTreeMap<String, String> = labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let bindings: BTreeMap<&String, Vec<Value>> = published
        .bindings
        .iter()
        .map(|(k, bs)| {
            let v = bs
                .iter()
                .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                .collect();
            (k, v)
        })
        .collect();
    let mut body = Map::new();
    let mut put = |k: &str, v: Value| {
        body.insert(k.to_string(), v);
    };
    put("Hostname", json!(f.hostname.clone().unwrap_or_default()));
    put(
        "Domainname",
        json!(f.domainname.clone().unwrap_or_default()),
    );
    put("User", json!(f.user.clone().unwrap_or_default()));
    put("AttachStdin", json!(attach_stdin));
    put("AttachStdout", json!(attach_stdout));
    put("AttachStderr", json!(attach_stderr));
    if !published.exposed.is_empty() {
        let e: Map<String, Value> = published
            .exposed
            .keys()
            .map(|k| (k.clone(), json!({})))
            .collect();
        put("ExposedPorts", Value::Object(e));
    }
    put("Tty", json!(f.tty));
    put("OpenStdin", json!(f.interactive));
    put("StdinOnce", json!(stdin_once));
    put(
        "Env",
        if env.is_empty() {
            Value::Null
        } else {
            json!(env)
        },
    );
    put("Cmd", json!(cmd));
    put("Image", json!(image));
    put("Volumes", json!({}));
    put("WorkingDir", json!(f.workdir.clone().unwrap_or_default()));
    put("Entrypoint", json!(entrypoint));
    if let Some(m) = &f.mac_address {
        // API 1.41 reads the MAC of the main network here (later versions per endpoint)
        put("MacAddress", json!(m));
    }
    put("OnBuild", Value::Null);
    put("Labels", json!(label_map));
    if let Some(s) = &f.stop_signal {
        put("StopSignal", json!(s));
    }
    if let Some(t) = f.stop_timeout {
        put("StopTimeout", json!(t));
    }
    let mounts = super::mount_args::parse_mounts(&f.mount)?;
    let tmpfs = super::mount_args::parse_tmpfs(&f.tmpfs);
    let mut host_config = json!({
        "Binds": if f.volume.is_empty() { Value::Null } else { json!(f.volume) },
        "Mounts": mounts,
        "Tmpfs": tmpfs,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": mode,
        "PortBindings": bindings,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": f.rm,
        "VolumeDriver": "",
        "VolumesFrom": if f.volumes_from.is_empty() { Value::Null } else { json!(f.volumes_from) },
        "ConsoleSize": [host.console.0, host.console.1],
        "CapAdd": null,
        "CapDrop": null,
        "CgroupnsMode": "",
        "Dns": dns,
        "DnsOptions": f.dns_option,
        "DnsSearch": dns_search,
        "ExtraHosts": if extra_hosts.is_empty() { Value::Null } else { json!(extra_hosts) },
        "GroupAdd": null,
        "IpcMode": "",
        "Cgroup": "",
        "Links": if links.is_empty() { Value::Null } else { json!(links) },
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": f.privileged,
        "PublishAllPorts": f.publish_all,
        "ReadonlyRootfs": false,
        "SecurityOpt": null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
    });
    if let Some(hc) = host_config.as_object_mut() {
        hc.extend(f.resources.to_map(bad_flag)?);
        f.create_only.apply(hc);
    }
    put("HostConfig", host_config);
    put("NetworkingConfig", json!({ "EndpointsConfig": endpoints }));
    Ok(Spec {
        body: Value::Object(body),
        image,
        tty: f.tty,
        attach_stdin,
        attach_stdout,
        attach_stderr,
        auto_remove: f.rm,
    })
}
