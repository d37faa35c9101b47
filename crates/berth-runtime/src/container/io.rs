//! Process plumbing without a shim: the console socket runc hands a pty master through,
//! fd passing, exit statuses (pidfds, and the files the keeper writes for the containers it
//! is the parent of), and log files followed like `tail -f`.

use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
            recv_fd(&conn).map_err(|e| Error::internal(format!("receiving the console: {e}")))
        })
    }

    /// Unblocks a pending `receive` when runc failed before connecting.
    pub fn wake(path: &Path) {
        let _ = std::os::unix::net::UnixStream::connect(path);
    }
}

fn recv_fd(sock: impl AsFd) -> std::io::Result<OwnedFd> {
    recv_fds(sock)?
        .1
        .into_iter()
        .next()
        .ok_or_else(|| std::io::Error::other("no fd received"))
}

/// Up to this many fds travel with one message (a process's stdin, stdout, stderr).
const MAX_FDS: usize = 3;

/// One message: its text and the fds passed with it (more than [`MAX_FDS`] are cut off by
/// the kernel, and closed).
pub fn recv_fds(sock: impl AsFd) -> std::io::Result<(String, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut data = [0u8; 8192];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    // A socket with a receive timeout (the keeper's) is never restarted after a signal
    // handler ran, SA_RESTART or not (signal(7)): berthd's SIGCHLD failed a container start.
    let got = loop {
        match rustix::net::recvmsg(
            &sock,
            &mut [std::io::IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    let text = String::from_utf8_lossy(&data[..got.bytes])
        .trim()
        .to_string();
    let mut fds = Vec::new();
    for m in control.drain() {
        match m {
            RecvAncillaryMessage::ScmRights(rights) => fds.extend(rights),
            _ => return Err(std::io::Error::other("unexpected control message")),
        }
    }
    Ok((text, fds))
}

/// Sends `data` with `fds` (at most three) attached.
pub fn send_fds(sock: impl AsFd, data: &[u8], fds: &[BorrowedFd]) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::other("too many fds for one message"));
    }
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("fds do not fit the control buffer"));
    }
    // the same for a send timeout
    loop {
        match rustix::net::sendmsg(
            &sock,
            &[std::io::IoSlice::new(data)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r.map(|_| ()).map_err(Into::into),
        }
    }
}

/// How a process ended, as Docker reports it: the exit code, or 128 + the signal.
/// berthd's own children are reaped here; processes the fd keeper started (its children) are
/// reaped by it, and their status is read from the file it writes into `exits`.
/// `None`: neither knows (the process was nobody's child we can ask).
pub async fn wait_exit(pid: i32, exits: Option<&Path>) -> Option<i32> {
    let file = exits.map(|d| d.join(pid.to_string()));
    let fd = (pid > 0)
        .then(|| rustix::process::Pid::from_raw(pid))
        .flatten()
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let Some(fd) = fd else {
        return read_exit_file(file.as_deref()).await;
    };
    // a pidfd turns readable when its process ends
    // SAFETY: the AsyncFd owns the pidfd, so nothing else can close it (and have the number
    // reused) while it is registered with the reactor.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let _ = afd.readable().await.ok()?;
    match reap_pidfd(afd.get_ref()) {
        Some(code) => Some(code),
        None => read_exit_file(file.as_deref()).await,
    }
}

/// `waitid(P_PIDFD)`: the status if the process was our child (exactly this process is
/// reaped, never someone else's child).
fn reap_pidfd(fd: &OwnedFd) -> Option<i32> {
    use rustix::process::{WaitId, WaitIdOptions};
    let st = rustix::process::waitid(WaitId::PidFd(fd.as_fd()), WaitIdOptions::EXITED)
        .ok()
        .flatten()?;
    match (st.exit_status(), st.terminating_signal()) {
        (Some(code), _) => Some(code),
        (None, Some(sig)) => Some(128 + sig),
        _ => None,
    }
}

/// How long the keeper may take to write an exit file after the process ended.
const EXIT_FILE_WAIT: Duration = Duration::from_secs(2);

/// The exit code the keeper writes (by rename) into `file` right after reaping: watched for
/// with inotify, so it is read the moment it appears.
async fn read_exit_file(file: Option<&Path>) -> Option<i32> {
    let file = file?;
    let take = |f: &Path| {
        let s = std::fs::read_to_string(f).ok()?;
        let _ = std::fs::remove_file(f);
        s.trim().parse::<i32>().ok()
    };
    // watched before the first look: a rename in between is seen either way
    let Some(watch) = file.parent().and_then(|d| ExitWatch::new(d).ok()) else {
        return poll_exit_file(file).await;
    };
    let deadline = tokio::time::Instant::now() + EXIT_FILE_WAIT;
    loop {
        if let Some(code) = take(file) {
            return Some(code);
        }
        match tokio::time::timeout_at(deadline, watch.changed()).await {
            Ok(Ok(())) => continue,
            // gone wrong or too late: one last look
            _ => return take(file),
        }
    }
}

/// Without inotify: look every 5 ms.
async fn poll_exit_file(file: &Path) -> Option<i32> {
    let tries = EXIT_FILE_WAIT.as_millis() / 5;
    for _ in 0..tries {
        if let Ok(s) = std::fs::read_to_string(file) {
            let _ = std::fs::remove_file(file);
            return s.trim().parse().ok();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Files renamed into (or created in) a directory, as a readable inotify descriptor.
struct ExitWatch(tokio::io::unix::AsyncFd<OwnedFd>);

impl ExitWatch {
    fn new(dir: &Path) -> std::io::Result<ExitWatch> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::CREATE,
        )?;
        // SAFETY: the AsyncFd owns the inotify fd, so nothing else can close it (and have the
        // number reused) while it is registered with the reactor.
        let afd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }?;
        Ok(ExitWatch(afd))
    }

    /// Waits for events and consumes them.
    async fn changed(&self) -> std::io::Result<()> {
        let mut guard = self.0.readable().await?;
        let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
        let mut events = rustix::fs::inotify::Reader::new(self.0.get_ref(), &mut buf);
        loop {
            match events.next() {
                Ok(_) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    guard.clear_ready();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn nothing(_: libc::c_int) {}

    #[test]
    fn a_signal_does_not_fail_a_receive_with_a_timeout() {
        use std::os::unix::thread::JoinHandleExt;
        // SAFETY: a handler that does nothing, installed with SA_RESTART as tokio's are;
        // SIGUSR2 is not used elsewhere in this test binary.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = std::thread::spawn(move || recv_fds(&theirs));
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(40));
            // SAFETY: the thread is alive until it receives the message sent below.
            unsafe { libc::pthread_kill(reader.as_pthread_t(), libc::SIGUSR2) };
        }
        send_fds(&ours, b"ok 0", &[]).unwrap();
        let (text, fds) = reader.join().unwrap().unwrap();
        assert_eq!((text.as_str(), fds.len()), ("ok 0", 0));
    }

    #[tokio::test]
    async fn an_exit_file_is_read_when_it_appears_not_on_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("4242");
        let d = dir.path().to_path_buf();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            // as the keeper does: written aside, renamed into place
            std::fs::write(d.join(".4242"), "7").unwrap();
            std::fs::rename(d.join(".4242"), d.join("4242")).unwrap();
        });
        let t = std::time::Instant::now();
        assert_eq!(read_exit_file(Some(&file)).await, Some(7));
        assert!(t.elapsed() < EXIT_FILE_WAIT, "{:?}", t.elapsed());
        writer.await.unwrap();
        // read once, then gone
        assert!(!file.exists());
        // already there: read at once
        std::fs::write(&file, "3").unwrap();
        assert_eq!(read_exit_file(Some(&file)).await, Some(3));
    }
}
