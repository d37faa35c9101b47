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
                )?;
            }
            Event::SequenceStart(anchor, _) => b.open(Value::Seq(Vec::new()), at, anchor),
            Event::MappingStart(anchor, _) => b.open(Value::Map(Vec::new()), at, anchor),
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
            Event::Alias(id) => {
                let n = b.anchors.get(&id).cloned().ok_or_else(|| {
                    format!("{at}: alias to an anchor that is not defined before it")
                })?;
                b.push(n, 0)?;
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

/// Open collections, innermost last; a mapping's pending key waits for its value.
#[derive(Default)]
struct Builder {
    stack: Vec<(Node, usize, Option<Node>)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn open(&mut self, v: Value, at: Mark, anchor: usize) {
        self.stack.push((Node { v, at }, anchor, None));
    }

    fn close(&mut self) -> Result<(), String> {
        let (mut n, anchor, _) = self.stack.pop().expect("balanced events");
        if let Value::Map(entries) = &mut n.v {
            apply_merge_keys(entries)?;
        }
        self.push(n, anchor)
    }

    fn push(&mut self, n: Node, anchor: usize) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, n.clone());
        }
        let Some((parent, _, key)) = self.stack.last_mut() else {
            self.root = Some(n);
            return Ok(());
        };
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
            Value::Scalar(..) => unreachable!("scalars hold no children"),
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
