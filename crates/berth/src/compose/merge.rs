//! Several `-f` files into one model, with docker-compose 1.29's rules (`merge_service_dicts`):
//! a service in several files is merged key by key — mappings (environment, labels,
//! depends_on, extra_hosts) updated by the later file, lists of unique items (expose,
//! aliases) merged and sorted, ports and links merged by identity, `dns` concatenated, every
//! other key replaced; a top-level network named again is replaced whole.

use super::model::*;
use super::parse::FileModel;
use super::yaml::Scalar;

pub struct Merged {
    pub name: Option<String>,
    pub services: Vec<Service>,
    pub networks: Vec<(String, Network)>,
    pub volumes: Vec<(String, VolumeDef)>,
}

pub fn files(files: Vec<FileModel>) -> Merged {
    let mut out = Merged {
        name: None,
        services: Vec::new(),
        networks: Vec::new(),
        volumes: Vec::new(),
    };
    for f in files {
        if f.name.is_some() {
            out.name = f.name;
        }
        for s in f.services {
            match out.services.iter_mut().find(|b| b.name == s.name) {
                Some(base) => *base = service(base, s),
                None => out.services.push(s),
            }
        }
        for (k, v) in f.volumes {
            match out.volumes.iter_mut().find(|(b, _)| *b == k) {
                Some(slot) => slot.1 = v,
                None => out.volumes.push((k, v)),
            }
        }
        for (k, n) in f.networks {
            match out.networks.iter_mut().find(|(b, _)| *b == k) {
                Some(slot) => slot.1 = n,
                None => out.networks.push((k, n)),
            }
        }
    }
    out
}

fn update<V: Clone>(
    base: &Option<Vec<(String, V)>>,
    over: Option<Vec<(String, V)>>,
) -> Option<Vec<(String, V)>> {
    if base.is_none() && over.is_none() {
        return None;
    }
    let mut out = base.clone().unwrap_or_default();
    for (k, v) in over.unwrap_or_default() {
        match out.iter_mut().find(|(b, _)| *b == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    Some(out)
}

fn unique_sorted(base: Option<Vec<String>>, over: Option<Vec<String>>) -> Option<Vec<String>> {
    if base.is_none() && over.is_none() {
        return None;
    }
    let mut v: Vec<String> = base.into_iter().chain(over).flatten().collect();
    v.sort();
    v.dedup();
    Some(v)
}

fn pick<T>(base: Option<T>, over: Option<T>) -> Option<T> {
    over.or(base)
}

fn as_pairs(h: &Option<ExtraHosts>) -> Option<Vec<(String, String)>> {
    h.as_ref().map(|h| match h {
        ExtraHosts::Map(m) => m.clone(),
        ExtraHosts::List(l) => l
            .iter()
            .map(|e| {
                let (k, v) = e.split_once(':').unwrap_or((e, ""));
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect(),
    })
}

fn service(base: &Service, over: Service) -> Service {
    let b = base.clone();
    let unit = |v: &Option<Vec<String>>| {
        v.clone()
            .map(|l| l.into_iter().map(|k| (k, ())).collect::<Vec<_>>())
    };
    let depends_on = update(&unit(&b.depends_on), unit(&over.depends_on))
        .map(|v| v.into_iter().map(|(k, _)| k).collect());
    let networks = if b.networks.is_none() && over.networks.is_none() {
        None
    } else {
        let mut out: Vec<(String, ServiceNet)> = b.networks.clone().unwrap_or_default();
        for (k, o) in over.networks.clone().unwrap_or_default() {
            match out.iter_mut().find(|(n, _)| *n == k) {
                Some((_, base)) => {
                    *base = ServiceNet {
                        aliases: unique_sorted(base.aliases.take(), o.aliases),
                        ipv4_address: pick(base.ipv4_address.take(), o.ipv4_address),
                        ipv6_address: pick(base.ipv6_address.take(), o.ipv6_address),
                        priority: pick(base.priority, o.priority),
                    }
                }
                None => out.push((k, o)),
            }
        }
        // every merged network's aliases come out sorted and unique
        for (_, n) in out.iter_mut() {
            n.aliases = unique_sorted(n.aliases.take(), None);
        }
        Some(out)
    };
    let links = if b.links.is_none() && over.links.is_none() {
        None
    } else {
        let key = |l: &Link| l.alias.clone().unwrap_or_else(|| l.service.clone());
        let mut out: Vec<Link> = Vec::new();
        for l in b
            .links
            .clone()
            .into_iter()
            .flatten()
            .chain(over.links.clone().into_iter().flatten())
        {
            out.retain(|o| key(o) != key(&l));
            out.push(l);
        }
        out.sort_by_key(|l| (l.service.clone(), key(l)));
        Some(
            out.into_iter()
                .map(|l| Link {
                    alias: l.alias.filter(|a| *a != l.service),
                    service: l.service,
                })
                .collect(),
        )
    };
    let ports = if b.ports.is_none() && over.ports.is_none() {
        None
    } else {
        let mut out: Vec<Port> = Vec::new();
        for p in b
            .ports
            .clone()
            .into_iter()
            .flatten()
            .chain(over.ports.clone().into_iter().flatten())
        {
            let id = |q: &Port| {
                (
                    q.target,
                    q.published.clone(),
                    q.host_ip.clone(),
                    q.protocol.clone(),
                )
            };
            out.retain(|o| id(o) != id(&p));
            out.push(p);
        }
        out.sort_by_key(|p| p.target);
        Some(out)
    };
    let expose = if b.expose.is_none() && over.expose.is_none() {
        None
    } else {
        let strs = |v: Option<Vec<Scalar>>| v.map(|l| l.iter().map(Scalar::python_str).collect());
        unique_sorted(strs(b.expose.clone()), strs(over.expose.clone()))
            .map(|l| l.into_iter().map(Scalar::Str).collect())
    };
    let dns = if b.dns.is_none() && over.dns.is_none() {
        None
    } else {
        Some(
            b.dns
                .clone()
                .into_iter()
                .flatten()
                .chain(over.dns.clone().into_iter().flatten())
                .collect(),
        )
    };
    let extra_hosts =
        update(&as_pairs(&b.extra_hosts), as_pairs(&over.extra_hosts)).map(ExtraHosts::Map);
    Service {
        name: b.name,
        at: b.at,
        image: pick(b.image, over.image),
        command: pick(b.command, over.command),
        entrypoint: pick(b.entrypoint, over.entrypoint),
        environment: update(&b.environment, over.environment),
        labels: update(&b.labels, over.labels),
        tty: pick(b.tty, over.tty),
        stdin_open: pick(b.stdin_open, over.stdin_open),
        hostname: pick(b.hostname, over.hostname),
        container_name: pick(b.container_name, over.container_name),
        depends_on,
        networks,
        network_mode: pick(b.network_mode, over.network_mode),
        links,
        ports,
        expose,
        dns,
        extra_hosts,
        mac_address: pick(b.mac_address, over.mac_address),
        restart: pick(b.restart, over.restart),
        // docker-compose merges mounts by their path in the container
        volumes: if b.volumes.is_none() && over.volumes.is_none() {
            None
        } else {
            let mut out = b.volumes.clone().unwrap_or_default();
            for v in over.volumes.clone().into_iter().flatten() {
                match out.iter_mut().find(|x| x.target == v.target) {
                    Some(slot) => *slot = v,
                    None => out.push(v),
                }
            }
            Some(out)
        },
    }
}
