//! A compose file as a tree of nodes that remember where they were written (file, line,
//! column), built from saphyr-parser's events. Positions are what lets every error, an unknown
//! key above all, name the file and line it comes from; saphyr-parser gives a span for every
//! event, which serde-based YAML crates do not expose per node.
//!
//! Scalars keep their text and whether they were quoted: their type (null, bool, number,
//! string) is decided where it matters, the way PyYAML (docker-compose 1.29) decides it.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where a node was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar: its text and whether it was written plain (unquoted, untagged).
    Scalar(String, bool),
    Seq(Vec<Node>),
    /// Entries in file order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub v: Value,
    pub at: Mark,
}

/// A scalar's type, resolved as PyYAML's YAML 1.1 resolver does for plain scalars (less its
/// sexagesimal numbers: `80:80` stays the string a compose user means).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
}

impl Scalar {
    pub fn resolve(text: &str, plain: bool) -> Scalar {
        if !plain {
            return Scalar::Str(text.to_string());
        }
        match text {
            "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
                return Scalar::Bool(true)
            }
            "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
                return Scalar::Bool(false)
            }
            _ => {}
        }
        if let Some(i) = parse_int(text) {
            return Scalar::Int(i);
        }
        if is_float(text) {
            return Scalar::Float(text.to_string());
        }
        Scalar::Str(text.to_string())
    }

    /// The value as Python's `str()` writes it (what docker-compose puts into `KEY=value`).
    pub fn python_str(&self) -> String {
        match self {
            Scalar::Null => "None".into(),
            Scalar::Bool(b) => if *b { "True" } else { "False" }.into(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.clone(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

fn parse_int(t: &str) -> Option<i64> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = |s: &str, radix: u32| -> Option<i64> {
        let s: String = s.chars().filter(|&c| c != '_').collect();
        if s.is_empty() {
            return None;
        }
        i64::from_str_radix(&s, radix).ok()
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        digits(h, 16)?
    } else if let Some(b) = body.strip_prefix("0b") {
        digits(b, 2)?
    } else if body.len() > 1 && body.starts_with('0') {
        digits(&body[1..], 8)?
    } else if body.starts_with(|c: char| c.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        digits(body, 10)?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn is_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(t, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let Some((int, frac)) = mantissa.split_once('.') else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac) && exp_ok
}

impl Node {
    /// The resolved scalar, or None for a sequence or mapping.
    pub fn scalar(&self) -> Option<Scalar> {
        match &self.v {
            Value::Scalar(t, plain) => Some(Scalar::resolve(t, *plain)),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.scalar() == Some(Scalar::Null)
    }

    /// The text of a scalar key or value.
    pub fn text(&self) -> Option<&str> {
        match &self.v {
            Value::Scalar(t, _) => Some(t),
            _ => None,
        }
    }

    /// What kind of node this is, for "expected a mapping, got a sequence" messages.
    pub fn kind(&self) -> &'static str {
        match &self.v {
            Value::Scalar(..) => match self.scalar() {
                Some(Scalar::Null) => "null",
                Some(Scalar::Bool(_)) => "a boolean",
                Some(Scalar::Int(_)) | Some(Scalar::Float(_)) => "a number",
                _ => "a string",
            },
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Nodes a file may hold once its aliases are expanded: aliases are copied, so ten nested
/// aliases of ten items each (a "billion laughs" file) would otherwise fill the memory. Real
/// compose files hold a few thousand.
pub const MAX_NODES: usize = 100_000;
/// Nesting a file may have: the tree is cloned and dropped recursively.
pub const MAX_DEPTH: usize = 128;

/// Parses one file (`name` is how errors refer to it). An empty file is an empty mapping.
pub fn parse(name: &str, text: &str) -> Result<Node, String> {
    let file: Arc<str> = Arc::from(name);
    let mark = |s: &Span| Mark {
        file: file.clone(),
        line: s.start.line(),
        col: s.start.col() + 1,
    };
    let mut b = Builder::default();
    let mut docs = 0;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            format!(
                "{name}:{}:{}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        let at = mark(&span);
        match ev {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(format!(
                        "{at}: a compose file holds one YAML document, this is a second one"
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let plain = match tag.as_deref() {
                    None => plain,
                    Some(t)
                        if matches!(t.handle.as_str(), "!!" | "tag:yaml.org,2002:")
                            && t.suffix == "str" =>
                    {
                        false
                    }
                    Some(t) => {
                        return Err(format!(
                            "{at}: YAML tag {}{} is not supported",
                            t.handle, t.suffix
                        ))
                    }
                };
                b.push(
                    Node {
                        v: Value::Scalar(text.into_owned(), plain),
                        at,
                    },
                    anchor,
                    1,
                )?;
            }
            Event::SequenceStart(anchor, _) => b.open(Value::Seq(Vec::new()), at, anchor)?,
            Event::MappingStart(anchor, _) => b.open(Value::Map(Vec::new()), at, anchor)?,
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
            Event::Alias(id) => {
                let (n, size) = b.anchors.get(&id).ok_or_else(|| {
                    format!("{at}: alias to an anchor that is not defined before it")
                })?;
                // counted before it is copied: the copy is what could not fit
                if b.nodes + size > MAX_NODES {
                    return Err(too_many(&at));
                }
                let (n, size) = (n.clone(), *size);
                b.push(n, 0, size)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(b.root.unwrap_or(Node {
        v: Value::Map(Vec::new()),
        at: Mark {
            file,
            line: 1,
            col: 1,
        },
    }))
}

fn too_many(at: &Mark) -> String {
    format!("{at}: the file holds more than {MAX_NODES} values once its aliases are expanded")
}

/// An open collection: the node, its anchor, a mapping's pending key (waiting for its value),
/// and how many nodes it holds so far.
struct Open {
    node: Node,
    anchor: usize,
    key: Option<Node>,
    size: usize,
}

/// Open collections, innermost last. Anchored nodes are kept with their size (in nodes).
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    /// Nodes in the tree so far, aliases expanded.
    nodes: usize,
}

impl Builder {
    fn open(&mut self, v: Value, at: Mark, anchor: usize) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("{at}: values nest deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(Open {
            node: Node { v, at },
            anchor,
            key: None,
            size: 0,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let Some(Open {
            node: mut n,
            anchor,
            size,
            ..
        }) = self.stack.pop()
        else {
            return Err("unbalanced YAML events".into());
        };
        if let Value::Map(entries) = &mut n.v {
            apply_merge_keys(entries)?;
        }
        // its children were counted as they came
        self.nodes -= size;
        self.push(n, anchor, size + 1)
    }

    /// Adds `n`, a tree of `size` nodes, to the open collection (or makes it the root).
    fn push(&mut self, n: Node, anchor: usize, size: usize) -> Result<(), String> {
        self.nodes += size;
        if self.nodes > MAX_NODES {
            return Err(too_many(&n.at));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (n.clone(), size));
        }
        let Some(Open {
            node: parent,
            key,
            size: parent_size,
            ..
        }) = self.stack.last_mut()
        else {
            self.root = Some(n);
            return Ok(());
        };
        *parent_size += size;
        match &mut parent.v {
            Value::Seq(items) => items.push(n),
            Value::Map(entries) => match key.take() {
                None => {
                    if n.text().is_none() {
                        return Err(format!("{}: a mapping key must be a scalar", n.at));
                    }
                    let k = n.text().unwrap_or_default();
                    if k != "<<" && entries.iter().any(|(e, _)| e.text() == Some(k)) {
                        return Err(format!("{}: duplicate key {k:?}", n.at));
                    }
                    *key = Some(n);
                }
                Some(k) => entries.push((k, n)),
            },
            // never opened as a collection
            Value::Scalar(..) => return Err(format!("{}: a scalar holds no values", n.at)),
        }
        Ok(())
    }
}

/// YAML's `<<: *anchor` (or a list of anchors): the merged mappings' entries that the mapping
/// does not set itself, as compose files use them to share settings between services.
fn apply_merge_keys(entries: &mut Vec<(Node, Node)>) -> Result<(), String> {
    let (merges, mut own): (Vec<_>, Vec<_>) = std::mem::take(entries)
        .into_iter()
        .partition(|(k, _)| k.v == Value::Scalar("<<".into(), true));
    for (k, v) in merges {
        let sources = match v.v {
            Value::Map(_) => vec![v],
            Value::Seq(items) => items,
            _ => return Err(format!("{}: `<<` merges a mapping or a list of them", k.at)),
        };
        for s in sources {
            let Value::Map(src) = s.v else {
                return Err(format!("{}: `<<` merges a mapping or a list of them", s.at));
            };
            for (sk, sv) in src {
                if !own.iter().any(|(ok, _)| ok.text() == sk.text()) {
                    own.push((sk, sv));
                }
            }
        }
    }
    *entries = own;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_billion_laughs_is_refused_before_it_is_built() {
        let mut f = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            f.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        // six levels (a million values) were built before, ten would fill the memory
        let six: String = f.lines().take(7).map(|l| format!("{l}\n")).collect();
        assert!(parse("six.yml", &six).is_err());
        let t = std::time::Instant::now();
        let e = parse("laughs.yml", &f).unwrap_err();
        assert!(e.contains("aliases are expanded"), "{e}");
        assert!(e.starts_with("laughs.yml:"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        // a few levels stay fine, with every copy in place
        let small: String = f.lines().take(3).map(|l| format!("{l}\n")).collect();
        let n = parse("ok.yml", &small).unwrap();
        let Value::Map(entries) = &n.v else { panic!() };
        let Value::Seq(a2) = &entries[2].1.v else {
            panic!()
        };
        assert_eq!(a2.len(), 10);
    }

    #[test]
    fn deep_nesting_is_refused() {
        // saphyr-parser stops at some depth of its own; ours comes first
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse("deep.yml", &deep).unwrap_err();
        assert!(e.contains("nest deeper"), "{e}");
        let deeper = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse("deeper.yml", &deeper).is_err());
        let fine = format!("x: {}1{}", "[".repeat(100), "]".repeat(100));
        parse("fine.yml", &fine).unwrap();
    }
}
