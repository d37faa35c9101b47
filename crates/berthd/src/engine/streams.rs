//! Output and input streams of containers: attach, logs. Output is read back from the
//! container's log (`logfile`: both streams, a timestamped record per line); input goes to
//! the stdin pipe or the pty master.

use super::{Ctr, Engine, Result};
use berth_net::NetError;
use berth_runtime::container::io::{Tail, FOLLOW_INTERVAL};
use berth_runtime::container::logfile::{self, Reader, Record};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Docker's stdcopy frame: stream byte, three zeros, big-endian length, payload.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// `ctrl-p,ctrl-q` → `[0x10, 0x11]`: the rule the CLI checks with too (berth_api::keys).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    berth_api::keys::parse_detach_keys(s)
        .map_err(|_| NetError::invalid(berth_api::keys::invalid_detach_keys(s)))
}

/// Finds a detach sequence in the input, across reads.
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachMatcher {
            keys,
            held: Vec::new(),
        }
    }

    /// The bytes to pass on, and whether the sequence was completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.append(&mut self.held);
                if b == self.keys[0] {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// What `logs` asks for (Docker's query parameters, parsed).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// The last this many lines only.
    pub tail: Option<usize>,
    /// Nanoseconds since the epoch: lines written at or after `since`, up to `until`.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Each line starts with the time it was written (RFC 3339, nanoseconds, UTC) and a space.
    pub timestamps: bool,
}

/// Docker's `since`/`until`: unix seconds with optional fractional digits (the CLI turns
/// dates and durations into these). Errors in Go's words, as Docker answers them (a 500).
pub fn parse_timestamp(v: &str) -> Result<i64> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let bad =
        |s: &str| NetError::internal(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    let s: i64 = secs.parse().map_err(|_| bad(secs))?;
    let mut ns = 0i64;
    if v.contains('.') {
        let n: i64 = frac.parse().map_err(|_| bad(frac))?;
        // "1.5" is 1.5 s: the digits scaled to nanoseconds
        ns = if frac.len() <= 9 {
            n.saturating_mul(10i64.saturating_pow(9 - frac.len() as u32))
        } else {
            n / 10i64.saturating_pow((frac.len() - 9) as u32)
        };
    }
    Ok(s.saturating_mul(1_000_000_000).saturating_add(ns))
}

/// `2006-01-02T15:04:05.000000000Z`: Docker's fixed-width RFC 3339 with nanoseconds.
pub fn format_timestamp(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// The container's log (and an older berthd's log files, see `logfile::legacy_paths`),
/// read from the start or from now on.
struct Sources {
    log: Reader,
    /// stream, file, and the time its old content was last written (0 once read)
    legacy: Vec<(u8, Tail, i64)>,
}

impl Sources {
    fn open(data: &std::path::Path, log: &std::path::Path, from_start: bool) -> Sources {
        let legacy = logfile::legacy_paths(data)
            .into_iter()
            .filter(|(_, p)| p.exists())
            .map(|(s, p)| (s, Tail::open(&p, !from_start), logfile::mtime_ns(&p)))
            .collect();
        Sources {
            log: Reader::open(log, !from_start),
            legacy,
        }
    }

    /// What is new: the legacy files' lines first (they are older), then the log's records.
    fn read_new(&mut self, buf: &mut [u8]) -> Vec<Record> {
        let mut out = Vec::new();
        for (stream, t, mtime) in self.legacy.iter_mut() {
            loop {
                let k = t.read_new(buf);
                if k == 0 {
                    break;
                }
                // the first reads are the old content (last written at mtime); later ones new
                let time = if *mtime != 0 {
                    *mtime
                } else {
                    logfile::now_ns()
                };
                for line in buf[..k].split_inclusive(|&b| b == b'\n') {
                    out.push(Record {
                        stream: *stream,
                        time,
                        data: line.to_vec(),
                    });
                }
            }
            *mtime = 0;
        }
        loop {
            let recs = self.log.read_new(buf.len());
            if recs.is_empty() {
                break;
            }
            out.extend(recs);
            if out.len() >= 4096 {
                break;
            }
        }
        out
    }
}

/// Follows the container's log, sending (stream, bytes) per line until the process ends.
/// `from_start`: logs (everything so far, filtered by `o`); else attach (only what comes next).
fn follow(
    c: Arc<Ctr>,
    eng: &Engine,
    o: LogOptions,
    from_start: bool,
) -> mpsc::Receiver<(u8, Vec<u8>)> {
    let (tx, rx) = mpsc::channel(64);
    let paths = eng.rt.paths(&c.id);
    let mut src = Sources::open(&paths.data, &paths.log(), from_start);
    let exits0 = c.exits();
    let started_running = c.snapshot().running();
    let wanted = move |r: &Record| {
        (if r.stream == STDOUT {
            o.stdout
        } else {
            o.stderr
        }) && o.since.is_none_or(|s| r.time >= s)
    };
    let past_until = move |t: i64| o.until.is_some_and(|u| t > u);
    let render = move |r: Record| -> (u8, Vec<u8>) {
        if o.timestamps {
            let mut v = format_timestamp(r.time).into_bytes();
            v.push(b' ');
            v.extend_from_slice(&r.data);
            (r.stream, v)
        } else {
            (r.stream, r.data)
        }
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        if let Some(n) = o.tail {
            // the last n lines of what is there now
            let mut all = std::collections::VecDeque::new();
            loop {
                let recs = src.read_new(&mut buf);
                if recs.is_empty() {
                    break;
                }
                for r in recs
                    .into_iter()
                    .filter(|r| wanted(r) && !past_until(r.time))
                {
                    if all.len() == n {
                        all.pop_front();
                    }
                    if n > 0 {
                        all.push_back(r);
                    }
                }
            }
            for r in all {
                if tx.send(render(r)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let done = !o.follow
                || c.removed.load(Ordering::SeqCst)
                || c.exits() > exits0
                || (started_running && !c.snapshot().running());
            let mut any = false;
            loop {
                let recs = src.read_new(&mut buf);
                if recs.is_empty() {
                    break;
                }
                any = true;
                for r in recs {
                    if past_until(r.time) {
                        return;
                    }
                    if wanted(&r) && tx.send(render(r)).await.is_err() {
                        return;
                    }
                }
            }
            if done || tx.is_closed() || past_until(logfile::now_ns()) {
                return;
            }
            if !any {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
            }
        }
    });
    rx
}

impl Engine {
    /// Output for `attach`: what the container writes from now until its process ends.
    pub fn attach_output(
        &self,
        c: &Arc<Ctr>,
        stdout: bool,
        stderr: bool,
    ) -> mpsc::Receiver<(u8, Vec<u8>)> {
        let o = LogOptions {
            stdout,
            stderr,
            follow: true,
            ..Default::default()
        };
        follow(c.clone(), self, o, false)
    }

    /// Output for `logs`: from the start (or the last `tail` lines), following if asked.
    pub fn logs(&self, c: &Arc<Ctr>, mut o: LogOptions) -> mpsc::Receiver<(u8, Vec<u8>)> {
        // Docker follows only a running container; a stopped one's logs just end.
        o.follow = o.follow && c.snapshot().running();
        follow(c.clone(), self, o, true)
    }

    /// Writes the user's input to the container. Blocking (a pipe may be full).
    pub fn write_stdin(c: &Ctr, data: &[u8]) -> bool {
        // A copy, written outside the lock: a full pipe must not block resize or exit handling.
        let f = c
            .stdin
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|f| f.try_clone().ok());
        match f {
            Some(mut f) => f.write_all(data).is_ok(),
            None => false,
        }
    }

    /// Sets the terminal size of a `-t` container (`POST /containers/{id}/resize`).
    pub fn resize(c: &Ctr, rows: u16, cols: u16) {
        if !c.rec.lock().unwrap().config.tty {
            return;
        }
        if let Some(f) = c.stdin.lock().unwrap().as_ref() {
            use std::os::fd::AsRawFd;
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads the winsize we pass, and `f` is an open descriptor.
            unsafe {
                libc::ioctl(f.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// The input ended: with `StdinOnce` (docker run -i) the process sees end-of-file.
    pub fn close_stdin(&self, c: &Ctr) {
        let (once, tty) = {
            let r = c.rec.lock().unwrap();
            (r.config.stdin_once, r.config.tty)
        };
        if once && !tty {
            self.rt.release_stdin(&c.id);
            *c.stdin.lock().unwrap() = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_detach_keys() {
        assert_eq!(frame(1, b"hi"), vec![1, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-x,y").unwrap(), vec![24, b'y']);
        assert!(parse_detach_keys("ctrl-").is_err());
        // the keys the CLI accepts (DEL, as docker's) are the daemon's too
        assert_eq!(parse_detach_keys("DEL,a").unwrap(), vec![127, b'a']);
        assert_eq!(
            parse_detach_keys(" ctrl-a").unwrap_err().message,
            "Invalid detach keys ( ctrl-a) provided"
        );
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"\x10"), (b"\x10".to_vec(), false));
        assert_eq!(m.feed(b"\x11zz"), (vec![], true));
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"\x10x"), (b"\x10x".to_vec(), false));
    }

    #[test]
    fn docker_timestamps() {
        assert_eq!(parse_timestamp("1").unwrap(), 1_000_000_000);
        assert_eq!(parse_timestamp("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_timestamp("-1").unwrap(), -1_000_000_000);
        assert_eq!(parse_timestamp("1.000000001").unwrap(), 1_000_000_001);
        assert_eq!(parse_timestamp("1.0000000015").unwrap(), 1_000_000_001);
        assert_eq!(
            parse_timestamp("abc").unwrap_err().message,
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert!(parse_timestamp("2026-12-03T00:00:00Z").is_err());
        assert!(parse_timestamp("1.x").is_err());
        assert_eq!(
            format_timestamp(1_764_771_831_721_300_398),
            "2025-12-03T14:23:51.721300398Z"
        );
        assert_eq!(
            format_timestamp(5_000_000_000),
            "1970-01-01T00:00:05.000000000Z"
        );
    }
}
