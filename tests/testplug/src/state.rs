//! The plugin's state and the work each call does.

use crate::Args;
use anyhow::{anyhow, bail, Context};
use berth_net::osl::netlink::Netlink;
use berth_net::osl::{BridgeSpec, Osl};
use berth_net::plugins::api::{decode, ipam, net, Fields};
use ipnet::{IpNet, Ipv4Net};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

struct Net {
    bridge: String,
    gateway: Option<Ipv4Addr>,
}

struct Ep {
    host_if: String,
}

struct Pool {
    net: Ipv4Net,
    used: BTreeSet<Ipv4Addr>,
}

type Pools = HashMap<String, Pool>;

fn pools_to_json(p: &Pools) -> Value {
    p.iter()
        .map(|(id, p)| {
            let used: Vec<String> = p.used.iter().map(|a| a.to_string()).collect();
            (id.clone(), json!({"Net": p.net.to_string(), "Used": used}))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn pools_from_json(v: &Value) -> Pools {
    let Some(m) = v.as_object() else {
        return Pools::new();
    };
    m.iter()
        .filter_map(|(id, p)| {
            let net = p["Net"].as_str()?.parse().ok()?;
            let used = p["Used"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str()?.parse().ok())
                .collect();
            Some((id.clone(), Pool { net, used }))
        })
        .collect()
}

#[derive(Default)]
struct State {
    nets: HashMap<String, Net>,
    eps: HashMap<String, Ep>,
    pools: HashMap<String, Pool>,
}

pub struct Plug {
    pub args: Args,
    nl: Netlink,
    handle: rtnetlink::Handle,
    state: Mutex<State>,
    /// Methods called at least once (`--hang-first`).
    seen: Mutex<BTreeSet<String>>,
}

fn short(id: &str, n: usize) -> String {
    id.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(n)
        .collect()
}

fn req<T: Fields>(body: &[u8]) -> anyhow::Result<T> {
    decode(body).map_err(|e| anyhow!("bad request: {e}"))
}

/// A locally administered MAC from the endpoint id.
fn mac_of(eid: &str) -> [u8; 6] {
    let h = eid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

impl Plug {
    pub fn new(args: Args) -> anyhow::Result<Plug> {
        Ok(Plug {
            args,
            nl: Netlink::new().context("netlink")?,
            handle: {
                let (conn, handle, _) = rtnetlink::new_connection().context("netlink")?;
                tokio::spawn(conn);
                handle
            },
            state: Mutex::default(),
            seen: Mutex::default(),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the pools: this process's, or with `--shared-ipam FILE` the ones every
    /// instance shares (a global address space, as a cluster-wide IPAM keeps), read and
    /// written back under an exclusive lock of the file.
    fn with_pools<T>(&self, f: impl FnOnce(&mut Pools) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let Some(path) = &self.args.shared_ipam else {
            return f(&mut self.st().pools);
        };
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.lock()?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let mut pools = pools_from_json(&serde_json::from_str(&text).unwrap_or(Value::Null));
        let r = f(&mut pools);
        if r.is_ok() {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(pools_to_json(&pools).to_string().as_bytes())?;
        }
        r
    }

    /// Whether this is the first call of `method`.
    pub fn first_call(&self, method: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(method.to_string())
    }

    pub fn record(&self, method: &str, req: &Value) {
        let Some(path) = &self.args.record else {
            return;
        };
        let line = json!({ "Method": method, "Request": req }).to_string();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// The reply of `method`; `None` for an unknown method (404).
    pub async fn call(&self, method: &str, body: &[u8]) -> anyhow::Result<Option<Value>> {
        Ok(Some(match method {
            "Plugin.Activate" => json!({"Implements": ["NetworkDriver", "IpamDriver"]}),
            "NetworkDriver.GetCapabilities" => {
                let conn = self
                    .args
                    .connectivity_scope
                    .as_ref()
                    .unwrap_or(&self.args.scope);
                json!({"Scope": self.args.scope, "ConnectivityScope": conn})
            }
            "NetworkDriver.CreateNetwork" => self.create_network(req(body)?).await?,
            "NetworkDriver.DeleteNetwork" => {
                let r: net::NetworkRequest = req(body)?;
                let n = self.st().nets.remove(&r.network_id);
                if let Some(n) = n {
                    self.nl.delete_link(&n.bridge).await?;
                }
                json!({})
            }
            "NetworkDriver.CreateEndpoint" => self.create_endpoint(req(body)?).await?,
            "NetworkDriver.DeleteEndpoint" => {
                let r: net::EndpointRequest = req(body)?;
                let ep = self.st().eps.remove(&r.endpoint_id);
                if let Some(ep) = ep {
                    // the peer goes with it, wherever it is
                    self.nl.delete_link(&ep.host_if).await?;
                }
                json!({})
            }
            "NetworkDriver.Join" => {
                let r: net::JoinRequest = req(body)?;
                let st = self.st();
                let n = st
                    .nets
                    .get(&r.network_id)
                    .ok_or_else(|| anyhow!("no network {}", r.network_id))?;
                if !st.eps.contains_key(&r.endpoint_id) {
                    bail!("no endpoint {}", r.endpoint_id);
                }
                let mut j = json!({
                    "InterfaceName": {"SrcName": format!("tpc{}", short(&r.endpoint_id, 9)), "DstPrefix": "eth"},
                });
                if let (Some(gw), false) = (n.gateway, self.args.no_gateway) {
                    j["Gateway"] = json!(gw.to_string());
                }
                let routes: Vec<Value> = self
                    .args
                    .route
                    .iter()
                    .filter_map(|r| r.split_once('='))
                    .map(|(dst, via)| json!({"Destination": dst, "RouteType": 0, "NextHop": via}))
                    .collect();
                if !routes.is_empty() {
                    j["StaticRoutes"] = json!(routes);
                }
                j
            }
            "NetworkDriver.EndpointOperInfo" => json!({"Value": {}}),
            "NetworkDriver.Leave"
            | "NetworkDriver.ProgramExternalConnectivity"
            | "NetworkDriver.RevokeExternalConnectivity"
            | "NetworkDriver.DiscoverNew"
            | "NetworkDriver.DiscoverDelete" => json!({}),
            "IpamDriver.GetCapabilities" => {
                json!({
                    "RequiresMACAddress": self.args.requires_mac,
                    "RequiresRequestReplay": self.args.replay,
                })
            }
            "IpamDriver.GetDefaultAddressSpaces" => json!({
                "LocalDefaultAddressSpace": "testplug-local",
                "GlobalDefaultAddressSpace": "testplug-global",
            }),
            "IpamDriver.RequestPool" => self.request_pool(req(body)?)?,
            "IpamDriver.ReleasePool" => {
                let r: ipam::ReleasePoolRequest = req(body)?;
                self.with_pools(|p| Ok(p.remove(&r.pool_id)))?;
                json!({})
            }
            "IpamDriver.RequestAddress" => self.request_address(req(body)?)?,
            "IpamDriver.ReleaseAddress" => {
                let r: ipam::ReleaseAddressRequest = req(body)?;
                self.with_pools(|pools| {
                    if let (Some(p), Ok(a)) = (pools.get_mut(&r.pool_id), r.address.parse()) {
                        p.used.remove(&a);
                    }
                    Ok(())
                })?;
                json!({})
            }
            _ => return Ok(None),
        }))
    }

    async fn create_network(&self, r: net::CreateNetworkRequest) -> anyhow::Result<Value> {
        let bridge = format!("tpbr{}", short(&r.network_id, 8));
        let gw: Option<IpNet> = match r.ipv4_data.first().and_then(|d| d.gateway.as_deref()) {
            Some(g) => Some(g.parse().context("gateway")?),
            None => None,
        };
        let spec = BridgeSpec {
            name: bridge.clone(),
            alias: format!("berth-testplug/{}", r.network_id),
            mtu: None,
            addrs: gw.into_iter().collect(),
        };
        self.nl.create_bridge(&spec).await?;
        let gateway = match gw.map(|g| g.addr()) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        self.st().nets.insert(r.network_id, Net { bridge, gateway });
        Ok(json!({}))
    }

    async fn create_endpoint(&self, r: net::CreateEndpointRequest) -> anyhow::Result<Value> {
        let known = self.st().nets.get(&r.network_id).map(|n| n.bridge.clone());
        let bridge = match known {
            Some(b) => b,
            // a global network created on another host: this instance never got its
            // CreateNetwork (Docker sends it on the creating host only) and makes its bridge
            // now, without a gateway (Weave asks the Engine API instead)
            None if self.args.scope == "global" => {
                let bridge = format!("tpbr{}", short(&r.network_id, 8));
                let spec = BridgeSpec {
                    name: bridge.clone(),
                    alias: format!("berth-testplug/{}", r.network_id),
                    mtu: None,
                    addrs: vec![],
                };
                self.nl.create_bridge(&spec).await?;
                let net = Net {
                    bridge: bridge.clone(),
                    gateway: None,
                };
                self.st().nets.insert(r.network_id.clone(), net);
                bridge
            }
            None => bail!("no network {}", r.network_id),
        };
        let id = short(&r.endpoint_id, 9);
        let (host_if, peer_if) = (format!("tph{id}"), format!("tpc{id}"));
        let mac = mac_of(&r.endpoint_id);
        let h = &self.handle;
        let idx = {
            use futures::TryStreamExt as _;
            let mut l = h.link().get().match_name(bridge.clone()).execute();
            l.try_next()
                .await?
                .ok_or_else(|| anyhow!("no bridge {bridge}"))?
                .header
                .index
        };
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_if.clone())
            .address(mac.to_vec());
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_if.clone())
            .controller(idx)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        h.link().add(msg).execute().await.context("create veth")?;
        self.st().eps.insert(r.endpoint_id, Ep { host_if });
        if r.interface.mac_address.is_empty() {
            let m = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            return Ok(json!({"Interface": {"MacAddress": m}}));
        }
        Ok(json!({}))
    }

    fn request_pool(&self, r: ipam::RequestPoolRequest) -> anyhow::Result<Value> {
        if r.v6 {
            bail!("berth-testplug hands out IPv4 pools only");
        }
        self.with_pools(|pools| self.pool_in(pools, r))
    }

    fn pool_in(&self, pools: &mut Pools, r: ipam::RequestPoolRequest) -> anyhow::Result<Value> {
        let net: Ipv4Net = if r.pool.is_empty() {
            let taken: BTreeSet<Ipv4Net> = pools.values().map(|p| p.net).collect();
            self.args
                .range
                .subnets(24.max(self.args.range.prefix_len()))?
                .find(|n| !taken.contains(n))
                .ok_or_else(|| anyhow!("no available pool in {}", self.args.range))?
        } else {
            r.pool.parse::<Ipv4Net>().context("pool")?.trunc()
        };
        let id = format!("testplug/{net}");
        pools.entry(id.clone()).or_insert(Pool {
            net,
            used: BTreeSet::new(),
        });
        Ok(json!({"PoolID": id, "Pool": net.to_string(), "Data": {}}))
    }

    fn request_address(&self, r: ipam::RequestAddressRequest) -> anyhow::Result<Value> {
        self.with_pools(|pools| address_in(pools, r))
    }
}

fn address_in(pools: &mut Pools, r: ipam::RequestAddressRequest) -> anyhow::Result<Value> {
    {
        let p = pools
            .get_mut(&r.pool_id)
            .ok_or_else(|| anyhow!("no pool {}", r.pool_id))?;
        let a: Ipv4Addr = if r.address.is_empty() {
            p.net
                .hosts()
                .find(|a| !p.used.contains(a))
                .ok_or_else(|| anyhow!("no available addresses on this pool"))?
        } else {
            let a: Ipv4Addr = r.address.parse().context("address")?;
            if !p.net.contains(&a) {
                bail!("requested address is out of range");
            }
            if p.used.contains(&a) {
                bail!("Address already in use");
            }
            a
        };
        p.used.insert(a);
        Ok(json!({"Address": format!("{a}/{}", p.net.prefix_len()), "Data": {}}))
    }
}
