//! Printing JSON values the way Go's `fmt` prints the Docker structs they
//! were decoded from, plus Go's `encoding/json` output for `{{json}}`.
//!
//! JSON loses the difference between a Go struct (`{a b}`, fields in
//! declaration order) and a map (`map[k:v]`, keys sorted), so `GoFmt`
//! decides by field name and by a table of known struct layouts.

use serde_json::{Map, Value};

/// The zero value a struct field prints as when JSON omitted it
/// (`omitempty`) or sent `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Str,
    Map,
    Slice,
    Bool,
    Int,
    Nil,
}

impl Zero {
    fn text(self) -> &'static str {
        match self {
            Zero::Str => "",
            Zero::Map => "map[]",
            Zero::Slice => "[]",
            Zero::Bool => "false",
            Zero::Int => "0",
            Zero::Nil => "<nil>",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<(String, Zero)>,
}

/// Decides how objects print. See `is_map` for the rules.
#[derive(Debug, Clone, Default)]
pub struct GoFmt {
    structs: Vec<StructDef>,
    map_fields: Vec<String>,
    slice_fields: Vec<String>,
}

impl GoFmt {
    /// No known structs or map fields: only the key-case heuristic applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Layouts and map-valued fields of Docker's network API types.
    pub fn docker() -> Self {
        use Zero::*;
        let mut g = GoFmt::new();
        g.register_struct(
            "IPAMConfig",
            &[
                ("Subnet", Str),
                ("IPRange", Str),
                ("Gateway", Str),
                ("AuxiliaryAddresses", Map),
            ],
        );
        g.register_struct(
            "IPAM",
            &[("Driver", Str), ("Options", Map), ("Config", Slice)],
        );
        g.register_struct(
            "EndpointResource",
            &[
                ("Name", Str),
                ("EndpointID", Str),
                ("MacAddress", Str),
                ("IPv4Address", Str),
                ("IPv6Address", Str),
            ],
        );
        g.register_struct("ConfigReference", &[("Network", Str)]);
        g.register_struct("PeerInfo", &[("Name", Str), ("IP", Str)]);
        for f in [
            "Labels",
            "Options",
            "Containers",
            "AuxiliaryAddresses",
            "Ports",
            "Networks",
            "DriverOpts",
            "Services",
        ] {
            g.map_fields.push(f.into());
        }
        for f in ["Peers", "Aliases", "DNSNames", "Links", "Args"] {
            g.slice_fields.push(f.into());
        }
        g
    }

    /// Objects whose key set is a subset of `fields` print as this struct:
    /// every field, in this order, with absent ones as their zero value.
    pub fn register_struct(&mut self, name: &str, fields: &[(&str, Zero)]) {
        let fields = fields.iter().map(|(f, z)| (f.to_string(), *z)).collect();
        self.structs.push(StructDef {
            name: name.into(),
            fields,
        });
    }

    /// A field whose value is always a Go map (and prints `map[]` if null).
    pub fn add_map_field(&mut self, name: &str) {
        self.map_fields.push(name.into());
    }

    /// A field whose value is always a Go slice (and prints `[]` if null).
    pub fn add_slice_field(&mut self, name: &str) {
        self.slice_fields.push(name.into());
    }

    /// The registered struct this object fits; the smallest one wins when
    /// several do, since it is the tightest description of the keys.
    fn struct_for(&self, o: &Map<String, Value>) -> Option<&StructDef> {
        if o.is_empty() {
            return None;
        }
        self.structs
            .iter()
            .filter(|d| o.keys().all(|k| d.fields.iter().any(|(f, _)| f == k)))
            .min_by_key(|d| d.fields.len())
    }

    /// Map if: read from a known map field; or empty (Docker has no empty
    /// structs); or some key doesn't look like an exported Go field name.
    /// Otherwise a struct.
    pub fn is_map(&self, o: &Map<String, Value>, key: Option<&str>) -> bool {
        if key.is_some_and(|k| self.map_fields.iter().any(|f| f == k)) || o.is_empty() {
            return true;
        }
        if self.struct_for(o).is_some() {
            return false;
        }
        !o.keys()
            .all(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
    }

    fn null_text(&self, key: Option<&str>) -> &'static str {
        match key {
            Some(k) if self.map_fields.iter().any(|f| f == k) => "map[]",
            Some(k) if self.slice_fields.iter().any(|f| f == k) => "[]",
            _ => "<nil>",
        }
    }
}

/// Go's `fmt.Sprint(v)` / `%v` for the struct `v` came from. `key` is the
/// field name it was read from, if any.
pub fn sprint_value(g: &GoFmt, v: &Value, key: Option<&str>) -> String {
    let mut out = String::new();
    write_value(g, v, key, &mut out);
    out
}

fn write_value(g: &GoFmt, v: &Value, key: Option<&str>, out: &mut String) {
    match v {
        Value::Null => out.push_str(g.null_text(key)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(g, x, None, out);
            }
            out.push(']');
        }
        Value::Object(o) if g.is_map(o, key) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(g, &o[k], None, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            match g.struct_for(o) {
                Some(def) => {
                    for (i, (f, zero)) in def.fields.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        match o.get(f) {
                            None | Some(Value::Null) => out.push_str(zero.text()),
                            Some(x) => write_value(g, x, Some(f), out),
                        }
                    }
                }
                None => {
                    for (i, (f, x)) in o.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        write_value(g, x, Some(f), out);
                    }
                }
            }
            out.push('}');
        }
    }
}

fn number_v(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => float_g(f, None),
        _ => n.to_string(),
    }
}

/// Go's `json.Marshal` output (compact). Maps get sorted keys as Go sorts
/// them; structs keep their order. `escape_html` is Marshal's default;
/// docker's `json` template function turns it off.
pub fn to_json(g: &GoFmt, v: &Value, key: Option<&str>, escape_html: bool) -> String {
    let mut out = String::new();
    write_json(g, v, key, escape_html, &mut out);
    out
}

fn write_json(g: &GoFmt, v: &Value, key: Option<&str>, html: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => json_str(s, html, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(g, x, None, html, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            let map = g.is_map(o, key);
            if map {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k, html, out);
                out.push(':');
                write_json(g, &o[k], if map { None } else { Some(k) }, html, out);
            }
            out.push('}');
        }
    }
}

fn json_str(s: &str, html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        // Go writes e-7, not e-07, in JSON.
        let (digits, exp) = shortest_digits(f);
        let s = fmt_e(f < 0.0, &digits, exp, digits.len() - 1);
        return s.replace("e-0", "e-").replace("e+0", "e+");
    }
    format!("{f}")
}

/// Shortest round-trip decimal digits of |f| and its decimal exponent
/// (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (m, e) = s.split_once('e').unwrap();
    (m.replace('.', ""), e.parse().unwrap())
}

/// Digits of |f| rounded to `n` significant digits, trailing zeros cut.
pub(super) fn rounded_digits(f: f64, n: usize) -> (String, i32) {
    let s = format!("{:.*e}", n.max(1) - 1, f.abs());
    let (m, e) = s.split_once('e').unwrap();
    let mut d = m.replace('.', "");
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    (d, e.parse().unwrap())
}

pub(super) fn fmt_e(neg: bool, digits: &str, exp: i32, prec: usize) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    let d: Vec<char> = digits.chars().collect();
    s.push(d[0]);
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(*d.get(i).unwrap_or(&'0'));
        }
    }
    let e = if digits == "0" { 0 } else { exp };
    s.push_str(&format!("e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()));
    s
}

fn fmt_f(neg: bool, digits: &str, dp: i32, prec: usize) -> String {
    let d: Vec<char> = digits.chars().collect();
    let digit = |i: i32| {
        if i >= 0 && (i as usize) < d.len() {
            d[i as usize]
        } else {
            '0'
        }
    };
    let mut s = String::from(if neg { "-" } else { "" });
    if dp > 0 {
        (0..dp).for_each(|i| s.push(digit(i)));
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        (0..prec as i32).for_each(|i| s.push(digit(dp + i)));
    }
    s
}

/// Go's `%g` (`%v` for floats): shortest digits when `prec` is None,
/// exponent form when the exponent is < -4 or ≥ the precision (6 when
/// shortest).
pub fn float_g(f: f64, prec: Option<usize>) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let (digits, exp) = match prec {
        None => shortest_digits(f),
        Some(p) => rounded_digits(f, p.max(1)),
    };
    let nd = digits.len();
    let dp = exp + 1;
    let mut p = prec.map(|p| p.max(1)).unwrap_or(nd);
    let mut eprec = p;
    if eprec > nd && nd as i32 >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    if exp < -4 || exp >= eprec as i32 {
        p = p.min(nd);
        return fmt_e(f < 0.0, &digits, exp, p - 1);
    }
    if p as i32 > dp {
        p = nd;
    }
    fmt_f(f < 0.0, &digits, dp, (p as i32 - dp).max(0) as usize)
}

/// strconv.Quote.
pub fn go_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\x0b' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => o.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
