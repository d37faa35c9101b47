//! Pure generation of the nft scripts berth runs, plus validation of every
//! name that is interpolated into them and parsing of the JSON listings it
//! reads back. Nothing here touches the kernel, so all of it is unit-testable
//! without root.
//!
//! The table (family `inet`, one per daemon, name chosen by the caller):
//!
//! ```text
//! table inet berth {
//!     set bridges  { type ifname; }            # every bridge of every berth network
//!     set masq     { type ifname; }            # bridges whose networks masquerade
//!     set internal { type ifname; }            # bridges of --internal networks
//!     set own      { type ifname . ifname; }   # "br-x" . "br-x" for every network
//!     set noicc    { type ifname . ifname; }   # "br-x" . "br-x" for networks with icc=false
//!     chain forward {
//!         type filter hook forward priority filter; policy accept;
//!         iifname . oifname @noicc drop
//!         iifname . oifname @own accept
//!         iifname @internal drop
//!         oifname @internal drop
//!         oifname @bridges ct status dnat accept
//!         iifname @bridges oifname @bridges drop
//!         oifname @bridges ct state established,related accept
//!         oifname @bridges drop
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         iifname . oifname @own ct status dnat masquerade
//!         iifname . oifname @own return
//!         meta nfproto ipv4 iifname @masq masquerade
//!         oifname @bridges ip saddr 127.0.0.0/8 masquerade
//!     }
//!     (published ports: maps and chains of their own, see `ports.rs`)
//! }
//! ```
//!
//! Adding or removing a network only ever touches elements of the five sets,
//! a constant number of operations in one transaction. Every operation is
//! unconditional: an element that must be present is `add`ed (a no-op when it
//! already is), and an element that must be absent is `add`ed and then
//! `delete`d in the same transaction (nft 1.0.6 has no `destroy`, and a bare
//! `delete` of an absent element fails the whole transaction). That is why the
//! intra-network verdict is two plain sets (`own`, `noicc`) instead of a
//! `ifname . ifname : verdict` map: a map element can only be re-added with
//! the *same* verdict, so neither "make absent" nor "change icc" could be
//! expressed without first reading the kernel state.

use super::{FwError, FwNetwork};

/// Family of berth's table. `inet` covers IPv4 and IPv6 with one set of rules.
pub const FAMILY: &str = "inet";

/// Names of the sets that hold per-network elements.
pub const SET_BRIDGES: &str = "bridges";
pub const SET_MASQ: &str = "masq";
pub const SET_INTERNAL: &str = "internal";
pub const SET_OWN: &str = "own";
pub const SET_NOICC: &str = "noicc";

/// Names of the two base chains.
pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_POSTROUTING: &str = "postrouting";

/// Linux `IFNAMSIZ` minus the terminating NUL.
pub const IFNAME_MAX: usize = 15;

/// Longest table name accepted (the kernel allows 255; nobody needs more).
pub const TABLE_NAME_MAX: usize = 64;

/// Rules of the `forward` chain, in order (without the `add rule` prefix).
pub const FORWARD_RULES: &[&str] = &[
    // Same network: icc decides. `noicc` is consulted first so a bridge that
    // is in both sets is isolated.
    "iifname . oifname @noicc drop",
    "iifname . oifname @own accept",
    // Internal networks reach nothing outside themselves, and nothing reaches them.
    "iifname @internal drop",
    "oifname @internal drop",
    // Published ports (DNAT by berth's own maps), from anywhere: outside, the host, and
    // containers of other networks through the host's address. Before the isolation rule,
    // which would drop the latter; also matches their replies (the connection is DNATed).
    "oifname @bridges ct status dnat accept",
    // Isolation between different berth networks.
    "iifname @bridges oifname @bridges drop",
    // Into a berth network from outside: replies.
    "oifname @bridges ct state established,related accept",
    // Nothing else enters a berth network from outside.
    "oifname @bridges drop",
];

/// Rules of the `postrouting` chain, in order.
pub const POSTROUTING_RULES: &[&str] = &[
    // Hairpin: a container reaching a published port through the host's address must see
    // the answer come back from the host. Routed within its network, its peer would answer
    // it directly; reaching its own port, it would get a packet from itself. (With
    // br_netfilter the packet is bridged and its input interface is unknown here, hence
    // the second form, per container address.)
    "iifname . oifname @own ct status dnat masquerade",
    "ct status dnat ip saddr . ip daddr @self4 masquerade",
    "ct status dnat ip6 saddr . ip6 daddr @self6 masquerade",
    // Docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE`: traffic that stays on
    // its own bridge keeps its source address...
    "iifname . oifname @own return",
    // ...everything else leaving a masquerading network is masqueraded (IPv4 only).
    "meta nfproto ipv4 iifname @masq masquerade",
    // The host's own 127.0.0.1 DNATed to a published port: the container could not answer
    // a loopback source.
    "oifname @bridges ip saddr 127.0.0.0/8 masquerade",
];

/// Checks that `name` is usable as berth's nftables table name.
///
/// nft does not accept quoted table names, so the name goes into scripts
/// bare: it must be an nft identifier (`[A-Za-z][A-Za-z0-9_-]*`). A name that
/// happens to be an nft keyword (`filter` is fine, `counter` is not) passes
/// this check and is reported by nft as a syntax error on `init`.
pub fn validate_table(name: &str) -> Result<(), FwError> {
    let invalid = |reason: &'static str| FwError::InvalidTableName {
        name: name.to_string(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(invalid("it is empty")),
        Some(b) if !b.is_ascii_alphabetic() => {
            return Err(invalid("it must start with an ASCII letter"))
        }
        Some(_) => {}
    }
    if name.len() > TABLE_NAME_MAX {
        return Err(invalid("it is longer than 64 bytes"));
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(invalid(
            "it may only contain ASCII letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

/// Checks that `name` is a Linux interface name that can be put in an nft
/// script as a quoted string without changing the script's meaning.
///
/// Rules: 1 to 15 bytes; not `.` or `..`; printable ASCII only; none of
/// whitespace, `/` or `:` (rejected by the kernel), `"`, `'` or `\` (quoting),
/// `*` (an nft interface wildcard).
pub fn validate_bridge(name: &str) -> Result<(), FwError> {
    let invalid = |reason: &'static str| FwError::InvalidBridgeName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > IFNAME_MAX {
        return Err(invalid("it is longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not interface names"));
    }
    for b in name.bytes() {
        let reason = match b {
            b'/' | b':' => "it contains '/' or ':'",
            b'"' | b'\'' | b'\\' => "it contains a quote or a backslash",
            b'*' => "it contains '*'",
            b' ' => "it contains whitespace",
            0x21..=0x7e => continue,
            _ => "it contains whitespace, a control character or a non-ASCII byte",
        };
        return Err(invalid(reason));
    }
    Ok(())
}

/// The script that makes the table exist with exactly berth's sets, chains
/// and rules, in one transaction.
///
/// Idempotent and non-destructive for elements: `add table/set/chain` leave
/// existing objects (and their elements) alone, and the two chains are
/// flushed before their rules are added, so running it any number of times
/// yields the rules exactly once. It also repairs a table whose rules are
/// stale (older berth, manual edits) without losing any element.
pub fn init_script(table: &str) -> Result<String, FwError> {
    validate_table(table)?;
    let t = format!("{FAMILY} {table}");
    let mut s = String::with_capacity(2048);
    s.push_str(&format!("add table {t}\n"));
    for set in [SET_BRIDGES, SET_MASQ, SET_INTERNAL] {
        s.push_str(&format!("add set {t} {set} {{ type ifname; }}\n"));
    }
    for set in [SET_OWN, SET_NOICC] {
        s.push_str(&format!("add set {t} {set} {{ type ifname . ifname; }}\n"));
    }
    s.push_str(&super::ports::declarations(table));
    s.push_str(&format!(
        "add chain {t} {CHAIN_FORWARD} {{ type filter hook forward priority filter; policy accept; }}\n"
    ));
    s.push_str(&format!(
        "add chain {t} {CHAIN_POSTROUTING} {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
    ));
    s.push_str(&format!("flush chain {t} {CHAIN_FORWARD}\n"));
    s.push_str(&format!("flush chain {t} {CHAIN_POSTROUTING}\n"));
    for rule in FORWARD_RULES {
        s.push_str(&format!("add rule {t} {CHAIN_FORWARD} {rule}\n"));
    }
    for rule in POSTROUTING_RULES {
        s.push_str(&format!("add rule {t} {CHAIN_POSTROUTING} {rule}\n"));
    }
    s.push_str(&super::ports::rules(table));
    Ok(s)
}

/// The script that deletes the table if it exists (and succeeds if it does
/// not): `add table` makes the `delete` always valid.
pub fn teardown_script(table: &str) -> Result<String, FwError> {
    validate_table(table)?;
    Ok(format!(
        "add table {FAMILY} {table}\ndelete table {FAMILY} {table}\n"
    ))
}

/// Deletes the table (whatever it contains) and recreates it empty, in one
/// transaction.
pub fn reset_script(table: &str) -> Result<String, FwError> {
    Ok(teardown_script(table)? + &init_script(table)?)
}

/// Which elements a network has, one flag per set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub bridges: bool,
    pub own: bool,
    pub noicc: bool,
    pub masq: bool,
    pub internal: bool,
}

impl Membership {
    /// Elements of a network that is present in the firewall.
    ///
    /// An internal network never masquerades (its traffic never leaves it),
    /// whatever `masquerade` says.
    pub fn of(n: &FwNetwork) -> Self {
        Membership {
            bridges: true,
            own: true,
            noicc: !n.icc,
            masq: n.masquerade && !n.internal,
            internal: n.internal,
        }
    }

    /// No elements at all.
    pub const ABSENT: Membership = Membership {
        bridges: false,
        own: false,
        noicc: false,
        masq: false,
        internal: false,
    };
}

/// The script that makes the elements of bridge `bridge` exactly `m`, in one
/// transaction. Always 5 to 10 element operations, whatever the table holds.
fn elements_script(table: &str, bridge: &str, m: Membership) -> Result<String, FwError> {
    validate_table(table)?;
    validate_bridge(bridge)?;
    let single = format!("{{ \"{bridge}\" }}");
    let pair = format!("{{ \"{bridge}\" . \"{bridge}\" }}");
    let mut s = String::with_capacity(512);
    for (set, present, elem) in [
        (SET_BRIDGES, m.bridges, &single),
        (SET_OWN, m.own, &pair),
        (SET_NOICC, m.noicc, &pair),
        (SET_MASQ, m.masq, &single),
        (SET_INTERNAL, m.internal, &single),
    ] {
        // `add` never fails on an existing element; `add` + `delete` makes
        // the element absent whether or not it was there.
        s.push_str(&format!("add element {FAMILY} {table} {set} {elem}\n"));
        if !present {
            s.push_str(&format!("delete element {FAMILY} {table} {set} {elem}\n"));
        }
    }
    Ok(s)
}

/// The script that puts network `n` in the firewall. Idempotent, and
/// declarative: it also clears elements `n` must not have, so re-adding a
/// network with different flags converges.
pub fn add_script(table: &str, n: &FwNetwork) -> Result<String, FwError> {
    elements_script(table, &n.bridge, Membership::of(n))
}

/// The script that takes bridge `bridge` out of the firewall: every element
/// for it, in every set, whatever flags it was added with. Succeeds when
/// nothing was there.
pub fn remove_script(table: &str, bridge: &str) -> Result<String, FwError> {
    elements_script(table, bridge, Membership::ABSENT)
}

/// The command whose JSON output lists the `bridges` set.
pub fn list_bridges_command(table: &str) -> Result<String, FwError> {
    validate_table(table)?;
    Ok(format!("list set {FAMILY} {table} {SET_BRIDGES}"))
}

/// The command whose JSON output lists the tables of berth's family.
pub fn list_tables_command() -> String {
    format!("list tables {FAMILY}")
}

fn parse_json(json: &str) -> Result<Vec<serde_json::Value>, FwError> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| FwError::UnexpectedOutput(format!("nft JSON output does not parse: {e}")))?;
    match v.get("nftables").and_then(|a| a.as_array()) {
        Some(a) => Ok(a.clone()),
        None => Err(FwError::UnexpectedOutput(
            "nft JSON output has no \"nftables\" array".to_string(),
        )),
    }
}

/// Extracts the elements of set `set` of table `table` from the JSON output
/// of `nft -j list set ...` (or `list table`, `list ruleset`).
pub fn parse_set_elements(json: &str, table: &str, set: &str) -> Result<Vec<String>, FwError> {
    for obj in parse_json(json)? {
        let Some(s) = obj.get("set") else { continue };
        let field = |k: &str| s.get(k).and_then(|v| v.as_str());
        if field("family") != Some(FAMILY)
            || field("table") != Some(table)
            || field("name") != Some(set)
        {
            continue;
        }
        let Some(elems) = s.get("elem") else {
            return Ok(Vec::new()); // an empty set has no "elem" key
        };
        let elems = elems.as_array().ok_or_else(|| {
            FwError::UnexpectedOutput(format!("elements of set {set} are not a JSON array"))
        })?;
        return elems
            .iter()
            .map(|e| {
                e.as_str().map(str::to_string).ok_or_else(|| {
                    FwError::UnexpectedOutput(format!("element of set {set} is not a string: {e}"))
                })
            })
            .collect();
    }
    Err(FwError::UnexpectedOutput(format!(
        "set {set} of table {FAMILY} {table} is not in nft's output"
    )))
}

/// Whether table `table` of berth's family appears in the JSON output of
/// `nft -j list tables`.
pub fn parse_has_table(json: &str, table: &str) -> Result<bool, FwError> {
    Ok(parse_json(json)?.iter().any(|obj| {
        obj.get("table").is_some_and(|t| {
            t.get("family").and_then(|v| v.as_str()) == Some(FAMILY)
                && t.get("name").and_then(|v| v.as_str()) == Some(table)
        })
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn net(bridge: &str, internal: bool, masquerade: bool, icc: bool) -> FwNetwork {
        FwNetwork {
            bridge: bridge.to_string(),
            internal,
            masquerade,
            icc,
        }
    }

    #[test]
    fn init_script_text() {
        let expected = "\
add table inet berth
add set inet berth bridges { type ifname; }
add set inet berth masq { type ifname; }
add set inet berth internal { type ifname; }
add set inet berth own { type ifname . ifname; }
add set inet berth noicc { type ifname . ifname; }
{}add chain inet berth forward { type filter hook forward priority filter; policy accept; }
add chain inet berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet berth forward
flush chain inet berth postrouting
add rule inet berth forward iifname . oifname @noicc drop
add rule inet berth forward iifname . oifname @own accept
add rule inet berth forward iifname @internal drop
add rule inet berth forward oifname @internal drop
add rule inet berth forward oifname @bridges ct status dnat accept
add rule inet berth forward iifname @bridges oifname @bridges drop
add rule inet berth forward oifname @bridges ct state established,related accept
add rule inet berth forward oifname @bridges drop
add rule inet berth postrouting iifname . oifname @own ct status dnat masquerade
add rule inet berth postrouting ct status dnat ip saddr . ip daddr @self4 masquerade
add rule inet berth postrouting ct status dnat ip6 saddr . ip6 daddr @self6 masquerade
add rule inet berth postrouting iifname . oifname @own return
add rule inet berth postrouting meta nfproto ipv4 iifname @masq masquerade
add rule inet berth postrouting oifname @bridges ip saddr 127.0.0.0/8 masquerade
";
        let expected = expected.replace("{}", &super::super::ports::declarations("berth"));
        assert_eq!(
            init_script("berth").unwrap(),
            format!("{expected}{}", super::super::ports::rules("berth"))
        );
    }

    #[test]
    fn add_script_default_network() {
        // bridge network with defaults: masquerade, icc, not internal
        let s = add_script("berth", &net("br-0123456789ab", false, true, true)).unwrap();
        assert_eq!(
            s,
            "\
add element inet berth bridges { \"br-0123456789ab\" }
add element inet berth own { \"br-0123456789ab\" . \"br-0123456789ab\" }
add element inet berth noicc { \"br-0123456789ab\" . \"br-0123456789ab\" }
delete element inet berth noicc { \"br-0123456789ab\" . \"br-0123456789ab\" }
add element inet berth masq { \"br-0123456789ab\" }
add element inet berth internal { \"br-0123456789ab\" }
delete element inet berth internal { \"br-0123456789ab\" }
"
        );
    }

    #[test]
    fn add_script_internal_no_icc() {
        // internal wins over masquerade; icc=false puts the pair in noicc
        let s = add_script("other", &net("docker9", true, true, false)).unwrap();
        assert_eq!(
            s,
            "\
add element inet other bridges { \"docker9\" }
add element inet other own { \"docker9\" . \"docker9\" }
add element inet other noicc { \"docker9\" . \"docker9\" }
add element inet other masq { \"docker9\" }
delete element inet other masq { \"docker9\" }
add element inet other internal { \"docker9\" }
"
        );
    }

    #[test]
    fn add_script_no_masquerade() {
        let s = add_script("berth", &net("br-x", false, false, true)).unwrap();
        assert!(s.contains("add element inet berth masq { \"br-x\" }\ndelete element inet berth masq { \"br-x\" }\n"));
        assert!(!s.contains("delete element inet berth bridges"));
        assert!(!s.contains("delete element inet berth own"));
    }

    #[test]
    fn remove_script_clears_every_set() {
        let s = remove_script("berth", "br-x").unwrap();
        assert_eq!(
            s,
            "\
add element inet berth bridges { \"br-x\" }
delete element inet berth bridges { \"br-x\" }
add element inet berth own { \"br-x\" . \"br-x\" }
delete element inet berth own { \"br-x\" . \"br-x\" }
add element inet berth noicc { \"br-x\" . \"br-x\" }
delete element inet berth noicc { \"br-x\" . \"br-x\" }
add element inet berth masq { \"br-x\" }
delete element inet berth masq { \"br-x\" }
add element inet berth internal { \"br-x\" }
delete element inet berth internal { \"br-x\" }
"
        );
    }

    #[test]
    fn element_operations_are_constant() {
        // Independent of anything but the flags: at most 10 lines, no rules.
        for internal in [false, true] {
            for masquerade in [false, true] {
                for icc in [false, true] {
                    let s = add_script("berth", &net("br-a", internal, masquerade, icc)).unwrap();
                    let lines: Vec<&str> = s.lines().collect();
                    assert!((5..=10).contains(&lines.len()), "{s}");
                    assert!(
                        lines
                            .iter()
                            .all(|l| l.starts_with("add element ")
                                || l.starts_with("delete element ")),
                        "{s}"
                    );
                }
            }
        }
    }

    #[test]
    fn teardown_and_reset_scripts() {
        assert_eq!(
            teardown_script("berth").unwrap(),
            "add table inet berth\ndelete table inet berth\n"
        );
        let r = reset_script("berth").unwrap();
        assert!(
            r.starts_with("add table inet berth\ndelete table inet berth\nadd table inet berth\n")
        );
        assert!(r.ends_with(&init_script("berth").unwrap()));
    }

    #[test]
    fn bridge_names() {
        for ok in [
            "br-0123456789ab",
            "docker0",
            "a",
            "123456789012345",
            "br.x_y+z@w#1",
            "br;x{}",
            ".a",
            "-x",
        ] {
            validate_bridge(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "br/x",
            "br:x",
            "br x",
            "br\tx",
            "br\nx",
            "br\"x",
            "br'x",
            "br\\x",
            "br*",
            "br\0x",
            "brü",
            "br\u{7f}",
            "x\" } ; flush ruleset ; add element inet berth bridges { \"y",
        ] {
            let e = validate_bridge(bad).unwrap_err();
            assert!(matches!(e, FwError::InvalidBridgeName { .. }), "{bad:?}");
        }
        let e = validate_bridge("br x").unwrap_err().to_string();
        assert_eq!(e, "invalid bridge name \"br x\": it contains whitespace");
        // scripts refuse them too
        assert!(add_script("berth", &net("a\"b", false, true, true)).is_err());
        assert!(remove_script("berth", "").is_err());
    }

    #[test]
    fn table_names() {
        for ok in ["berth", "berth2", "Berth_test-1", "b"] {
            validate_table(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "1berth",
            "_b",
            "-b",
            "b b",
            "b;flush ruleset",
            "b.c",
            "b\"",
            &"b".repeat(65),
        ] {
            assert!(
                matches!(validate_table(bad), Err(FwError::InvalidTableName { .. })),
                "{bad:?}"
            );
        }
        assert!(init_script("bad name").is_err());
        assert!(teardown_script("").is_err());
    }

    #[test]
    fn parse_listing() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
            {"set": {"family": "inet", "name": "bridges", "table": "berth", "type": "ifname", "handle": 1, "elem": ["br-a", "docker0"]}}]}"#;
        assert_eq!(
            parse_set_elements(json, "berth", "bridges").unwrap(),
            vec!["br-a", "docker0"]
        );
        assert!(parse_set_elements(json, "other", "bridges").is_err());
        let empty = r#"{"nftables": [{"metainfo": {}}, {"set": {"family": "inet", "name": "bridges", "table": "berth", "type": "ifname", "handle": 1}}]}"#;
        assert_eq!(
            parse_set_elements(empty, "berth", "bridges").unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_set_elements("not json", "berth", "bridges").is_err());
        assert!(parse_set_elements("{}", "berth", "bridges").is_err());

        let tables = r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "berth", "handle": 3}}, {"table": {"family": "ip", "name": "x", "handle": 4}}]}"#;
        assert!(parse_has_table(tables, "berth").unwrap());
        assert!(!parse_has_table(tables, "x").unwrap());
        assert!(!parse_has_table(r#"{"nftables": [{"metainfo": {}}]}"#, "berth").unwrap());
    }
}
