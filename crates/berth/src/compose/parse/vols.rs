//! `volumes:`, top level (named volumes) and per service (short `src:dst:mode` and long
//! syntax), checked key by key like the rest of the file.

use super::super::model::{SvcVolume, VolumeDef};
use super::Ctx;
use crate::compose::yaml::{Node, Value};

const TOP_KEYS: &[&str] = &["driver", "driver_opts", "labels", "external", "name"];
const LONG_KEYS: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "bind",
    "volume",
    "tmpfs",
];
const LONG_KEYS_UNSUPPORTED: &[&str] = &["consistency"];

pub(super) fn top(cx: &mut Ctx, name: &str, n: &Node) -> Option<VolumeDef> {
    let path = format!("volumes.{name}");
    let entries = cx.map(n, &path)?;
    cx.check_keys(entries, &path, TOP_KEYS, &[]);
    let mut d = VolumeDef::default();
    for (k, v) in entries {
        let key = k.text().unwrap_or_default();
        let p = format!("{path}.{key}");
        match key {
            "driver" => d.driver = cx.string(v, &p),
            "driver_opts" => d.driver_opts = cx.string_map(v, &p),
            "labels" => d.labels = cx.string_map(v, &p),
            "name" => d.name = cx.string(v, &p),
            "external" => {
                let (ext, name) = super::external(cx, v, &p);
                d.external = ext;
                if name.is_some() {
                    d.name = name;
                }
            }
            _ => {}
        }
    }
    if d.external {
        for (k, _) in entries {
            let key = k.text().unwrap_or_default();
            if !["external", "name"].contains(&key) {
                cx.err(k, &format!("{path}.{key}"), "an external volume is configured where it was created: only `name` goes with `external`");
            }
        }
    }
    Some(d)
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

/// `[src:]dst[:mode]`.
pub fn short(spec: &str) -> Result<SvcVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, None),
        [s, d] => (Some(*s), *d, None),
        [s, d, m] => (Some(*s), *d, Some(*m)),
        _ => return Err(format!("invalid volume specification: '{spec}'")),
    };
    if dst.is_empty() || src.is_some_and(str::is_empty) || !dst.starts_with('/') {
        return Err(format!("invalid volume specification: '{spec}'"));
    }
    let kind = match src {
        Some(s) if is_path(s) => "bind",
        _ => "volume",
    };
    Ok(SvcVolume {
        kind: kind.into(),
        source: src.map(str::to_string),
        target: dst.into(),
        read_only: mode.is_some_and(|m| m.split(',').any(|o| o == "ro")),
        mode: mode.map(str::to_string),
        ..Default::default()
    })
}

fn long(cx: &mut Ctx, n: &Node, path: &str) -> Option<SvcVolume> {
    let entries = cx.map(n, path)?;
    cx.check_keys(entries, path, LONG_KEYS, LONG_KEYS_UNSUPPORTED);
    let mut v = SvcVolume {
        long: true,
        ..Default::default()
    };
    for (k, val) in entries {
        let key = k.text().unwrap_or_default();
        let p = format!("{path}.{key}");
        match key {
            "type" => v.kind = cx.string(val, &p).unwrap_or_default(),
            "source" => v.source = cx.string(val, &p),
            "target" => v.target = cx.string(val, &p).unwrap_or_default(),
            "read_only" => v.read_only = cx.boolean(val, &p).unwrap_or(false),
            "bind" => {
                for (bk, bv) in cx.map(val, &p).unwrap_or_default() {
                    let bkey = bk.text().unwrap_or_default();
                    match bkey {
                        "propagation" => v.propagation = cx.string(bv, &format!("{p}.propagation")),
                        _ => cx.err(
                            bk,
                            &format!("{p}.{bkey}"),
                            "is not supported by berth compose",
                        ),
                    }
                }
            }
            "volume" => {
                for (vk, vv) in cx.map(val, &p).unwrap_or_default() {
                    let vkey = vk.text().unwrap_or_default();
                    match vkey {
                        "nocopy" => {
                            v.nocopy = cx.boolean(vv, &format!("{p}.nocopy")).unwrap_or(false)
                        }
                        _ => cx.err(
                            vk,
                            &format!("{p}.{vkey}"),
                            "is not supported by berth compose",
                        ),
                    }
                }
            }
            "tmpfs" => {
                for (tk, tv) in cx.map(val, &p).unwrap_or_default() {
                    let tkey = tk.text().unwrap_or_default();
                    match (tkey, tv.text().and_then(|t| t.parse::<i64>().ok())) {
                        ("size", Some(n)) if n >= 0 => v.tmpfs_size = Some(n),
                        ("size", _) => {
                            cx.err(tv, &format!("{p}.size"), "must be a number of bytes")
                        }
                        _ => cx.err(
                            tk,
                            &format!("{p}.{tkey}"),
                            "is not supported by berth compose",
                        ),
                    }
                }
            }
            _ => {}
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&v.kind.as_str()) {
        cx.err(
            n,
            &format!("{path}.type"),
            "must be one of bind, volume, tmpfs",
        );
        return None;
    }
    if !v.target.starts_with('/') {
        cx.err(n, &format!("{path}.target"), "must be an absolute path");
        return None;
    }
    if v.kind == "bind" && v.source.is_none() {
        cx.err(n, &format!("{path}.source"), "a bind mount needs a source");
        return None;
    }
    Some(v)
}

pub(super) fn service(cx: &mut Ctx, n: &Node, path: &str) -> Option<Vec<SvcVolume>> {
    let Value::Seq(items) = &n.v else {
        cx.err(n, path, format!("expected a list, got {}", n.kind()));
        return None;
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match &it.v {
            Value::Map(_) => out.extend(long(cx, it, &p)),
            _ => match cx.string(it, &p).map(|s| short(&s)) {
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) => cx.err(it, &p, e),
                None => {}
            },
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax() {
        let v = short("data:/d:ro").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_deref(), v.read_only),
            ("volume", Some("data"), true)
        );
        let v = short("./host:/h").unwrap();
        assert_eq!(v.kind, "bind");
        let v = short("/anon").unwrap();
        assert_eq!((v.kind.as_str(), v.source), ("volume", None));
        assert!(short("a:b").is_err());
        assert!(short("a:/b:c:d").is_err());
    }
}
