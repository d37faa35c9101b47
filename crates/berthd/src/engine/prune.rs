//! `POST /containers/prune`: every container that is not running and matches the filters
//! (`label`, `label!`, `until`) is removed, as `docker container prune` does; the reply counts
//! the bytes of their writable layers.

use super::{Engine, Result};
use berth_api::Filters;
use berth_net::NetError;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const KEYS: &[&str] = &["label", "label!", "until"];

/// `key` (present) or `key=value` (equal), as Docker's label filters.
fn has_label(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// A Unix timestamp, RFC 3339, or a duration (`10m`, `1h30m`, `90s`) back from now.
fn parse_until(v: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = v.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (scale, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else {
            match rest.chars().next()? {
                'h' => (3600.0, 1),
                'm' => (60.0, 1),
                's' => (1.0, 1),
                _ => return None,
            }
        };
        total += num * scale;
        rest = &rest[len..];
    }
    Some(OffsetDateTime::now_utc() - time::Duration::seconds_f64(total))
}

/// What a prune keeps or takes.
struct Wanted {
    labels: Vec<String>,
    not_labels: Vec<String>,
    until: Option<OffsetDateTime>,
}

impl Wanted {
    fn new(f: &Filters) -> Result<Self> {
        if let Some(k) = f.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(NetError::invalid(format!("Invalid filter '{k}'")));
        }
        let until = match f.get("until").and_then(|v| v.first()) {
            None => None,
            Some(v) => Some(parse_until(v).ok_or_else(|| {
                NetError::internal(format!("failed to parse value as time or duration: {v:?}"))
            })?),
        };
        Ok(Wanted {
            labels: f.get("label").cloned().unwrap_or_default(),
            not_labels: f.get("label!").cloned().unwrap_or_default(),
            until,
        })
    }

    fn takes(&self, labels: &BTreeMap<String, String>, created: &str) -> bool {
        let created = OffsetDateTime::parse(created, &Rfc3339).ok();
        self.labels.iter().all(|l| has_label(labels, l))
            && !self.not_labels.iter().any(|l| has_label(labels, l))
            && match (self.until, created) {
                (Some(u), Some(c)) => c < u,
                _ => true,
            }
    }
}

/// Bytes of the files under `p` (not following links).
fn du(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Engine {
    /// Removes the stopped containers `filters` takes: their ids and the bytes freed.
    pub async fn prune_containers(
        self: &Arc<Self>,
        filters: &Filters,
    ) -> Result<(Vec<String>, u64)> {
        let wanted = Wanted::new(filters)?;
        let mut deleted = Vec::new();
        let mut space = 0;
        for c in self.all() {
            let rec = c.snapshot();
            let labels = rec.config.labels.clone().unwrap_or_default();
            if rec.running() || !wanted.takes(&labels, &rec.created) {
                continue;
            }
            let upper = self.rt.paths(&rec.id).data.join("upper");
            let size = super::blocking(move || Ok::<_, berth_runtime::Error>(du(&upper))).await?;
            // one that started or went meanwhile is simply not pruned
            if self.remove_container(&rec.id, false).await.is_ok() {
                deleted.push(rec.id.clone());
                space += size;
            }
        }
        Ok((deleted, space))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = |k: &str, v: &str| Filters::from([(k.to_string(), vec![v.to_string()])]);
        assert_eq!(
            Wanted::new(&f("name", "x")).err().unwrap().message,
            "Invalid filter 'name'"
        );
        assert_eq!(
            Wanted::new(&f("until", "soon")).err().unwrap().message,
            "failed to parse value as time or duration: \"soon\""
        );
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let now = "2030-01-01T00:00:00Z";
        assert!(Wanted::new(&f("label", "a")).unwrap().takes(&labels, now));
        assert!(Wanted::new(&f("label", "a=1")).unwrap().takes(&labels, now));
        assert!(!Wanted::new(&f("label", "a=2")).unwrap().takes(&labels, now));
        assert!(!Wanted::new(&f("label!", "a")).unwrap().takes(&labels, now));
        assert!(!Wanted::new(&f("until", "1h")).unwrap().takes(&labels, now));
        assert!(Wanted::new(&f("until", "1h"))
            .unwrap()
            .takes(&labels, "2001-01-01T00:00:00Z"));
    }
}
