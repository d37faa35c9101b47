//! Output and input streams of containers: attach, logs. Output is read back from the
//! container's log files (which the process writes directly, so it never waits for berthd and
//! survives a daemon restart); input goes to the stdin pipe or the pty master.

use super::{Ctr, Engine, Result};
use berth_net::NetError;
use berth_runtime::container::io::{Tail, FOLLOW_INTERVAL};
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

/// Follows the container's log files, sending (stream, bytes) until `until_exit` is reached.
/// `from_start`: logs (everything so far); else attach (only what comes next).
fn follow(
    c: Arc<Ctr>,
    eng: &Engine,
    streams: (bool, bool),
    from_start: bool,
    follow: bool,
    tail: Option<usize>,
) -> mpsc::Receiver<(u8, Vec<u8>)> {
    let (tx, rx) = mpsc::channel(64);
    let paths = eng.rt.paths(&c.id);
    let tty = c.rec.lock().unwrap().config.tty;
    let mut files = Vec::new();
    if streams.0 {
        files.push((STDOUT, Tail::open(&paths.stdout_log(), !from_start)));
    }
    if streams.1 && !tty {
        files.push((STDERR, Tail::open(&paths.stderr_log(), !from_start)));
    }
    let exits0 = c.exits();
    let started_running = c.snapshot().running();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        if let Some(n) = tail {
            for (s, t) in files.iter_mut() {
                let mut all = Vec::new();
                loop {
                    let k = t.read_new(&mut buf);
                    if k == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..k]);
                }
                let cut = last_lines(&all, n);
                if !cut.is_empty() && tx.send((*s, cut.to_vec())).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let done = !follow
                || c.removed.load(Ordering::SeqCst)
                || c.exits() > exits0
                || (started_running && !c.snapshot().running());
            let mut any = false;
            for (s, t) in files.iter_mut() {
                loop {
                    let k = t.read_new(&mut buf);
                    if k == 0 {
                        break;
                    }
                    any = true;
                    if tx.send((*s, buf[..k].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
            if done || tx.is_closed() {
                return;
            }
            if !any {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
            }
        }
    });
    rx
}

fn last_lines(all: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = all.strip_suffix(b"\n").unwrap_or(all);
    let mut count = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            count += 1;
            if count == n {
                return &all[i + 1..];
            }
        }
    }
    all
}

impl Engine {
    /// Output for `attach`: what the container writes from now until its process ends.
    pub fn attach_output(
        &self,
        c: &Arc<Ctr>,
        stdout: bool,
        stderr: bool,
    ) -> mpsc::Receiver<(u8, Vec<u8>)> {
        follow(c.clone(), self, (stdout, stderr), false, true, None)
    }

    /// Output for `logs`: from the start (or the last `tail` lines), following if asked.
    pub fn logs(
        &self,
        c: &Arc<Ctr>,
        stdout: bool,
        stderr: bool,
        follow_: bool,
        tail: Option<usize>,
    ) -> mpsc::Receiver<(u8, Vec<u8>)> {
        // Docker follows only a running container; a stopped one's logs just end.
        let follow_ = follow_ && c.snapshot().running();
        follow(c.clone(), self, (stdout, stderr), true, follow_, tail)
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
    fn tail_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 5), b"a\nb\nc\n");
        assert_eq!(last_lines(b"a\nb", 1), b"b");
        assert_eq!(last_lines(b"a\n", 0), b"");
    }
}
