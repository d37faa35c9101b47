//! Published ports in berth's table: six maps, a handful of fixed rules, and the element
//! scripts that publish and unpublish. Pure text generation, unit-tested without root.
//!
//! ```text
//! map ports4     { type inet_proto . inet_service : ipv4_addr . inet_service; }             # 0.0.0.0:H → C:P
//! map ports4_ip  { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; } # A:H → C:P
//! map ranges4    { type inet_proto . ipv4_addr . inet_service : ipv4_addr; flags interval; } # A|0/0 : H1-H2 → C (same ports)
//! set self4        { type ipv4_addr . ipv4_addr; }                                        # C . C: hairpin to itself
//! (ports6, ports6_ip, ranges6, self6 alike for IPv6)
//! chain published {
//!     dnat ip to meta l4proto . th dport map @ports4
//!     dnat ip to ip daddr . meta l4proto . th dport map @ports4_ip
//!     dnat ip to meta l4proto . ip daddr . th dport map @ranges4
//!     (the same three for ip6)
//! }
//! chain prerouting { type nat hook prerouting priority dstnat;  fib daddr type local jump published }
//! chain output     { type nat hook output priority -100;  ip6 daddr ::1 return;  fib daddr type local jump published }
//! chain guard      { type filter hook prerouting priority raw;  iifname @bridges ip daddr 127.0.0.0/8 drop }
//! ```
//!
//! Why this shape:
//! - A run of ports whose host and container numbers are equal (`-p 8000-9000:8000-9000`, and
//!   every single port published as itself) is ONE interval element of `ranges*`: DNAT to the
//!   address only keeps the destination port, so the range costs what one port costs.
//! - Any other binding (`-p 8080:80`, random ports) is one exact-match element per port in a
//!   hash map: nft cannot add an offset to a port (its expressions have no `+`; a NAT port
//!   range keeps the port only when it already lies in the range, and the kernel's offset mode
//!   is not exposed by nft). A shifted range therefore costs one element per port — still one
//!   transaction, and hash elements cost the same whatever the map holds.
//! - Wildcard bindings key on the port alone and are guarded by `fib daddr type local`, as
//!   Docker's `--dst-type LOCAL`: every address of the host, and nothing routed through it.
//! - `::1` cannot be routed to a container: the output chain leaves it alone and berthd's proxy
//!   serves the port instead. `127.0.0.1` can, with `route_localnet` on the bridge; the guard
//!   then keeps containers from reaching the host's loopback services through that door.

use super::ruleset::{validate_table, FAMILY, SET_BRIDGES};
use super::FwError;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const MAPS: [&str; 6] = [
    "ports4",
    "ports4_ip",
    "ranges4",
    "ports6",
    "ports6_ip",
    "ranges6",
];
pub const SETS: [&str; 2] = ["self4", "self6"];
pub const CHAIN_PUBLISHED: &str = "published";
pub const CHAIN_PREROUTING: &str = "prerouting";
pub const CHAIN_OUTPUT: &str = "output";
pub const CHAIN_GUARD: &str = "guard";

/// One published run as the firewall sees it: `count` host ports from `host_port` on
/// `host_ip` (unspecified: every local address) to `to` from `to_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwPorts {
    pub proto: &'static str,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub count: u32,
    pub to: IpAddr,
    pub to_port: u16,
}

/// One element: map (or set) name, key, value (empty for a set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Elem {
    pub map: &'static str,
    pub key: String,
    pub value: String,
}

fn check_proto(p: &str) -> Result<(), FwError> {
    if matches!(p, "tcp" | "udp" | "sctp") {
        Ok(())
    } else {
        Err(FwError::UnexpectedOutput(format!("protocol {p:?}")))
    }
}

/// The elements of one run. Addresses and numbers only: nothing here can inject syntax.
pub fn elements(p: &FwPorts) -> Result<Vec<Elem>, FwError> {
    check_proto(p.proto)?;
    if p.count == 0 || p.host_port as u32 + p.count - 1 > 65535 {
        return Err(FwError::UnexpectedOutput(format!("port run {p:?}")));
    }
    if p.host_ip.is_ipv4() != p.to.is_ipv4() {
        return Err(FwError::UnexpectedOutput(format!(
            "{} cannot be translated to {}",
            p.host_ip, p.to
        )));
    }
    let v = if p.to.is_ipv4() { "4" } else { "6" };
    let proto = p.proto;
    if p.count > 1 && p.host_port == p.to_port {
        let addr = if p.host_ip.is_unspecified() {
            format!("{}/0", p.host_ip)
        } else {
            p.host_ip.to_string()
        };
        let last = p.host_port as u32 + p.count - 1;
        return Ok(vec![Elem {
            map: if v == "4" { "ranges4" } else { "ranges6" },
            key: format!("{proto} . {addr} . {}-{last}", p.host_port),
            value: p.to.to_string(),
        }]);
    }
    Ok((0..p.count)
        .map(|i| {
            let (h, c) = (p.host_port as u32 + i, p.to_port as u32 + i);
            let value = format!("{} . {c}", p.to);
            if p.host_ip.is_unspecified() {
                Elem {
                    map: if v == "4" { "ports4" } else { "ports6" },
                    key: format!("{proto} . {h}"),
                    value,
                }
            } else {
                Elem {
                    map: if v == "4" { "ports4_ip" } else { "ports6_ip" },
                    key: format!("{} . {proto} . {h}", p.host_ip),
                    value,
                }
            }
        })
        .collect())
}

/// The maps and sets of publishing, declared before any rule refers to them. `add` keeps
/// what they hold.
pub fn declarations(table: &str) -> String {
    let t = format!("{FAMILY} {table}");
    let mut s = String::new();
    for v in ["4", "6"] {
        let a = if v == "4" { "ipv4_addr" } else { "ipv6_addr" };
        s += &format!(
            "add map {t} ports{v} {{ type inet_proto . inet_service : {a} . inet_service; }}\n"
        );
        s += &format!("add map {t} ports{v}_ip {{ type {a} . inet_proto . inet_service : {a} . inet_service; }}\n");
        s += &format!("add map {t} ranges{v} {{ type inet_proto . {a} . inet_service : {a}; flags interval; }}\n");
        s += &format!("add set {t} self{v} {{ type {a} . {a}; }}\n");
    }
    s
}

/// The chains and rules of publishing, for `init_script` (which flushes the chains before
/// adding the rules).
pub fn rules(table: &str) -> String {
    let t = format!("{FAMILY} {table}");
    let mut s = String::new();
    s += &format!("add chain {t} {CHAIN_PUBLISHED}\n");
    s += &format!("add chain {t} {CHAIN_PREROUTING} {{ type nat hook prerouting priority dstnat; policy accept; }}\n");
    s += &format!(
        "add chain {t} {CHAIN_OUTPUT} {{ type nat hook output priority -100; policy accept; }}\n"
    );
    s += &format!(
        "add chain {t} {CHAIN_GUARD} {{ type filter hook prerouting priority raw; policy accept; }}\n"
    );
    for c in [CHAIN_PUBLISHED, CHAIN_PREROUTING, CHAIN_OUTPUT, CHAIN_GUARD] {
        s += &format!("flush chain {t} {c}\n");
    }
    for (ip, v) in [("ip", "4"), ("ip6", "6")] {
        s += &format!(
            "add rule {t} {CHAIN_PUBLISHED} dnat {ip} to meta l4proto . th dport map @ports{v}\n"
        );
        s += &format!("add rule {t} {CHAIN_PUBLISHED} dnat {ip} to {ip} daddr . meta l4proto . th dport map @ports{v}_ip\n");
        s += &format!("add rule {t} {CHAIN_PUBLISHED} dnat {ip} to meta l4proto . {ip} daddr . th dport map @ranges{v}\n");
    }
    s += &format!("add rule {t} {CHAIN_PREROUTING} fib daddr type local jump {CHAIN_PUBLISHED}\n");
    s += &format!("add rule {t} {CHAIN_OUTPUT} ip6 daddr ::1 return\n");
    s += &format!("add rule {t} {CHAIN_OUTPUT} fib daddr type local jump {CHAIN_PUBLISHED}\n");
    s += &format!("add rule {t} {CHAIN_GUARD} iifname @{SET_BRIDGES} ip daddr 127.0.0.0/8 drop\n");
    s
}

/// The element that masquerades a container reaching its own published port through the
/// host (`C . C` in `self4`/`self6`).
pub fn self_element(addr: IpAddr) -> Elem {
    Elem {
        map: if addr.is_ipv4() { "self4" } else { "self6" },
        key: format!("{addr} . {addr}"),
        value: String::new(),
    }
}

fn by_map(elems: &[Elem]) -> BTreeMap<&'static str, Vec<&Elem>> {
    let mut m: BTreeMap<&'static str, Vec<&Elem>> = BTreeMap::new();
    for e in elems {
        m.entry(e.map).or_default().push(e);
    }
    m
}

fn add_lines(t: &str, elems: &[Elem]) -> String {
    let mut s = String::new();
    for (map, es) in by_map(elems) {
        let body: Vec<String> = es
            .iter()
            .map(|e| {
                if e.value.is_empty() {
                    e.key.clone()
                } else {
                    format!("{} : {}", e.key, e.value)
                }
            })
            .collect();
        s += &format!("add element {t} {map} {{ {} }}\n", body.join(", "));
    }
    s
}

/// Adds the elements, in one transaction. Re-adding an element with the same value is a
/// no-op, so this is idempotent.
pub fn publish_script(table: &str, elems: &[Elem]) -> Result<String, FwError> {
    validate_table(table)?;
    Ok(add_lines(&format!("{FAMILY} {table}"), elems))
}

/// Removes the elements, in one transaction; succeeds when they are already gone (each is
/// added first, then deleted).
pub fn unpublish_script(table: &str, elems: &[Elem]) -> Result<String, FwError> {
    validate_table(table)?;
    let t = format!("{FAMILY} {table}");
    let mut s = add_lines(&t, elems);
    for (map, es) in by_map(elems) {
        let keys: Vec<&str> = es.iter().map(|e| e.key.as_str()).collect();
        s += &format!("delete element {t} {map} {{ {} }}\n", keys.join(", "));
    }
    Ok(s)
}

/// Makes the maps hold exactly `elems` (daemon start: the records are the truth).
pub fn reset_script(table: &str, elems: &[Elem]) -> Result<String, FwError> {
    validate_table(table)?;
    let t = format!("{FAMILY} {table}");
    let mut s: String = MAPS
        .iter()
        .map(|m| format!("flush map {t} {m}\n"))
        .collect();
    s += &SETS
        .iter()
        .map(|m| format!("flush set {t} {m}\n"))
        .collect::<String>();
    s += &add_lines(&t, elems);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(proto: &'static str, ip: &str, h: u16, count: u32, to: &str, c: u16) -> FwPorts {
        FwPorts {
            proto,
            host_ip: ip.parse().unwrap(),
            host_port: h,
            count,
            to: to.parse().unwrap(),
            to_port: c,
        }
    }

    fn texts(p: &FwPorts) -> Vec<String> {
        elements(p)
            .unwrap()
            .iter()
            .map(|e| format!("{}: {} : {}", e.map, e.key, e.value))
            .collect()
    }

    #[test]
    fn a_range_of_the_same_ports_is_one_element() {
        assert_eq!(
            texts(&run("tcp", "0.0.0.0", 10000, 10001, "172.17.0.2", 10000)),
            ["ranges4: tcp . 0.0.0.0/0 . 10000-20000 : 172.17.0.2"]
        );
        assert_eq!(
            texts(&run("udp", "127.0.0.1", 7000, 3, "10.0.0.2", 7000)),
            ["ranges4: udp . 127.0.0.1 . 7000-7002 : 10.0.0.2"]
        );
        assert_eq!(
            texts(&run("tcp", "::", 80, 2, "fd00::2", 80)),
            ["ranges6: tcp . ::/0 . 80-81 : fd00::2"]
        );
    }

    #[test]
    fn other_bindings_are_one_element_per_port() {
        assert_eq!(
            texts(&run("tcp", "0.0.0.0", 8080, 1, "172.17.0.2", 80)),
            ["ports4: tcp . 8080 : 172.17.0.2 . 80"]
        );
        // a single port published as itself is an exact element too
        assert_eq!(
            texts(&run("sctp", "0.0.0.0", 80, 1, "172.17.0.2", 80)),
            ["ports4: sctp . 80 : 172.17.0.2 . 80"]
        );
        assert_eq!(
            texts(&run("udp", "198.51.100.1", 8000, 2, "172.17.0.2", 53)),
            [
                "ports4_ip: 198.51.100.1 . udp . 8000 : 172.17.0.2 . 53",
                "ports4_ip: 198.51.100.1 . udp . 8001 : 172.17.0.2 . 54"
            ]
        );
        assert_eq!(
            texts(&run("tcp", "::", 18080, 1, "fd00::2", 80)),
            ["ports6: tcp . 18080 : fd00::2 . 80"]
        );
        assert_eq!(
            texts(&run("tcp", "2001:db8::1", 18080, 1, "fd00::2", 80)),
            ["ports6_ip: 2001:db8::1 . tcp . 18080 : fd00::2 . 80"]
        );
    }

    #[test]
    fn bad_runs_are_refused() {
        assert!(elements(&run("icmp", "0.0.0.0", 1, 1, "10.0.0.2", 1)).is_err());
        assert!(elements(&run("tcp", "0.0.0.0", 65535, 2, "10.0.0.2", 65535)).is_err());
        assert!(elements(&run("tcp", "0.0.0.0", 1, 0, "10.0.0.2", 1)).is_err());
        assert!(elements(&run("tcp", "::", 1, 1, "10.0.0.2", 1)).is_err());
    }

    #[test]
    fn scripts() {
        let mut e = elements(&run("tcp", "0.0.0.0", 8080, 2, "172.17.0.2", 80)).unwrap();
        e.extend(elements(&run("tcp", "0.0.0.0", 9000, 2, "172.17.0.2", 9000)).unwrap());
        assert_eq!(
            publish_script("berth", &e).unwrap(),
            "add element inet berth ports4 { tcp . 8080 : 172.17.0.2 . 80, tcp . 8081 : 172.17.0.2 . 81 }\n\
             add element inet berth ranges4 { tcp . 0.0.0.0/0 . 9000-9001 : 172.17.0.2 }\n"
        );
        assert_eq!(
            unpublish_script("berth", &e).unwrap(),
            "add element inet berth ports4 { tcp . 8080 : 172.17.0.2 . 80, tcp . 8081 : 172.17.0.2 . 81 }\n\
             add element inet berth ranges4 { tcp . 0.0.0.0/0 . 9000-9001 : 172.17.0.2 }\n\
             delete element inet berth ports4 { tcp . 8080, tcp . 8081 }\n\
             delete element inet berth ranges4 { tcp . 0.0.0.0/0 . 9000-9001 }\n"
        );
        let r = reset_script("berth", &e[2..]).unwrap();
        assert!(r.starts_with("flush map inet berth ports4\nflush map inet berth ports4_ip\n"));
        assert!(r.ends_with("flush set inet berth self6\nadd element inet berth ranges4 { tcp . 0.0.0.0/0 . 9000-9001 : 172.17.0.2 }\n"));
        assert_eq!(
            reset_script("berth", &[]).unwrap().lines().count(),
            8,
            "nothing published: only the flushes"
        );
        assert!(publish_script("bad name", &e).is_err());
    }
}
