//! Template functions: Go's builtins plus the ones docker's CLI registers
//! (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`).

use serde_json::Value;

use super::exec::{go_type, truth, State, Val};
use super::gofmt;
use super::template::Arg;

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call", "json", "split", "join", "title", "lower",
    "upper", "pad", "truncate",
];

/// Docker's HeaderFunctions replace these with identity functions.
const HEADER_IDENTITY: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "truncate",
];

pub(crate) fn is_defined(name: &str) -> bool {
    FUNCS.contains(&name)
}

fn want_str(v: &Val) -> Result<&str, String> {
    match &v.v {
        Some(Value::String(s)) => Ok(s),
        None => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            go_type(other)
        )),
    }
}

fn want_int(v: &Val) -> Result<i64, String> {
    match &v.v {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap()),
        None => Err("invalid value; expected int".into()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            go_type(other)
        )),
    }
}

fn arity(name: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {got}"
        ))
    }
}

fn at_least(name: &str, got: usize, want: usize) -> Result<(), String> {
    if got >= want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {want} got {got}"
        ))
    }
}

fn s(x: impl Into<String>) -> Val {
    Val::of(Value::String(x.into()))
}

pub(crate) fn call(
    st: &mut State,
    dot: &Val,
    name: &str,
    at: &Arg,
    args: &[Arg],
    fin: Option<Val>,
) -> Result<Val, String> {
    let fail = |st: &State, msg: String| st.err_at(at.pos, &at.text, &msg);
    // and/or short-circuit, so they see the unevaluated arguments.
    if name == "and" || name == "or" {
        let n = args.len() + fin.is_some() as usize;
        at_least(name, n, 1).map_err(|e| fail(st, e))?;
        let mut last = Val::none();
        for a in args {
            last = st.eval_arg(dot, a)?;
            if truth(&last) != (name == "and") {
                return Ok(last);
            }
        }
        return Ok(fin.unwrap_or(last));
    }
    let mut vals = Vec::with_capacity(args.len() + 1);
    for a in args {
        vals.push(st.eval_arg(dot, a)?);
    }
    vals.extend(fin);
    let header = st.opts.header && HEADER_IDENTITY.contains(&name);
    let r = if header {
        header_identity(name, &vals)
    } else {
        apply(st, name, &vals)
    };
    r.map_err(|e| fail(st, e))
}

fn header_identity(name: &str, v: &[Val]) -> Result<Val, String> {
    let want = match name {
        "split" | "join" | "truncate" => 2,
        _ => 1,
    };
    arity(name, v.len(), want)?;
    Ok(s(want_str(&v[0])?))
}

fn apply(st: &State, name: &str, v: &[Val]) -> Result<Val, String> {
    let g = st.opts.gofmt;
    let called = |e: String| format!("error calling {name}: {e}");
    Ok(match name {
        "not" => {
            arity(name, v.len(), 1)?;
            Val::of(Value::Bool(!truth(&v[0])))
        }
        "len" => {
            arity(name, v.len(), 1)?;
            let n = match &v[0].v {
                Some(Value::String(x)) => x.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                None | Some(Value::Null) => return Err(called("len of nil pointer".into())),
                other => return Err(called(format!("len of type {}", go_type(other)))),
            };
            Val::of(Value::from(n))
        }
        "index" => {
            at_least(name, v.len(), 1)?;
            let mut cur = v[0].clone();
            for ix in &v[1..] {
                cur = index1(&cur, ix).map_err(called)?;
            }
            cur
        }
        "slice" => {
            at_least(name, v.len(), 1)?;
            slice(&v[0], &v[1..]).map_err(called)?
        }
        "print" => s(sprint(g, v)),
        "println" => {
            let parts: Vec<String> = v
                .iter()
                .map(|x| gofmt::sprint_value(g, &x.or_null(), x.key.as_deref()))
                .collect();
            s(parts.join(" ") + "\n")
        }
        "printf" => {
            at_least(name, v.len(), 1)?;
            let f = want_str(&v[0])?;
            let rest: Vec<Value> = v[1..].iter().map(Val::or_null).collect();
            s(super::printf::sprintf(g, f, &rest))
        }
        "eq" => {
            at_least(name, v.len(), 1)?;
            if v.len() < 2 {
                return Err(called("missing argument for comparison".into()));
            }
            let mut any = false;
            for b in &v[1..] {
                any |= compare(&v[0], b).map_err(called)? == Some(std::cmp::Ordering::Equal);
            }
            Val::of(Value::Bool(any))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, v.len(), 2)?;
            use std::cmp::Ordering::*;
            let o = compare(&v[0], &v[1]).map_err(called)?;
            if name != "ne" && (o.is_none() || !ordered(&v[0])) {
                return Err(called("invalid type for comparison".into()));
            }
            let r = match name {
                "ne" => o != Some(Equal),
                "lt" => o == Some(Less),
                "le" => o != Some(Greater),
                "gt" => o == Some(Greater),
                _ => o != Some(Less),
            };
            Val::of(Value::Bool(r))
        }
        "html" => s(html_escape(&sprint(g, v))),
        "js" => s(js_escape(&sprint(g, v))),
        "urlquery" => s(query_escape(&sprint(g, v))),
        "call" => return Err(called("call is not supported".into())),
        "json" => {
            arity(name, v.len(), 1)?;
            // docker's json func sets SetEscapeHTML(false).
            s(gofmt::to_json(
                g,
                &v[0].or_null(),
                v[0].key.as_deref(),
                false,
            ))
        }
        "split" => {
            arity(name, v.len(), 2)?;
            let (x, sep) = (want_str(&v[0])?, want_str(&v[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                x.chars().map(|c| Value::from(c.to_string())).collect()
            } else {
                x.split(sep).map(Value::from).collect()
            };
            Val::of(Value::Array(parts))
        }
        "join" => {
            arity(name, v.len(), 2)?;
            let sep = want_str(&v[1])?;
            let items: Vec<String> = match &v[0].v {
                Some(Value::Array(a)) => {
                    a.iter().map(|x| gofmt::sprint_value(g, x, None)).collect()
                }
                None | Some(Value::Null) => vec![],
                other => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        go_type(other)
                    ))
                }
            };
            s(items.join(sep))
        }
        "title" => {
            arity(name, v.len(), 1)?;
            s(title(want_str(&v[0])?))
        }
        "lower" | "upper" => {
            arity(name, v.len(), 1)?;
            let x = want_str(&v[0])?;
            s(if name == "lower" {
                x.to_lowercase()
            } else {
                x.to_uppercase()
            })
        }
        "pad" => {
            arity(name, v.len(), 3)?;
            let x = want_str(&v[0])?;
            let (pre, suf) = (want_int(&v[1])?, want_int(&v[2])?);
            if x.is_empty() {
                s("")
            } else {
                let sp = |n: i64| " ".repeat(n.max(0) as usize);
                s(format!("{}{x}{}", sp(pre), sp(suf)))
            }
        }
        "truncate" => {
            arity(name, v.len(), 2)?;
            let x = want_str(&v[0])?;
            let n = want_int(&v[1])?;
            if n < 0 {
                return Err(called(format!("slice bounds out of range [:{n}]")));
            }
            let mut cut = (n as usize).min(x.len());
            while !x.is_char_boundary(cut) {
                cut -= 1;
            }
            s(&x[..cut])
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

/// fmt.Sprint: a space goes between operands when neither is a string.
fn sprint(g: &gofmt::GoFmt, v: &[Val]) -> String {
    let mut out = String::new();
    for (i, x) in v.iter().enumerate() {
        let is_str = |y: &Val| matches!(y.v, Some(Value::String(_)));
        if i > 0 && !is_str(x) && !is_str(&v[i - 1]) {
            out.push(' ');
        }
        out.push_str(&gofmt::sprint_value(g, &x.or_null(), x.key.as_deref()));
    }
    out
}

fn index1(cur: &Val, ix: &Val) -> Result<Val, String> {
    match (&cur.v, &ix.v) {
        (Some(Value::Array(a)), Some(Value::Number(n))) => {
            let i = n
                .as_i64()
                .ok_or("cannot index slice/array with type float64")?;
            match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                Some(x) => Ok(Val::of(x.clone())),
                None => Err(format!("index out of range: {i}")),
            }
        }
        (Some(Value::Object(o)), Some(Value::String(k))) => Ok(match o.get(k) {
            Some(x) => Val {
                v: Some(x.clone()),
                key: None,
            },
            // The zero value of the map's element type: docker's maps are
            // mostly map[string]string, where that is "".
            None if o.values().all(Value::is_string) => Val::of(Value::from("")),
            None => Val::of(Value::Null),
        }),
        (Some(Value::Object(_)), other) => Err(format!(
            "value has type {}; should be string",
            go_type(other)
        )),
        (Some(Value::Array(_)), other) => Err(format!(
            "cannot index slice/array with type {}",
            go_type(other)
        )),
        (Some(Value::String(x)), Some(Value::Number(n))) => {
            let i = n.as_i64().unwrap_or(-1);
            match usize::try_from(i).ok().and_then(|i| x.as_bytes().get(i)) {
                Some(b) => Ok(Val::of(Value::from(*b))),
                None => Err(format!("index out of range: {i}")),
            }
        }
        (None | Some(Value::Null), _) => Err("index of untyped nil".into()),
        (other, _) => Err(format!("can't index item of type {}", go_type(other))),
    }
}

fn slice(x: &Val, idx: &[Val]) -> Result<Val, String> {
    let len = match &x.v {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(a)) => a.len(),
        other => return Err(format!("can't slice item of type {}", go_type(other))),
    };
    if idx.len() > 2 {
        return Err("too many slice indexes".into());
    }
    let mut b = [0usize, len];
    for (i, v) in idx.iter().enumerate() {
        let n = want_int(v)?;
        if n < 0 || n as usize > len {
            return Err(format!("index out of range: {n}"));
        }
        b[i] = n as usize;
    }
    if b[0] > b[1] {
        return Err(format!("invalid slice index: {} > {}", b[0], b[1]));
    }
    Ok(match &x.v {
        Some(Value::String(s)) => Val::of(Value::from(s.get(b[0]..b[1]).unwrap_or(""))),
        Some(Value::Array(a)) => Val::of(Value::Array(a[b[0]..b[1]].to_vec())),
        _ => unreachable!(),
    })
}

fn ordered(v: &Val) -> bool {
    matches!(v.v, Some(Value::Number(_)) | Some(Value::String(_)))
}

/// Go's eq/lt rules: basic kinds only; nil compared with anything is
/// simply unequal; numbers compare by value whatever their JSON form.
fn compare(a: &Val, b: &Val) -> Result<Option<std::cmp::Ordering>, String> {
    let (x, y) = (a.or_null(), b.or_null());
    Ok(match (&x, &y) {
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(p), Value::Bool(q)) => Some(p.cmp(q)),
        (Value::String(p), Value::String(q)) => Some(p.cmp(q)),
        (Value::Number(p), Value::Number(q)) => match (p.as_i64(), q.as_i64()) {
            (Some(i), Some(j)) => Some(i.cmp(&j)),
            _ => p.as_f64().partial_cmp(&q.as_f64()),
        },
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            return Err(format!("non-comparable type {}", go_type(&Some(x.clone()))))
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

/// strings.Title: upper-case letters that follow a separator.
fn title(x: &str) -> String {
    let mut prev_sep = true;
    x.chars()
        .map(|c| {
            let out = if prev_sep {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c
            };
            prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
            out
        })
        .collect()
}

fn html_escape(x: &str) -> String {
    let mut o = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\0' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn js_escape(x: &str) -> String {
    let mut o = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn query_escape(x: &str) -> String {
    let mut o = String::with_capacity(x.len());
    for b in x.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}
