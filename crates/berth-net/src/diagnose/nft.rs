//! The nftables ruleset as the kernel holds it (`list ruleset`, JSON, through libnftables in
//! process), and a small evaluator: which verdict the `forward` hook gives one packet, in
//! berth's table and in every other table (a foreign rule dropping forwarded traffic).
//!
//! Matches this evaluator does not understand are "unknown": a drop rule with an unknown
//! match is reported as one that *may* drop; an accept rule with one is not counted on.

use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// One packet as the forward hook sees it (a new connection).
#[derive(Debug, Clone)]
pub struct Packet {
    pub iif: String,
    pub oif: String,
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    /// "tcp", "udp", "icmp".
    pub proto: &'static str,
    pub dport: Option<u16>,
    /// Translated by a DNAT (a published port).
    pub dnat: bool,
}

#[derive(Debug, Clone)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    pub hook: Option<String>,
    pub prio: i64,
    pub policy: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub expr: Vec<Value>,
    pub comment: Option<String>,
}

/// The whole ruleset, parsed.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
    /// (family, table, set) → elements as text (`a . b` for concatenations).
    pub sets: HashMap<(String, String, String), Vec<String>>,
}

/// Reads the ruleset of the daemon's namespace.
pub fn read() -> Result<Ruleset, String> {
    let ctx = crate::firewall::nft::Context::new().map_err(|e| e.to_string())?;
    let out = ctx.run_json("list ruleset").map_err(|e| e.to_string())?;
    if !out.ok {
        return Err(out.error.trim().to_string());
    }
    parse(&out.output)
}

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Parses `nft -j list ruleset`; bounded by what libnftables printed, never panics.
pub fn parse(json: &str) -> Result<Ruleset, String> {
    if json.trim().is_empty() {
        return Ok(Ruleset::default());
    }
    let v: Value = serde_json::from_str(json).map_err(|e| format!("nft JSON: {e}"))?;
    let mut rs = Ruleset::default();
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for it in items {
        if let Some(c) = it.get("chain") {
            rs.chains.push(Chain {
                family: s(c, "family"),
                table: s(c, "table"),
                name: s(c, "name"),
                hook: c.get("hook").and_then(Value::as_str).map(String::from),
                prio: c.get("prio").and_then(Value::as_i64).unwrap_or(0),
                policy: c.get("policy").and_then(Value::as_str).map(String::from),
            });
        } else if let Some(r) = it.get("rule") {
            rs.rules.push(Rule {
                family: s(r, "family"),
                table: s(r, "table"),
                chain: s(r, "chain"),
                handle: r.get("handle").and_then(Value::as_u64).unwrap_or(0),
                expr: r
                    .get("expr")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                comment: r.get("comment").and_then(Value::as_str).map(String::from),
            });
        } else if let Some(st) = it.get("set").or_else(|| it.get("map")) {
            let elems = st
                .get("elem")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(elem_text).collect())
                .unwrap_or_default();
            rs.sets
                .insert((s(st, "family"), s(st, "table"), s(st, "name")), elems);
        }
    }
    Ok(rs)
}

fn elem_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => {
            if let Some(Value::Array(parts)) = o.get("concat") {
                return parts.iter().map(elem_text).collect::<Vec<_>>().join(" . ");
            }
            if let Some(e) = o.get("elem") {
                return elem_text(e.get("val").unwrap_or(e));
            }
            if let Some(p) = o.get("prefix") {
                return format!("{}/{}", s(p, "addr"), p.get("len").unwrap_or(&Value::Null));
            }
            v.to_string()
        }
        _ => v.to_string(),
    }
}

impl Ruleset {
    /// berth's table: the `inet` table whose `bridges` set holds `bridge`, else the first
    /// `inet` table named `berth…` with such a set.
    pub fn berth_table(&self, bridge: Option<&str>) -> Option<String> {
        let mut cands: Vec<&(String, String, String)> = self
            .sets
            .keys()
            .filter(|(f, t, n)| f == "inet" && n == "bridges" && t.starts_with("berth"))
            .collect();
        cands.sort();
        if let Some(b) = bridge {
            if let Some(k) = cands.iter().find(|k| self.sets[**k].iter().any(|e| e == b)) {
                return Some(k.1.clone());
            }
        }
        cands.first().map(|k| k.1.clone())
    }

    pub fn set_has(&self, table: &str, set: &str, elem: &str) -> bool {
        self.sets
            .get(&("inet".into(), table.into(), set.into()))
            .is_some_and(|v| v.iter().any(|e| e == elem))
    }

    fn set_elems(&self, family: &str, table: &str, set: &str) -> Option<&Vec<String>> {
        self.sets.get(&(family.into(), table.into(), set.into()))
    }

    /// Base chains on `hook` for `families`, in priority order.
    pub fn base_chains<'a>(&'a self, hook: &str, families: &[&str]) -> Vec<&'a Chain> {
        let mut v: Vec<&Chain> = self
            .chains
            .iter()
            .filter(|c| c.hook.as_deref() == Some(hook) && families.contains(&c.family.as_str()))
            .collect();
        v.sort_by_key(|c| c.prio);
        v
    }

    /// The verdict of one base chain (and what it jumps to) for `p`.
    pub fn eval_chain(&self, c: &Chain, p: &Packet) -> Outcome {
        match self.eval_in(&c.family, &c.table, &c.name, p, 0) {
            Some(o) => o,
            None => {
                if c.policy.as_deref() == Some("drop") {
                    Outcome {
                        verdict: Verdict::Drop,
                        sure: true,
                        by: Some(format!(
                            "table {} {}, chain {}, policy drop",
                            c.family, c.table, c.name
                        )),
                    }
                } else {
                    Outcome {
                        verdict: Verdict::Accept,
                        sure: true,
                        by: None,
                    }
                }
            }
        }
    }

    fn eval_in(
        &self,
        fam: &str,
        table: &str,
        chain: &str,
        p: &Packet,
        depth: u32,
    ) -> Option<Outcome> {
        if depth > 16 {
            return None;
        }
        let rules = self
            .rules
            .iter()
            .filter(|r| r.family == fam && r.table == table && r.chain == chain);
        for r in rules {
            let mut m = Tri::Yes;
            let mut verdict = None;
            for e in &r.expr {
                if let Some(mm) = e.get("match") {
                    m = m.and(self.eval_match(fam, table, mm, p));
                } else if let Some(v) = verdict_of(e) {
                    verdict = Some(v);
                } else if e.get("xt").is_some() {
                    m = m.and(Tri::Unknown);
                }
                if m == Tri::No {
                    break;
                }
            }
            if m == Tri::No {
                continue;
            }
            let by = || {
                Some(format!(
                    "table {fam} {table}, chain {chain}, rule {}{}",
                    r.handle,
                    r.comment
                        .as_ref()
                        .map(|c| format!(" \"{c}\""))
                        .unwrap_or_else(|| format!(": {}", render(&r.expr)))
                ))
            };
            match verdict {
                Some(V::Accept) if m == Tri::Yes => {
                    return Some(Outcome {
                        verdict: Verdict::Accept,
                        sure: true,
                        by: by(),
                    })
                }
                Some(V::Drop) => {
                    return Some(Outcome {
                        verdict: Verdict::Drop,
                        sure: m == Tri::Yes,
                        by: by(),
                    })
                }
                Some(V::Jump(t)) | Some(V::Goto(t)) if m == Tri::Yes => {
                    if let Some(o) = self.eval_in(fam, table, &t, p, depth + 1) {
                        return Some(o);
                    }
                }
                Some(V::Return) if m == Tri::Yes => return None,
                _ => {}
            }
        }
        None
    }

    fn eval_match(&self, fam: &str, table: &str, m: &Value, p: &Packet) -> Tri {
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let (Some(left), Some(right)) = (m.get("left"), m.get("right")) else {
            return Tri::Unknown;
        };
        let Some(lv) = self.left_value(left, p) else {
            return Tri::Unknown;
        };
        let hit = match right {
            Value::String(r) if r.starts_with('@') => match self.set_elems(fam, table, &r[1..]) {
                Some(el) => el.iter().any(|e| value_eq(e, &lv)),
                None => return Tri::Unknown,
            },
            Value::Object(o) if o.contains_key("set") => o["set"]
                .as_array()
                .map(|a| a.iter().any(|e| value_eq(&elem_text(e), &lv)))
                .unwrap_or(false),
            Value::Array(a) => a.iter().any(|e| value_eq(&elem_text(e), &lv)),
            other => value_eq(&elem_text(other), &lv),
        };
        let hit = match op {
            "==" | "in" => hit,
            "!=" => !hit,
            _ => return Tri::Unknown,
        };
        if hit {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn left_value(&self, left: &Value, p: &Packet) -> Option<String> {
        if let Some(parts) = left.get("concat").and_then(Value::as_array) {
            let v: Option<Vec<String>> = parts.iter().map(|x| self.left_value(x, p)).collect();
            return v.map(|v| v.join(" . "));
        }
        if let Some(meta) = left.get("meta") {
            return match meta.get("key").and_then(Value::as_str)? {
                "iifname" => Some(p.iif.clone()),
                "oifname" => Some(p.oif.clone()),
                "l4proto" => Some(p.proto.to_string()),
                "nfproto" => Some(if p.daddr.is_ipv4() { "ipv4" } else { "ipv6" }.into()),
                _ => None,
            };
        }
        if let Some(pl) = left.get("payload") {
            let proto = pl.get("protocol").and_then(Value::as_str)?;
            let field = pl.get("field").and_then(Value::as_str)?;
            return match (proto, field) {
                ("ip", "saddr") | ("ip6", "saddr") => Some(p.saddr.to_string()),
                ("ip", "daddr") | ("ip6", "daddr") => Some(p.daddr.to_string()),
                ("th", "dport") | ("tcp", "dport") | ("udp", "dport") => Some(p.dport?.to_string()),
                _ => None,
            };
        }
        if let Some(ct) = left.get("ct") {
            return match ct.get("key").and_then(Value::as_str)? {
                "state" => Some("new".into()),
                "status" => Some(if p.dnat { "dnat" } else { "none" }.into()),
                _ => None,
            };
        }
        None
    }
}

/// `e` (a set element or literal) against the packet's value `v`: equal, or a prefix or
/// range holding it.
fn value_eq(e: &str, v: &str) -> bool {
    if e == v {
        return true;
    }
    if let (Ok(net), Ok(ip)) = (e.parse::<ipnet::IpNet>(), v.parse::<IpAddr>()) {
        return net.contains(&ip);
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
}

enum V {
    Accept,
    Drop,
    Jump(String),
    Goto(String),
    Return,
}

fn verdict_of(e: &Value) -> Option<V> {
    let o = e.as_object()?;
    if o.contains_key("accept") {
        return Some(V::Accept);
    }
    if o.contains_key("drop") || o.contains_key("reject") {
        return Some(V::Drop);
    }
    if o.contains_key("return") {
        return Some(V::Return);
    }
    if let Some(j) = o.get("jump") {
        return Some(V::Jump(s(j, "target")));
    }
    if let Some(g) = o.get("goto") {
        return Some(V::Goto(s(g, "target")));
    }
    None
}

/// A short text for a rule: its matches and verdict as nft prints them, roughly.
pub fn render(expr: &[Value]) -> String {
    let mut out = Vec::new();
    for e in expr {
        if let Some(m) = e.get("match") {
            let l = m.get("left").map(render_left).unwrap_or_default();
            let r = m.get("right").map(elem_text).unwrap_or_default();
            let op = match m.get("op").and_then(Value::as_str) {
                Some("!=") => "!= ",
                _ => "",
            };
            out.push(format!("{l} {op}{r}"));
        } else if e.get("xt").is_some() {
            out.push("(iptables match)".into());
        } else if let Some(o) = e.as_object() {
            if let Some(k) = o.keys().next() {
                if ["accept", "drop", "reject", "jump", "goto", "return"].contains(&k.as_str()) {
                    out.push(k.clone());
                }
            }
        }
    }
    out.join(" ")
}

fn render_left(v: &Value) -> String {
    if let Some(parts) = v.get("concat").and_then(Value::as_array) {
        return parts
            .iter()
            .map(render_left)
            .collect::<Vec<_>>()
            .join(" . ");
    }
    if let Some(m) = v.get("meta") {
        return s(m, "key");
    }
    if let Some(p) = v.get("payload") {
        return format!("{} {}", s(p, "protocol"), s(p, "field"));
    }
    if let Some(c) = v.get("ct") {
        return format!("ct {}", s(c, "key"));
    }
    "?".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    /// false: a drop rule whose matches the evaluator could not all decide.
    pub sure: bool,
    /// Where the verdict came from (table, chain, rule).
    pub by: Option<String>,
}

/// The forward hook for `p`, every table: berth's first (its verdict), then any other table
/// that drops the packet.
pub struct Forward {
    pub berth: Option<Outcome>,
    pub foreign_drop: Option<Outcome>,
}

/// `bridged`: the packet stays on one bridge; `bridge_nf`: bridged packets also traverse the
/// IP families' forward hook (br_netfilter with bridge-nf-call-iptables=1).
pub fn forward(
    rs: &Ruleset,
    berth_table: Option<&str>,
    p: &Packet,
    bridged: bool,
    bridge_nf: bool,
) -> Forward {
    let fams: &[&str] = match (bridged, bridge_nf) {
        (true, true) => &["bridge", "ip", "ip6", "inet"],
        (true, false) => &["bridge"],
        (false, _) => &["ip", "ip6", "inet"],
    };
    let fam_of_packet = if p.daddr.is_ipv4() { "ip" } else { "ip6" };
    let mut f = Forward {
        berth: None,
        foreign_drop: None,
    };
    for c in rs.base_chains("forward", fams) {
        if c.family != "inet" && c.family != "bridge" && c.family != fam_of_packet {
            continue;
        }
        let o = rs.eval_chain(c, p);
        if Some(c.table.as_str()) == berth_table && c.family == "inet" {
            f.berth = Some(o);
        } else if o.verdict == Verdict::Drop && f.foreign_drop.is_none() {
            f.foreign_drop = Some(o);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS: &str = r#"{"nftables":[
      {"metainfo":{"json_schema_version":1}},
      {"table":{"family":"inet","name":"berth"}},
      {"set":{"family":"inet","name":"bridges","table":"berth","type":"ifname","elem":["br-a","br-b"]}},
      {"set":{"family":"inet","name":"own","table":"berth","type":["ifname","ifname"],"elem":[{"concat":["br-a","br-a"]},{"concat":["br-b","br-b"]}]}},
      {"set":{"family":"inet","name":"noicc","table":"berth","type":["ifname","ifname"],"elem":[{"concat":["br-b","br-b"]}]}},
      {"chain":{"family":"inet","table":"berth","name":"forward","type":"filter","hook":"forward","prio":0,"policy":"accept"}},
      {"rule":{"family":"inet","table":"berth","chain":"forward","handle":5,"expr":[{"match":{"op":"==","left":{"concat":[{"meta":{"key":"iifname"}},{"meta":{"key":"oifname"}}]},"right":"@noicc"}},{"drop":null}]}},
      {"rule":{"family":"inet","table":"berth","chain":"forward","handle":6,"expr":[{"match":{"op":"==","left":{"concat":[{"meta":{"key":"iifname"}},{"meta":{"key":"oifname"}}]},"right":"@own"}},{"accept":null}]}},
      {"rule":{"family":"inet","table":"berth","chain":"forward","handle":9,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@bridges"}},{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"@bridges"}},{"drop":null}]}},
      {"table":{"family":"ip","name":"filter"}},
      {"chain":{"family":"ip","table":"filter","name":"FORWARD","type":"filter","hook":"forward","prio":0,"policy":"accept"}},
      {"rule":{"family":"ip","table":"filter","chain":"FORWARD","handle":3,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"10.9.0.0","len":16}}}},{"drop":null}]}}
    ]}"#;

    fn pkt(iif: &str, oif: &str, d: &str) -> Packet {
        Packet {
            iif: iif.into(),
            oif: oif.into(),
            saddr: "172.18.0.2".parse().unwrap(),
            daddr: d.parse().unwrap(),
            proto: "tcp",
            dport: Some(80),
            dnat: false,
        }
    }

    #[test]
    fn same_network_accepted_noicc_dropped_isolation() {
        let rs = parse(RS).unwrap();
        assert_eq!(rs.berth_table(Some("br-a")).as_deref(), Some("berth"));
        let f = forward(
            &rs,
            Some("berth"),
            &pkt("br-a", "br-a", "172.18.0.3"),
            true,
            true,
        );
        assert_eq!(f.berth.as_ref().unwrap().verdict, Verdict::Accept);
        assert!(f.berth.unwrap().by.unwrap().contains("rule 6"));
        assert!(f.foreign_drop.is_none());
        let f = forward(
            &rs,
            Some("berth"),
            &pkt("br-b", "br-b", "172.19.0.3"),
            true,
            true,
        );
        assert_eq!(f.berth.unwrap().verdict, Verdict::Drop);
        let f = forward(
            &rs,
            Some("berth"),
            &pkt("br-a", "br-b", "172.19.0.3"),
            false,
            true,
        );
        let b = f.berth.unwrap();
        assert_eq!(b.verdict, Verdict::Drop);
        assert!(b.by.unwrap().contains("rule 9"));
    }

    #[test]
    fn foreign_drop_found_by_prefix() {
        let rs = parse(RS).unwrap();
        let f = forward(
            &rs,
            Some("berth"),
            &pkt("br-a", "eth0", "10.9.1.1"),
            false,
            false,
        );
        let d = f.foreign_drop.unwrap();
        assert!(d.sure);
        assert!(d.by.unwrap().contains("ip filter, chain FORWARD, rule 3"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("{").is_err());
        assert!(parse("[]").unwrap().chains.is_empty());
        assert!(parse(r#"{"nftables":[{"rule":{"expr":[{"match":{}}]}}]}"#).is_ok());
    }
}
