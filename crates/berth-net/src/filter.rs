//! `docker network ls --filter` and `network prune --filter`, with Docker's rules and messages.

use crate::error::{NetError, Result};
use crate::network::Network;
use berth_api::Filters;

const LIST_KEYS: [&str; 7] = ["dangling", "driver", "id", "label", "name", "scope", "type"];
const PRUNE_KEYS: [&str; 3] = ["label", "label!", "until"];

fn check_keys(f: &Filters, allowed: &[&str]) -> Result<()> {
    match f.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(NetError::invalid(format!("Invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// Exact match first, else an unanchored regular expression, as Docker matches names and ids.
fn fuzzy(pattern: &str, field: &str) -> bool {
    pattern == field
        || regex::Regex::new(pattern)
            .map(|r| r.is_match(field))
            .unwrap_or(false)
}

fn labels_match(wanted: &[String], n: &Network) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => n.labels.get(k).map(String::as_str) == Some(v),
        None => n.labels.contains_key(w.as_str()),
    })
}

/// A validated list filter. `in_use` tells whether a network has endpoints.
pub struct ListFilter(Filters);

impl ListFilter {
    pub fn new(f: Filters) -> Result<Self> {
        check_keys(&f, &LIST_KEYS)?;
        for t in f.get("type").into_iter().flatten() {
            if t != "custom" && t != "builtin" {
                return Err(NetError::internal(format!("invalid filter: 'type'='{t}'")));
            }
        }
        if let Some(d) = f.get("dangling") {
            if d.len() > 1 {
                return Err(NetError::invalid(
                    "got more than one value for filter key \"dangling\"",
                ));
            }
            if let Some(v) = d.first() {
                if !["true", "1", "false", "0"].contains(&v.as_str()) {
                    return Err(NetError::invalid("invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"));
                }
            }
        }
        Ok(ListFilter(f))
    }

    pub fn matches(&self, n: &Network, in_use: bool) -> bool {
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| match self.0.get(key) {
            None => true,
            Some(vs) if vs.is_empty() => true,
            Some(vs) => vs.iter().any(|v| pred(v)),
        };
        any("name", &|p| fuzzy(p, &n.name))
            && any("id", &|p| fuzzy(p, &n.id))
            && any("driver", &|d| d == n.driver)
            && any("scope", &|s| s == n.scope)
            && any("type", &|t| (t == "builtin") == n.predefined)
            && any("dangling", &|d| {
                let dangling = !n.predefined && !in_use;
                (d == "true" || d == "1") == dangling
            })
            && self.0.get("label").is_none_or(|l| labels_match(l, n))
    }
}

pub struct PruneFilter {
    labels: Vec<String>,
    not_labels: Vec<String>,
    until: Option<time::OffsetDateTime>,
}

impl PruneFilter {
    pub fn new(f: Filters) -> Result<Self> {
        check_keys(&f, &PRUNE_KEYS)?;
        let until = match f.get("until").and_then(|v| v.first()) {
            None => None,
            Some(v) => Some(parse_until(v).ok_or_else(|| {
                NetError::internal(format!("failed to parse value as time or duration: {v:?}"))
            })?),
        };
        Ok(PruneFilter {
            labels: f.get("label").cloned().unwrap_or_default(),
            not_labels: f.get("label!").cloned().unwrap_or_default(),
            until,
        })
    }

    pub fn matches(&self, n: &Network) -> bool {
        let created =
            time::OffsetDateTime::parse(&n.created, &time::format_description::well_known::Rfc3339)
                .ok();
        labels_match(&self.labels, n)
            && (self.not_labels.is_empty()
                || !self
                    .not_labels
                    .iter()
                    .any(|l| labels_match(std::slice::from_ref(l), n)))
            && match (self.until, created) {
                (Some(u), Some(c)) => c < u,
                _ => true,
            }
    }
}

/// A timestamp (RFC 3339 or Unix seconds) or a Go duration counted back from now.
fn parse_until(v: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = v.parse::<i64>() {
        return time::OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = v;
    while !rest.is_empty() {
        let c = rest.chars().next()?;
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, len) = [("ms", 2usize), ("h", 1), ("m", 1), ("s", 1)]
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .map(|(u, l)| (*u, *l))?;
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            _ => 0.001,
        };
        rest = &rest[len..];
    }
    if !num.is_empty() {
        return None;
    }
    Some(time::OffsetDateTime::now_utc() - time::Duration::seconds_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert!(parse_until("10m").is_some());
        assert!(parse_until("1h30m").is_some());
        assert!(parse_until("2026-11-23T07:00:00Z").is_some());
        assert!(parse_until("xyz").is_none());
        assert!(parse_until("10").is_some());
    }

    #[test]
    fn list_filter_validation() {
        let mut f = Filters::new();
        f.insert("bogus".into(), vec!["x".into()]);
        assert_eq!(
            ListFilter::new(f).err().unwrap().message,
            "Invalid filter 'bogus'"
        );
        let mut f = Filters::new();
        f.insert("type".into(), vec!["x".into()]);
        assert_eq!(
            ListFilter::new(f).err().unwrap().message,
            "invalid filter: 'type'='x'"
        );
    }
}
