//! Reading the daemon's nftables state out of `nft -j list ruleset`.

use serde_json::Value;
use std::collections::BTreeMap;

/// The daemon's tables: every `inet` table whose name starts with `berth`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NftState {
    /// Names of the daemon's tables.
    pub tables: Vec<String>,
    /// Set or map name → its elements rendered as text, sorted (see [`render`]). A name that
    /// occurs in two berth tables is keyed `table/name` for the second one.
    pub sets: BTreeMap<String, Vec<String>>,
    /// `table/chain` → number of rules.
    pub rule_counts: BTreeMap<String, usize>,
}

fn is_berth_table(o: &Value) -> bool {
    o["family"] == "inet"
        && o["table"]
            .as_str()
            .or_else(|| o["name"].as_str())
            .map(|n| n.starts_with("berth"))
            .unwrap_or(false)
}

/// Extracts [`NftState`] from the parsed output of `nft -j list ruleset`.
pub fn state(ruleset: &Value) -> NftState {
    let mut st = NftState::default();
    let items = ruleset["nftables"].as_array().cloned().unwrap_or_default();
    for item in &items {
        if let Some(t) = item.get("table") {
            if is_berth_table(t) {
                st.tables.push(t["name"].as_str().unwrap().to_string());
            }
        }
    }
    for item in &items {
        for kind in ["set", "map"] {
            if let Some(s) = item.get(kind) {
                let table = s["table"].as_str().unwrap_or("");
                if s["family"] != "inet" || !table.starts_with("berth") {
                    continue;
                }
                let name = s["name"].as_str().unwrap_or("").to_string();
                let mut elems: Vec<String> = s["elem"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(render)
                    .collect();
                elems.sort();
                let key = if st.sets.contains_key(&name) {
                    format!("{table}/{name}")
                } else {
                    name
                };
                st.sets.insert(key, elems);
            }
        }
        if let Some(c) = item.get("chain") {
            let table = c["table"].as_str().unwrap_or("");
            if c["family"] == "inet" && table.starts_with("berth") {
                st.rule_counts
                    .entry(format!("{table}/{}", c["name"].as_str().unwrap_or("")))
                    .or_insert(0);
            }
        }
        if let Some(r) = item.get("rule") {
            let table = r["table"].as_str().unwrap_or("");
            if r["family"] == "inet" && table.starts_with("berth") {
                *st.rule_counts
                    .entry(format!("{table}/{}", r["chain"].as_str().unwrap_or("")))
                    .or_insert(0) += 1;
            }
        }
    }
    st
}

/// Renders one set/map element (or key/value) of nft's JSON as text:
/// `"br-x"` → `br-x`; prefix → `10.0.0.0/24`; range → `a-b`; concat → `a . b`;
/// map element `[k, v]` → `k : v`; verdicts → `accept`, `jump chain`.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(a) if a.len() == 2 => format!("{} : {}", render(&a[0]), render(&a[1])),
        Value::Array(a) => a.iter().map(render).collect::<Vec<_>>().join(", "),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                return format!("{}/{}", render(&p["addr"]), render(&p["len"]));
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return r.iter().map(render).collect::<Vec<_>>().join("-");
            }
            if let Some(Value::Array(c)) = o.get("concat") {
                return c.iter().map(render).collect::<Vec<_>>().join(" . ");
            }
            if let Some(e) = o.get("elem") {
                return render(&e["val"]);
            }
            for verdict in ["jump", "goto"] {
                if let Some(t) = o.get(verdict) {
                    return format!("{verdict} {}", render(&t["target"]));
                }
            }
            if o.len() == 1 {
                let (k, val) = o.iter().next().unwrap();
                if val.is_null() {
                    return k.clone();
                }
            }
            Value::Object(o.clone()).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_elements() {
        let rs = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "berth", "handle": 1}},
            {"table": {"family": "ip", "name": "other", "handle": 2}},
            {"set": {"family": "inet", "name": "bridges", "table": "berth", "type": "ifname",
                     "elem": ["br-b", "br-a"]}},
            {"set": {"family": "inet", "name": "masq", "table": "berth", "type": "ipv4_addr",
                     "elem": [{"prefix": {"addr": "10.0.0.0", "len": 24}}]}},
            {"set": {"family": "ip", "name": "bridges", "table": "other", "elem": ["x"]}},
            {"map": {"family": "inet", "name": "intra", "table": "berth", "type": ["ifname", "ifname"],
                     "map": "verdict", "elem": [[{"concat": ["a", "b"]}, {"accept": null}]]}},
            {"chain": {"family": "inet", "table": "berth", "name": "forward"}},
            {"chain": {"family": "inet", "table": "berth", "name": "empty"}},
            {"rule": {"family": "inet", "table": "berth", "chain": "forward", "expr": []}},
            {"rule": {"family": "inet", "table": "berth", "chain": "forward", "expr": []}}
        ]});
        let st = state(&rs);
        assert_eq!(st.tables, vec!["berth"]);
        assert_eq!(st.sets["bridges"], vec!["br-a", "br-b"]);
        assert_eq!(st.sets["masq"], vec!["10.0.0.0/24"]);
        assert_eq!(st.sets["intra"], vec!["a . b : accept"]);
        assert_eq!(st.sets.len(), 3);
        assert_eq!(st.rule_counts["berth/forward"], 2);
        assert_eq!(st.rule_counts["berth/empty"], 0);
    }
}
