//! Process plumbing without a shim: the console socket runc hands a pty master through,
//! fd passing, exit statuses (pidfds, and the files the keeper writes for the containers it
//! is the parent of), and log files followed like `tail -f`.

use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket runc sends a new pty's master to (`--console-socket`).
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<ConsoleSocket> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| Error::internal(format!("console socket {}: {e}", path.display())))?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Waits for runc's connection and takes the fd it passes. Runs on its own thread while
    /// runc runs: runc sends the master before `create`/`exec -d` returns.
    pub fn receive(self) -> std::thread::JoinHandle<Result<OwnedFd>> {
        std::thread::spawn(move || {
            let (conn, _) = self
                .listener
                .accept()
                .map_err(|e| Error::internal(format!("console socket accept: {e}")))?;
            let _ = std::fs::remove_file(&self.path);
            recv_fd(conn.as_raw_fd())
                .map_err(|e| Error::internal(format!("receiving the console: {e}")))
        })
    }

    /// Unblocks a pending `receive` when runc failed before connecting.
    pub fn wake(path: &Path) {
        let _ = std::os::unix::net::UnixStream::connect(path);
    }
}

fn recv_fd(sock: i32) -> std::io::Result<OwnedFd> {
    recv_fds(sock)?
        .1
        .into_iter()
        .next()
        .ok_or_else(|| std::io::Error::other("no fd received"))
}

/// Up to this many fds travel with one message (a process's stdin, stdout, stderr).
const MAX_FDS: usize = 3;

fn cmsg_space() -> usize {
    unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<i32>()) as u32) as usize }
}

/// A message header over one buffer, with room for fds when `control` is given.
fn header(iov: &mut libc::iovec, control: Option<&mut [u8]>) -> libc::msghdr {
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    if let Some(c) = control {
        msg.msg_control = c.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = c.len() as _;
    }
    msg
}

/// One message: its text and the fds passed with it.
pub fn recv_fds(sock: i32) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut data = [0u8; 8192];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = vec![0u8; cmsg_space()];
    let mut msg = header(&mut iov, Some(&mut cbuf));
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let text = String::from_utf8_lossy(&data[..n as usize])
        .trim()
        .to_string();
    let mut fds = Vec::new();
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Ok((text, fds));
    }
    unsafe {
        if (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(std::io::Error::other("unexpected control message"));
        }
        let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
        let p = libc::CMSG_DATA(cmsg) as *const i32;
        for i in 0..len / std::mem::size_of::<i32>() {
            fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
        }
    }
    Ok((text, fds))
}

/// Sends `data` with `fds` (at most three) attached.
pub fn send_fds(sock: i32, data: &[u8], fds: &[std::os::fd::BorrowedFd]) -> std::io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    let msg = header(&mut iov, (!fds.is_empty()).then_some(&mut cbuf[..]));
    if !fds.is_empty() {
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            let p = libc::CMSG_DATA(cmsg) as *mut i32;
            for (i, fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(p.add(i), fd.as_raw_fd());
            }
        }
    }
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How a process ended, as Docker reports it: the exit code, or 128 + the signal.
/// berthd's own children are reaped here; processes the fd keeper started (its children) are
/// reaped by it, and their status is read from the file it writes into `exits`.
/// `None`: neither knows (the process was nobody's child we can ask).
pub async fn wait_exit(pid: i32, exits: Option<&Path>) -> Option<i32> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let file = exits.map(|d| d.join(pid.to_string()));
    if fd < 0 {
        return read_exit_file(file.as_deref()).await;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Safety: the AsyncFd owns the pidfd, which nothing else closes while it is registered.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let _ = afd.readable().await.ok()?;
    let reaped = reap_pidfd(afd.get_ref().as_raw_fd());
    match reaped {
        Some(code) => Some(code),
        None => read_exit_file(file.as_deref()).await,
    }
}

/// `waitid(P_PIDFD)`: the status if the process was our child.
fn reap_pidfd(fd: i32) -> Option<i32> {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // P_PIDFD (3): reap exactly this process, never someone else's child.
    if unsafe { libc::waitid(3, fd as u32, &mut info, libc::WEXITED) } != 0 {
        return None;
    }
    let status = unsafe { info.si_status() };
    Some(match info.si_code {
        libc::CLD_EXITED => status,
        _ => 128 + status,
    })
}

/// The keeper writes the file right after reaping; give it a moment.
async fn read_exit_file(file: Option<&Path>) -> Option<i32> {
    let file = file?;
    for _ in 0..400 {
        if let Ok(s) = std::fs::read_to_string(file) {
            let _ = std::fs::remove_file(file);
            return s.trim().parse().ok();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// A log file read from an offset, waiting for more like `tail -f`.
pub struct Tail {
    file: Option<File>,
    path: PathBuf,
    pos: u64,
}

impl Tail {
    /// From the start (`logs`) or from the current end (`attach`).
    pub fn open(path: &Path, from_end: bool) -> Tail {
        let mut file = File::open(path).ok();
        let pos = match (&mut file, from_end) {
            (Some(f), true) => f.seek(SeekFrom::End(0)).unwrap_or(0),
            _ => 0,
        };
        Tail {
            file,
            path: path.to_path_buf(),
            pos,
        }
    }

    /// What was appended since the last call (possibly nothing).
    pub fn read_new(&mut self, buf: &mut [u8]) -> usize {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return 0;
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return 0;
        }
        match f.read(buf) {
            Ok(n) => {
                self.pos += n as u64;
                n
            }
            Err(_) => 0,
        }
    }
}

/// How often a follower looks for new output when there was none: short enough that
/// `docker run` feels immediate, long enough to cost nothing while idle.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(10);

/// Copies a pty master into the container's log until the last slave closes (the process
/// ended), so TTY containers have logs and attach like the others.
/// The receiver hears when the last byte is in the log.
pub fn pump_console(master: OwnedFd, log: &Path) -> std::sync::mpsc::Receiver<()> {
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
            Err(_) => return,
        };
        let mut m = File::from(master);
        let mut buf = [0u8; 16384];
        loop {
            match m.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = std::io::Write::write_all(&mut out, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: every slave fd is closed.
                Err(_) => break,
            }
        }
    });
    rx
}
