//! The fd keeper: one small process per daemon (not per container) that holds the ends of
//! containers' terminals and stdin pipes, so they outlive a berthd restart or crash. Without
//! it, the pty master would close with berthd and the kernel would hang up every `-t`
//! container's shell. It only holds descriptors; berthd does all the reading and writing.
//!
//! Protocol: one request per connection on a unix socket; a line `PUT key`, `GET key` or
//! `DEL key`, with the fd attached to a PUT; the answer is `ok` (with the fd for a GET) or `no`.

use super::io::recv_fd_with;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keeper's main loop (`berthd keeper SOCKET`). Exits once it holds nothing.
pub fn serve(sock: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock)?;
    let ino = std::fs::metadata(sock)?.ino();
    let mut held: HashMap<String, OwnedFd> = HashMap::new();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let Ok((line, fd)) = recv_fd_with(conn.as_raw_fd()) else {
            continue;
        };
        let mut parts = line.split_whitespace();
        let (verb, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let reply_ok = |conn: &UnixStream, fd: Option<BorrowedFd>| {
            let _ = super::io::send_fd_with(conn.as_raw_fd(), b"ok", fd);
        };
        match (verb, fd) {
            ("PUT", Some(fd)) if !key.is_empty() => {
                held.insert(key.to_string(), fd);
                reply_ok(&conn, None);
            }
            ("GET", _) => match held.get(key) {
                Some(fd) => {
                    use std::os::fd::AsFd;
                    reply_ok(&conn, Some(fd.as_fd()));
                }
                None => {
                    let _ = (&conn).write_all(b"no");
                }
            },
            ("DEL", _) => {
                held.remove(key);
                reply_ok(&conn, None);
                if held.is_empty() {
                    break;
                }
            }
            _ => {
                let _ = (&conn).write_all(b"no");
            }
        }
    }
    // Only our own socket: a successor may already have bound a new one (berthd starts one
    // when a request finds this keeper gone); the request it raced with is retried there.
    if std::fs::metadata(sock).is_ok_and(|m| m.ino() == ino) {
        let _ = std::fs::remove_file(sock);
    }
    Ok(())
}

/// berthd's side.
#[derive(Debug, Clone)]
pub struct Keeper {
    pub sock: PathBuf,
    /// The program to start it: berthd itself, with `keeper SOCKET` as arguments.
    pub exe: PathBuf,
}

impl Keeper {
    fn ask(&self, line: &str, fd: Option<BorrowedFd>) -> std::io::Result<Option<OwnedFd>> {
        let conn = UnixStream::connect(&self.sock)?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        super::io::send_fd_with(conn.as_raw_fd(), line.as_bytes(), fd)?;
        let (answer, got) = recv_fd_with(conn.as_raw_fd())?;
        if answer != "ok" {
            return Err(std::io::Error::other(format!("keeper answered {answer:?}")));
        }
        Ok(got)
    }

    fn spawn(&self) -> std::io::Result<()> {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new(&self.exe);
        c.arg("keeper")
            .arg(&self.sock)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        unsafe {
            // Its own session: a signal to berthd's process group must not reach it.
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = c.spawn()?;
        // Reap it whenever it exits; berthd is a subreaper and must not collect zombies.
        std::thread::spawn(move || child.wait());
        for _ in 0..200 {
            if UnixStream::connect(&self.sock).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(std::io::Error::other("the fd keeper did not start"))
    }

    /// Hands `fd` to the keeper under `key`, starting the keeper if none runs.
    pub fn put(&self, key: &str, fd: BorrowedFd) -> std::io::Result<()> {
        let line = format!("PUT {key}");
        if self.ask(&line, Some(fd)).is_ok() {
            return Ok(());
        }
        self.spawn()?;
        self.ask(&line, Some(fd)).map(|_| ())
    }

    /// A copy of what the keeper holds under `key`.
    pub fn get(&self, key: &str) -> Option<OwnedFd> {
        self.ask(&format!("GET {key}"), None).ok().flatten()
    }

    pub fn del(&self, key: &str) {
        let _ = self.ask(&format!("DEL {key}"), None);
    }
}
