//! `GET /images/json?filters=`: Docker's image filters (`dangling`, `reference`, `label`,
//! `before`, `since`).

use super::{Image, ImageStore};
use crate::{Error, Result};
use berth_api::Filters;

const ACCEPTED: &[&str] = &["dangling", "reference", "label", "before", "since"];

impl ImageStore {
    /// The images `filters` select, newest first. A `reference` filter also narrows each
    /// image's tags to the matching ones, as Docker does.
    pub fn list_filtered(&self, filters: &Filters) -> Result<Vec<Image>> {
        if let Some(k) = filters.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
        let dangling = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => None,
            Some(vals) => Some(
                vals.iter()
                    .map(|v| parse_bool("dangling", v))
                    .collect::<Result<Vec<bool>>>()?[0],
            ),
        };
        let created_of = |key: &str| -> Result<Option<i128>> {
            match filters.get(key).and_then(|v| v.first()) {
                Some(r) => Ok(Some(self.resolve(r)?.created_nanos())),
                None => Ok(None),
            }
        };
        let (before, since) = (created_of("before")?, created_of("since")?);
        let patterns = filters.get("reference");
        let labels = filters.get("label");

        let mut out = Vec::new();
        for mut img in self.list() {
            let t = img.created_nanos();
            if before.is_some_and(|b| t >= b) || since.is_some_and(|s| t <= s) {
                continue;
            }
            if let Some(labels) = labels {
                if !labels.iter().all(|l| has_label(&img, l)) {
                    continue;
                }
            }
            if let Some(patterns) = patterns {
                img.repo_tags
                    .retain(|t| patterns.iter().any(|p| reference_matches(p, t)));
                if img.repo_tags.is_empty() {
                    continue;
                }
            }
            match dangling {
                Some(true) if !img.repo_tags.is_empty() => continue,
                Some(false) if img.repo_tags.is_empty() => continue,
                _ => {}
            }
            out.push(img);
        }
        Ok(out)
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_lowercase().as_str() {
        "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        _ => Err(Error::invalid(format!("invalid filter '{key}={v}'"))),
    }
}

fn has_label(img: &Image, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => img.config.labels.get(k).is_some_and(|x| x == v),
        None => img.config.labels.contains_key(filter),
    }
}

/// Docker's `reference.FamiliarMatch`: the pattern against `name:tag`, then against `name`.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = match tag.rfind(':') {
        Some(i) if !tag[i..].contains('/') => &tag[..i],
        _ => tag,
    };
    glob(pattern.as_bytes(), tag.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
}

/// Go's `path.Match`: `*` and `?` never match `/`; `[...]` classes with ranges and `^`.
/// A malformed pattern matches nothing.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    break;
                }
            }
            false
        }
        Some(b'?') => !s.is_empty() && s[0] != b'/' && glob(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some((matched, used)) = class(&p[1..], s.first().copied()) else {
                return false;
            };
            matched && glob(&p[1 + used..], &s[1..])
        }
        Some(b'\\') => p.len() > 1 && s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
    }
}

/// Matches `c` against the class starting after `[`; returns whether it matched and how many
/// pattern bytes the class took (through `]`). `None`: malformed, or no character to match.
fn class(p: &[u8], c: Option<u8>) -> Option<(bool, usize)> {
    let c = c.filter(|c| *c != b'/')?;
    let mut i = 0;
    let negate = p.first() == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let (lo, next) = if lo == b'\\' {
            (*p.get(i + 1)?, i + 2)
        } else {
            (lo, i + 1)
        };
        let (hi, next) =
            if p.get(next) == Some(&b'-') && p.get(next + 1).is_some_and(|b| *b != b']') {
                let h = *p.get(next + 1)?;
                if h == b'\\' {
                    (*p.get(next + 2)?, next + 3)
                } else {
                    (h, next + 2)
                }
            } else {
                (lo, next)
            };
        if lo <= c && c <= hi {
            matched = true;
        }
        i = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        assert!(glob(b"busybox", b"busybox"));
        assert!(glob(b"busy*", b"busybox:latest"));
        assert!(!glob(b"*", b"me/app"));
        assert!(glob(b"*/*", b"me/app"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(glob(b"[a-c]usybox", b"busybox"));
        assert!(!glob(b"[^a-c]usybox", b"busybox"));
        assert!(!glob(b"[a-c", b"b"));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busy", "busybox:latest"));
        assert!(reference_matches(
            "localhost:5000/*",
            "localhost:5000/app:1"
        ));
    }
}
