//! `berth ps`: docker's table, columns and `--format` fields over `GET /containers/json`.

use super::ports::displayable;
use super::PsArgs;
use crate::client::{query_escape, Client};
use crate::format::{self, human_size};
use anyhow::bail;
use berth_api::units::human_duration;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
];

fn filters_param(items: &[String]) -> anyhow::Result<Option<String>> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for it in items {
        let Some((k, v)) = it.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(Some(berth_api::encode_filters(&f)))
}

/// `GET /containers/json` query, keys in Go's sorted order.
fn list_query(a: &PsArgs, size: bool) -> anyhow::Result<String> {
    let mut q = Vec::new();
    if a.all {
        q.push("all=1".to_string());
    }
    if let Some(f) = filters_param(&a.filter)? {
        q.push(format!("filters={}", query_escape(&f)));
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    if limit > 0 {
        q.push(format!("limit={limit}"));
    }
    if size {
        q.push("size=1".into());
    }
    Ok(if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    })
}

pub async fn ps(c: &Client, a: PsArgs) -> anyhow::Result<i32> {
    let default_table = if a.size {
        format!("{PS_TABLE}\t{{{{.Size}}}}")
    } else {
        PS_TABLE.to_string()
    };
    let fmt = if a.quiet {
        "{{.ID}}"
    } else {
        format::resolve_list_format(a.format.as_deref(), &default_table)
    };
    // docker asks for sizes when the template shows them (they are costly to compute)
    let size = a.size || (!a.quiet && fmt.contains(".Size"));
    let v = c
        .get_json(&format!("/containers/json{}", list_query(&a, size)?))
        .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|ctr| row(ctr, !a.no_trunc, now))
        .collect();
    let headers = format::header_map(PS_HEADERS);
    match format::render_list(fmt, &headers, &rows) {
        Ok(out) => {
            print!("{out}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

/// The fields `ps --format` offers, as docker's ContainerContext computes them; alphabetical,
/// as `--format json` prints them.
fn row(c: &Value, trunc: bool, now: i64) -> Value {
    let id = c["Id"].as_str().unwrap_or_default();
    let created = c["Created"].as_i64().unwrap_or(0);
    let command = c["Command"].as_str().unwrap_or_default();
    let labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            l.sort();
            l
        })
        .unwrap_or_default();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.or(m["Source"].as_str()).unwrap_or_default();
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let mut networks: Vec<&String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    networks.sort();
    let ports = c["Ports"].as_array().map(Vec::as_slice).unwrap_or_default();
    json!({
        "Command": go_quote(&if trunc { ellipsis(command, 20) } else { command.to_string() }),
        "CreatedAt": go_local_time(created),
        "ID": if trunc { truncate_id(id) } else { id.to_string() },
        "Image": image(c, trunc),
        "Labels": labels.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names(c, trunc),
        "Networks": networks.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        "Ports": displayable(ports),
        "RunningFor": format!("{} ago", human_duration(now - created)),
        "Size": size(c),
        "State": c["State"],
        "Status": c["Status"],
    })
}

/// `stringid.TruncateID`: drop any `algo:` prefix, keep 12 characters.
fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

fn image(c: &Value, trunc: bool) -> String {
    let image = c["Image"].as_str().unwrap_or_default();
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.into();
    }
    let image_id = c["ImageID"].as_str().unwrap_or_default();
    if truncate_id(image_id) == truncate_id(image) {
        return truncate_id(image);
    }
    // a digest is dropped, a tag kept
    let image = image.split('@').next().unwrap_or(image);
    image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image)
        .to_string()
}

/// Names without their `/`; truncated output keeps one name that is not a legacy link alias.
fn names(c: &Value, trunc: bool) -> String {
    let all: Vec<&str> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .collect();
    if trunc {
        return all
            .iter()
            .find(|n| !n.contains('/'))
            .map(|n| n.to_string())
            .unwrap_or_default();
    }
    all.join(",")
}

fn size(c: &Value) -> String {
    let rw = c["SizeRw"].as_i64().unwrap_or(0);
    let root = c["SizeRootFs"].as_i64().unwrap_or(0);
    let srw = human_size(rw as f64, 3);
    if root > 0 {
        format!("{srw} (virtual {})", human_size(root as f64, 3))
    } else {
        srw
    }
}

/// docker's `formatter.Ellipsis` over display width (ASCII commands: characters).
pub fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.into();
    }
    if max == 0 {
        return String::new();
    }
    if max == 1 {
        return chars[0].to_string();
    }
    chars[..max - 1].iter().collect::<String>() + "…"
}

/// Go's `strconv.Quote`: printable characters kept (`…` included), the rest escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Unix(secs, 0).String()` in the local zone: `2026-11-23 08:24:19 +0100 CET`.
pub fn go_local_time(secs: i64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: tm is plain data, for which all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `t` and fills a tm we own (the reentrant variant).
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return String::new();
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: non-null, tm_zone points to a NUL-terminated zone name in libc's static
        // tables, which live as long as the process.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off.abs() / 3600,
        off.abs() % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> PsArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: PsArgs,
        }
        T::parse_from(std::iter::once("ps").chain(list.iter().copied())).a
    }

    #[test]
    fn query_string() {
        assert_eq!(list_query(&args(&[]), false).unwrap(), "");
        assert_eq!(
            list_query(&args(&["-a", "--filter", "name=web", "-n", "3"]), true).unwrap(),
            "?all=1&filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D&limit=3&size=1"
        );
        assert_eq!(list_query(&args(&["-l"]), false).unwrap(), "?limit=1");
        assert!(list_query(&args(&["-f", "bogus"]), false).is_err());
    }

    #[test]
    fn row_fields() {
        let c = json!({
            "Id": "fe500a9d104c7f1e2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7e2f7e2",
            "Names": ["/rsch-web", "/other/alias"],
            "Image": "busybox", "ImageID": "sha256:f42b",
            "Command": "sh -c 'echo out-line; echo err-line 1>&2; exec httpd -f -p 80'",
            "Created": 1000, "State": "running", "Status": "Up 14 seconds",
            "Ports": [{"PrivatePort":7000,"Type":"tcp"}],
            "Labels": {"b":"2","a":"1"},
            "NetworkSettings": {"Networks": {"n2": {}, "bridge": {}}},
            "Mounts": []
        });
        let r = row(&c, true, 1005);
        assert_eq!(r["ID"], "fe500a9d104c");
        assert_eq!(r["Command"], "\"sh -c 'echo out-lin…\"");
        assert_eq!(r["Names"], "rsch-web");
        assert_eq!(r["RunningFor"], "5 seconds ago");
        assert_eq!(r["Ports"], "7000/tcp");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Networks"], "bridge,n2");
        assert_eq!(r["Size"], "0B");
        let r = row(&c, false, 1005);
        assert_eq!(r["Names"], "rsch-web,other/alias");
        assert_eq!(
            r["Command"],
            "\"sh -c 'echo out-line; echo err-line 1>&2; exec httpd -f -p 80'\""
        );
        let rows = [row(&c, true, 1005)];
        let out = format::render_list(PS_TABLE, &format::header_map(PS_HEADERS), &rows).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS          PORTS      NAMES\n\
             fe500a9d104c   busybox   \"sh -c 'echo out-lin…\"   5 seconds ago   Up 14 seconds   7000/tcp   rsch-web\n"
        );
    }

    #[test]
    fn docker_units() {
        assert_eq!(human_size(0.0, 3), "0B");
        assert_eq!(human_size(2.0, 3), "2B");
        assert_eq!(human_size(21_500_000.0, 3), "21.5MB");
        assert_eq!(human_size(1_234.0, 3), "1.23kB");
        assert_eq!(human_size(123_400.0, 3), "123kB");
        assert_eq!(ellipsis("abc", 20), "abc");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(go_quote("a\"b\\\n…"), "\"a\\\"b\\\\\\n…\"");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
