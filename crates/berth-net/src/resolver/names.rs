//! The names the embedded DNS answers, scoped by network: a container sees only names of the
//! networks it shares with the target, plus its own links. Updated in place on every connect
//! and disconnect (no rebuild), read on every query.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One live endpoint on a user-defined network, as the resolver needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpNames {
    pub endpoint_id: String,
    pub container_id: String,
    pub network_id: String,
    /// The network's name (for `name.network` and PTR answers).
    pub network_name: String,
    /// `--internal`: queries from a container only on internal networks are not forwarded.
    pub internal: bool,
    /// Container name first, then aliases (short id, hostname, `--network-alias`).
    pub names: Vec<String>,
    /// `--link target:alias`: (alias, target), answered only for this endpoint's container.
    pub links: Vec<(String, String)>,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl EpNames {
    fn addr(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.v6.map(IpAddr::V6)
        } else {
            self.v4.map(IpAddr::V4)
        }
    }
}

/// `db:mydb` → (`mydb`, `db`); `db` → (`db`, `db`). Names of containers may carry a leading
/// `/` (Docker's stored form); link aliases may too (`/web/mydb`).
pub fn parse_link(s: &str) -> Option<(String, String)> {
    let (target, alias) = s.split_once(':').unwrap_or((s, s));
    let target = target.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if target.is_empty() || alias.is_empty() {
        return None;
    }
    Some((alias.to_ascii_lowercase(), target.to_ascii_lowercase()))
}

#[derive(Debug, Default)]
struct Net {
    /// Lower case.
    name: String,
    internal: bool,
    /// Lower-case name → endpoints answering to it, in attach order.
    names: HashMap<String, Vec<String>>,
}

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Found {
    /// The name is not one of the asker's local names: forward it.
    Unknown,
    /// A local name; the addresses of the asked family (empty: the name has none of it).
    Addrs(Vec<IpAddr>),
}

#[derive(Debug, Default)]
pub struct Names {
    eps: HashMap<String, EpNames>,
    nets: HashMap<String, Net>,
    /// Container id → its endpoints on user networks, in attach order.
    by_container: HashMap<String, Vec<String>>,
    by_ip: HashMap<IpAddr, Vec<String>>,
}

impl Names {
    /// Adds (or replaces) an endpoint's names.
    pub fn add(&mut self, mut ep: EpNames) {
        self.remove(&ep.endpoint_id);
        for n in &mut ep.names {
            n.make_ascii_lowercase();
        }
        ep.names.dedup();
        let net = self.nets.entry(ep.network_id.clone()).or_default();
        net.name = ep.network_name.to_ascii_lowercase();
        net.internal = ep.internal;
        for n in &ep.names {
            net.names
                .entry(n.clone())
                .or_default()
                .push(ep.endpoint_id.clone());
        }
        for ip in ep
            .v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(ep.v6.map(IpAddr::V6))
        {
            self.by_ip
                .entry(ip)
                .or_default()
                .push(ep.endpoint_id.clone());
        }
        self.by_container
            .entry(ep.container_id.clone())
            .or_default()
            .push(ep.endpoint_id.clone());
        self.eps.insert(ep.endpoint_id.clone(), ep);
    }

    /// Forgets an endpoint's names. Absent: nothing to do.
    pub fn remove(&mut self, endpoint_id: &str) {
        let Some(ep) = self.eps.remove(endpoint_id) else {
            return;
        };
        fn drop_from<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Vec<String>>, k: &K, id: &str) {
            if let Some(v) = m.get_mut(k) {
                v.retain(|x| x != id);
                if v.is_empty() {
                    m.remove(k);
                }
            }
        }
        if let Some(net) = self.nets.get_mut(&ep.network_id) {
            for n in &ep.names {
                drop_from(&mut net.names, n, endpoint_id);
            }
            if net.names.is_empty() {
                self.nets.remove(&ep.network_id);
            }
        }
        for ip in ep
            .v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(ep.v6.map(IpAddr::V6))
        {
            drop_from(&mut self.by_ip, &ip, endpoint_id);
        }
        drop_from(&mut self.by_container, &ep.container_id, endpoint_id);
    }

    /// Whether the container has any endpoint on a user network.
    pub fn has_container(&self, container_id: &str) -> bool {
        self.by_container.contains_key(container_id)
    }

    /// Whether queries the container cannot answer locally may go upstream: not when every
    /// network it is on is internal.
    pub fn forwards(&self, container_id: &str) -> bool {
        match self.by_container.get(container_id) {
            None => true,
            Some(ids) => ids.iter().any(|id| !self.eps[id].internal),
        }
    }

    /// `qname` (lower case, no trailing dot) as asked by `container_id`: its links first, then
    /// each of its networks in attach order, as `name` or `name.network`. The first network
    /// that knows the name answers, with every endpoint that carries it (shared aliases).
    pub fn lookup(&self, container_id: &str, qname: &str, v6: bool) -> Found {
        let Some(mine) = self.by_container.get(container_id) else {
            return Found::Unknown;
        };
        for id in mine {
            let me = &self.eps[id];
            let Some(net) = self.nets.get(&me.network_id) else {
                continue;
            };
            let target = me
                .links
                .iter()
                .find(|(alias, _)| alias == qname)
                .map(|(_, t)| t.as_str());
            let stem = qname
                .strip_suffix(net.name.as_str())
                .and_then(|s| s.strip_suffix('.'));
            for name in target.into_iter().chain(Some(qname)).chain(stem) {
                if let Some(ids) = net.names.get(name) {
                    let addrs = ids
                        .iter()
                        .filter_map(|i| self.eps.get(i)?.addr(v6))
                        .collect();
                    return Found::Addrs(addrs);
                }
            }
        }
        Found::Unknown
    }

    /// The PTR answer for `ip` as asked by `container_id` (`name.network`), if the address
    /// belongs to a container on one of the asker's networks.
    pub fn reverse(&self, container_id: &str, ip: IpAddr) -> Option<String> {
        let mine = self.by_container.get(container_id)?;
        let owners = self.by_ip.get(&ip)?;
        for id in mine {
            let net = &self.eps[id].network_id;
            if let Some(ep) = owners
                .iter()
                .filter_map(|o| self.eps.get(o))
                .find(|e| &e.network_id == net)
            {
                return Some(format!("{}.{}", ep.names[0], ep.network_name));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, cid: &str, net: &str, names: &[&str], v4: &str) -> EpNames {
        EpNames {
            endpoint_id: id.into(),
            container_id: cid.into(),
            network_id: format!("id-{net}"),
            network_name: net.into(),
            internal: false,
            names: names.iter().map(|s| s.to_string()).collect(),
            links: vec![],
            v4: Some(v4.parse().unwrap()),
            v6: None,
        }
    }

    fn addrs(f: Found) -> Vec<String> {
        match f {
            Found::Addrs(v) => v.iter().map(|a| a.to_string()).collect(),
            Found::Unknown => vec!["unknown".into()],
        }
    }

    #[test]
    fn scoped_by_network() {
        let mut n = Names::default();
        n.add(ep("e1", "db", "appnet", &["DB", "database"], "10.0.0.2"));
        n.add(ep("e2", "web", "appnet", &["web1", "web"], "10.0.0.3"));
        n.add(ep("e3", "other", "othernet", &["other"], "10.1.0.2"));
        assert_eq!(addrs(n.lookup("web", "db", false)), ["10.0.0.2"]);
        assert_eq!(addrs(n.lookup("web", "database", false)), ["10.0.0.2"]);
        assert_eq!(addrs(n.lookup("web", "db.appnet", false)), ["10.0.0.2"]);
        assert_eq!(n.lookup("web", "db.othernet", false), Found::Unknown);
        assert_eq!(n.lookup("web", "other", false), Found::Unknown);
        assert_eq!(n.lookup("other", "db", false), Found::Unknown);
        assert_eq!(n.lookup("stranger", "db", false), Found::Unknown);
        // a known name without an address of the family: an empty answer, not a forward
        assert_eq!(n.lookup("web", "db", true), Found::Addrs(vec![]));
    }

    #[test]
    fn shared_alias_returns_every_address_and_leaves_cleanly() {
        let mut n = Names::default();
        n.add(ep("e1", "w1", "appnet", &["web1", "web"], "10.0.0.3"));
        n.add(ep("e2", "w2", "appnet", &["web2", "web"], "10.0.0.4"));
        assert_eq!(
            addrs(n.lookup("w1", "web", false)),
            ["10.0.0.3", "10.0.0.4"]
        );
        n.remove("e1");
        assert_eq!(addrs(n.lookup("w2", "web", false)), ["10.0.0.4"]);
        assert_eq!(n.lookup("w2", "web1", false), Found::Unknown);
        n.remove("e2");
        n.remove("e2");
        assert!(n.eps.is_empty() && n.nets.is_empty() && n.by_ip.is_empty());
        assert!(n.by_container.is_empty());
    }

    #[test]
    fn links_are_private_to_the_linking_container() {
        let mut n = Names::default();
        n.add(ep("e1", "db", "appnet", &["db"], "10.0.0.2"));
        let mut web = ep("e2", "web", "appnet", &["web"], "10.0.0.3");
        web.links = vec![parse_link("db:mydb").unwrap()];
        n.add(web);
        n.add(ep("e3", "other", "appnet", &["other"], "10.0.0.4"));
        assert_eq!(addrs(n.lookup("web", "mydb", false)), ["10.0.0.2"]);
        assert_eq!(n.lookup("other", "mydb", false), Found::Unknown);
        assert_eq!(
            parse_link("/db:/web/mydb"),
            Some(("mydb".into(), "db".into()))
        );
        assert_eq!(parse_link("db"), Some(("db".into(), "db".into())));
        assert_eq!(parse_link(":x"), None);
    }

    #[test]
    fn reverse_is_scoped_and_names_the_network() {
        let mut n = Names::default();
        n.add(ep("e1", "db", "appnet", &["db"], "10.0.0.2"));
        n.add(ep("e2", "web", "appnet", &["web"], "10.0.0.3"));
        n.add(ep("e3", "x", "othernet", &["x"], "10.1.0.2"));
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(n.reverse("web", ip).as_deref(), Some("db.appnet"));
        assert_eq!(n.reverse("x", ip), None);
    }

    #[test]
    fn internal_only_containers_do_not_forward() {
        let mut n = Names::default();
        let mut a = ep("e1", "c", "int", &["c"], "10.0.0.2");
        a.internal = true;
        n.add(a);
        assert!(!n.forwards("c"));
        n.add(ep("e2", "c", "ext", &["c"], "10.1.0.2"));
        assert!(n.forwards("c"));
        assert!(n.forwards("unknown"));
    }
}
