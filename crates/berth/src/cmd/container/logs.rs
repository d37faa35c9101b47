//! `berth logs`: learn whether the container has a TTY, then stream its log, demultiplexed
//! unless it does.

use super::{path, session, LogsArgs};
use crate::client::{query_escape, Client};
use crate::hijack::{Output, Stdio};
use http_body_util::BodyExt;
use hyper::Method;

/// Docker's `timetypes.GetTimestamp`: a Go duration counts back from `now`; a date (RFC 3339,
/// or local time without a zone) becomes `secs.nanos`; a unix timestamp passes through.
pub fn get_timestamp(value: &str, now: i64, local_offset: i64) -> Result<String, String> {
    if value != "0" {
        if let Some(d) = go_duration_secs(value) {
            return Ok((now - d.trunc() as i64).to_string());
        }
    }
    if let Some((secs, nanos)) = parse_date(value, local_offset) {
        return Ok(format!("{secs}.{nanos:09}"));
    }
    if value.contains('-') {
        return Err(format!("parsing time {value:?}: cannot parse as a date"));
    }
    let unix = match value.split_once('.') {
        Some((s, n)) => s.parse::<i64>().is_ok() && n.parse::<u64>().is_ok(),
        None => value.parse::<i64>().is_ok(),
    };
    if unix {
        Ok(value.to_string())
    } else {
        Err(format!(
            "failed to parse value as time or duration: {value:?}"
        ))
    }
}

/// Go's `time.ParseDuration`, in seconds: `1h30m`, `42m`, `1.5s`, `-2h`, `300ms`.
fn go_duration_secs(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    Some(if neg { -total } else { total })
}

/// `YYYY-MM-DD[THH[:MM[:SS[.frac]]]][Z|±HH:MM]`; without a zone, `local_offset` (seconds
/// east of UTC) applies.
fn parse_date(v: &str, local_offset: i64) -> Option<(i64, u32)> {
    let (body, offset) = if let Some(b) = v.strip_suffix(['Z', 'z']) {
        (b, 0)
    } else if v.len() > 6 && v.contains('T') && matches!(v.as_bytes()[v.len() - 6], b'+' | b'-') {
        let (b, z) = v.split_at(v.len() - 6);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let h: i64 = z[1..3].parse().ok()?;
        let m: i64 = z[4..6].parse().ok()?;
        (b, sign * (h * 3600 + m * 60))
    } else {
        (v, local_offset)
    };
    let (date, time) = body.split_once(['T', 't']).unwrap_or((body, ""));
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 {
        return None;
    }
    let (y, mo, day): (i64, i64, i64) =
        (d[0].parse().ok()?, d[1].parse().ok()?, d[2].parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = if time.is_empty() {
        vec![]
    } else {
        time.split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?
    };
    if t.len() > 3 || (!frac.is_empty() && t.len() != 3) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").get(..9)?.parse().ok()?
    };
    let secs_of_day =
        t.first().unwrap_or(&0) * 3600 + t.get(1).unwrap_or(&0) * 60 + t.get(2).unwrap_or(&0);
    Some((
        days_from_civil(y, mo, day) * 86400 + secs_of_day - offset,
        nanos,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn local_offset(now: i64) -> i64 {
    let t = now as libc::time_t;
    // SAFETY: tm is plain data, for which all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `t` and fills a tm we own (the reentrant variant).
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}

/// The logs query, keys in Go's sorted order.
fn logs_query(a: &LogsArgs, now: i64) -> anyhow::Result<String> {
    let off = local_offset(now);
    let ts = |v: &Option<String>| -> anyhow::Result<Option<String>> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| get_timestamp(s, now, off).map_err(anyhow::Error::msg))
            .transpose()
    };
    let mut q = Vec::new();
    if a.details {
        q.push("details=1".to_string());
    }
    if a.follow {
        q.push("follow=1".into());
    }
    if let Some(s) = ts(&a.since)? {
        q.push(format!("since={}", query_escape(&s)));
    }
    q.push("stderr=1".into());
    q.push("stdout=1".into());
    q.push(format!("tail={}", query_escape(&a.tail)));
    if a.timestamps {
        q.push("timestamps=1".into());
    }
    if let Some(u) = ts(&a.until)? {
        q.push(format!("until={}", query_escape(&u)));
    }
    Ok(q.join("&"))
}

pub async fn logs(c: &Client, a: LogsArgs) -> anyhow::Result<i32> {
    let v = session::inspect(c, &a.container).await?;
    let id = v["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let q = logs_query(&a, now)?;
    let resp = c
        .open(Method::GET, &path(&id, &format!("/logs?{q}")), None)
        .await?;
    let mut body = resp.into_body();
    let mut out = Output::new(tty, Stdio);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            out.write(&data)?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_docker() {
        let now = 1_800_000_000;
        assert_eq!(
            get_timestamp("42m", now, 0).unwrap(),
            (now - 2520).to_string()
        );
        assert_eq!(
            get_timestamp("1h30m", now, 0).unwrap(),
            (now - 5400).to_string()
        );
        assert_eq!(
            get_timestamp("1.5s", now, 0).unwrap(),
            (now - 1).to_string()
        );
        assert_eq!(get_timestamp("0", now, 0).unwrap(), "0");
        assert_eq!(get_timestamp("1700000000", now, 0).unwrap(), "1700000000");
        assert_eq!(
            get_timestamp("1700000000.5", now, 0).unwrap(),
            "1700000000.5"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now, 0).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37.5+01:00", now, 0).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02", now, 3600).unwrap(),
            "1357081200.000000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23", now, 0).unwrap(),
            "1357132980.000000000"
        );
        assert_eq!(
            get_timestamp("yesterday", now, 0).unwrap_err(),
            "failed to parse value as time or duration: \"yesterday\""
        );
        assert!(get_timestamp("2013-13-02", now, 0).is_err());
    }

    #[test]
    fn query_order() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: LogsArgs,
        }
        let a = T::parse_from(["logs", "-f", "-t", "--tail", "1", "--since", "10s", "c"]).a;
        assert_eq!(
            logs_query(&a, 100).unwrap(),
            "follow=1&since=90&stderr=1&stdout=1&tail=1&timestamps=1"
        );
        let a = T::parse_from(["logs", "c"]).a;
        assert_eq!(logs_query(&a, 100).unwrap(), "stderr=1&stdout=1&tail=all");
    }
}
