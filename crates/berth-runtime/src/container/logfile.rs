//! One log per container (`container.log`): every line the container writes on stdout and
//! stderr, in the order berthd read them, each with the time it was read. Both streams in one
//! file is what makes `logs` interleave them in their true order and `--since`/`--until`/
//! `--timestamps` possible (Docker's json-file log, in a binary form that keeps the bytes
//! exactly: no JSON string can hold output that is not UTF-8).
//!
//! A record: stream (1 byte: 1 stdout, 2 stderr), time (i64 big-endian, nanoseconds since the
//! epoch), length (u32 big-endian), then the bytes. One record per line (a partial line is a
//! record of its own, so a prompt without a newline is seen at once); each is appended with one
//! `write` to an `O_APPEND` file, so a reader sees whole records or a short tail it waits out.
//!
//! The container's pipes (or its pty master) are copied by [`pump`], a thread in berthd; the
//! fd keeper holds a copy of their read ends, so a berthd restart does not hang up on the
//! container: output waits in the pipe (1 MiB) until the next berthd pumps it again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

const HEADER: usize = 13;
/// No record is larger (a pump reads at most 32 KiB at a time); anything larger is damage.
const MAX_RECORD: usize = 1 << 20;

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stream: u8,
    /// Nanoseconds since the epoch.
    pub time: i64,
    pub data: Vec<u8>,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The records of one read: split after each newline.
pub fn encode(stream: u8, time: i64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + HEADER * 2);
    for line in data.split_inclusive(|&b| b == b'\n') {
        out.push(stream);
        out.extend_from_slice(&time.to_be_bytes());
        out.extend_from_slice(&(line.len() as u32).to_be_bytes());
        out.extend_from_slice(line);
    }
    out
}

/// Parses the whole records at the start of `buf`; returns them and the bytes consumed.
/// `Err` on damage (a record no pump writes): the reader stops there.
fn decode(buf: &[u8]) -> (Vec<Record>, usize, bool) {
    let mut recs = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let h = &buf[at..at + HEADER];
        let stream = h[0];
        let time = i64::from_be_bytes(h[1..9].try_into().unwrap_or_default());
        let len = u32::from_be_bytes(h[9..13].try_into().unwrap_or_default()) as usize;
        if !(stream == STDOUT || stream == STDERR) || len > MAX_RECORD {
            return (recs, at, true);
        }
        if buf.len() - at - HEADER < len {
            break;
        }
        recs.push(Record {
            stream,
            time,
            data: buf[at + HEADER..at + HEADER + len].to_vec(),
        });
        at += HEADER + len;
    }
    (recs, at, false)
}

/// Reads a container's log from an offset, record by record, like `tail -f`.
pub struct Reader {
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    pending: Vec<u8>,
    damaged: bool,
}

impl Reader {
    /// From the start (`logs`) or from the current end (`attach`).
    pub fn open(path: &Path, from_end: bool) -> Reader {
        let mut file = File::open(path).ok();
        let pos = match (&mut file, from_end) {
            (Some(f), true) => f.seek(SeekFrom::End(0)).unwrap_or(0),
            _ => 0,
        };
        Reader {
            path: path.to_path_buf(),
            file,
            pos,
            pending: Vec::new(),
            damaged: false,
        }
    }

    /// The records appended since the last call (possibly none), at most about `limit` bytes.
    pub fn read_new(&mut self, limit: usize) -> Vec<Record> {
        if self.damaged {
            return Vec::new();
        }
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut chunk = vec![0u8; limit.clamp(HEADER, 4 << 20)];
        let n = f.read(&mut chunk).unwrap_or(0);
        self.pos += n as u64;
        self.pending.extend_from_slice(&chunk[..n]);
        let (recs, used, damaged) = decode(&self.pending);
        self.pending.drain(..used);
        if damaged {
            tracing::warn!(
                "{}: damaged record, the rest is not read",
                self.path.display()
            );
            self.damaged = true;
        }
        recs
    }
}

/// Copies the container's output (stdout and stderr pipes, or a pty master as stdout) into
/// its log until every fd reached its end (the process and its children are gone; for a
/// pty, EIO). The receiver hears when the last byte is in the log.
pub fn pump(fds: Vec<(u8, OwnedFd)>, log: &Path) -> std::sync::mpsc::Receiver<()> {
    let log = log.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _done = tx;
        let mut out = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("{}: {e}", log.display());
                return;
            }
        };
        let mut open: Vec<(u8, File)> =
            fds.into_iter().map(|(s, fd)| (s, File::from(fd))).collect();
        let mut buf = vec![0u8; 32 * 1024];
        while !open.is_empty() {
            // which fds have something (or their end): one poll over both, so the order of
            // stdout and stderr writes is kept as far as the reads can tell
            let ready: Vec<bool> = {
                use rustix::event::{poll, PollFd, PollFlags};
                let mut pfds: Vec<PollFd> = open
                    .iter()
                    .map(|(_, f)| PollFd::new(f, PollFlags::IN))
                    .collect();
                match poll(&mut pfds, None) {
                    Ok(_) => pfds.iter().map(|p| !p.revents().is_empty()).collect(),
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
            };
            let mut ended = Vec::new();
            for (i, (stream, f)) in open.iter_mut().enumerate() {
                if !ready[i] {
                    continue;
                }
                match f.read(&mut buf) {
                    Ok(0) => ended.push(i),
                    Ok(n) => {
                        let _ = out.write_all(&encode(*stream, now_ns(), &buf[..n]));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // EIO: every slave of a pty is closed
                    Err(_) => ended.push(i),
                }
            }
            for i in ended.into_iter().rev() {
                open.remove(i);
            }
        }
    });
    rx
}

/// A pipe whose write end goes to the container and whose read end is pumped into the log.
/// Made larger than the default 64 KiB, so a container outlives a berthd restart that takes
/// a while without blocking on its output.
pub fn output_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe()?;
    // berthd reads its end for the container's life
    let (r, w): (OwnedFd, OwnedFd) = (berth_api::fd::lift(r.into()), w.into());
    // at most /proc/sys/fs/pipe-max-size (1 MiB by default); the default size otherwise
    let _ = rustix::pipe::fcntl_setpipe_size(r.as_fd(), 1 << 20);
    Ok((r, w))
}

/// Logs written by berthd before the single log: `stdout.log` and `stderr.log`, which the
/// container wrote directly. Still read (and followed, for a container started then and still
/// running) so that a daemon upgrade loses none of them; their lines carry the time the file
/// was last written, the best there is.
pub fn legacy_paths(data: &Path) -> [(u8, PathBuf); 2] {
    [
        (STDOUT, data.join("stdout.log")),
        (STDERR, data.join("stderr.log")),
    ]
}

/// The time a legacy file was last written.
pub fn mtime_ns(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_line_by_line_and_partial_tails_wait() {
        let mut file = encode(STDOUT, 5, b"hello\nworld\npartial");
        file.extend(encode(STDERR, 7, &[0xff, 0, b'\n']));
        let (recs, used, bad) = decode(&file);
        assert!(!bad);
        assert_eq!(used, file.len());
        let lines: Vec<_> = recs
            .iter()
            .map(|r| (r.stream, r.time, r.data.clone()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, 5, b"hello\n".to_vec()),
                (1, 5, b"world\n".to_vec()),
                (1, 5, b"partial".to_vec()),
                (2, 7, vec![0xff, 0, b'\n']),
            ]
        );
        // a record cut short is left for later, not misread
        let (recs, used, bad) = decode(&file[..file.len() - 2]);
        assert_eq!((recs.len(), used, bad), (3, file.len() - HEADER - 3, false));
        // damage stops the reader instead of inventing records
        let mut broken = file.clone();
        broken[0] = 9;
        let (recs, _, bad) = decode(&broken);
        assert!(recs.is_empty() && bad);
    }

    #[test]
    fn a_pump_keeps_the_order_and_a_reader_follows() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("container.log");
        let (or, ow) = output_pipe().unwrap();
        let (er, ew) = output_pipe().unwrap();
        let done = pump(vec![(STDOUT, or), (STDERR, er)], &log);
        let mut reader = Reader::open(&log, false);
        let (mut ow, mut ew) = (File::from(ow), File::from(ew));
        let mut seen = Vec::new();
        for i in 0..20 {
            let (s, f) = if i % 2 == 0 {
                (STDOUT, &mut ow)
            } else {
                (STDERR, &mut ew)
            };
            f.write_all(format!("{i}\n").as_bytes()).unwrap();
            // each write is in the log before the next is made: the order must be kept
            let t = std::time::Instant::now();
            loop {
                let recs = reader.read_new(1 << 16);
                if !recs.is_empty() {
                    assert_eq!(recs.len(), 1);
                    seen.push((recs[0].stream, recs[0].data.clone()));
                    assert_eq!(recs[0].stream, s);
                    break;
                }
                assert!(t.elapsed().as_secs() < 5, "record {i} never came");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        drop((ow, ew));
        assert_eq!(
            done.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[19], (STDERR, b"19\n".to_vec()));
        // from the end: nothing old
        assert!(Reader::open(&log, true).read_new(1 << 16).is_empty());
    }
}
