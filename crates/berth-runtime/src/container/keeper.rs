//! The fd keeper: one small process per daemon (not per container) that outlives berthd
//! restarts and crashes. It
//! - holds the pty masters of `-t` containers, so their shells are not hung up when berthd
//!   goes away (berthd does all the reading and writing; the keeper only holds them);
//! - runs `runc run`/`runc exec` for berthd and, being a child subreaper, becomes the parent of
//!   every container process once runc exits: it reaps them and writes each exit status to
//!   `<dir>/exits/<pid>`, so the status of a container that ends while berthd is down or after
//!   a restart is still known.
//!
//! Protocol: one request per connection on a unix socket: `PUT key` (+1 fd), `GET key`,
//! `DEL key`, or `RUN ["prog", "arg", ...]` (+ stdin, stdout, stderr). Answers: `ok`, `ok <exit
//! code>` for RUN, with the fd for GET, or `no`.

use super::io::{recv_fds, send_fds};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the keeper writes exit statuses, next to its socket.
pub fn exits_dir(sock: &Path) -> PathBuf {
    sock.with_file_name("exits")
}

type Held = Arc<Mutex<HashMap<String, OwnedFd>>>;
/// Pids of the runc processes a request thread waits for itself.
type Pending = Arc<Mutex<HashSet<u32>>>;

/// The keeper's main loop (`berthd keeper SOCKET`). It runs until killed: it is the parent of
/// the containers.
pub fn serve(sock: &Path) -> std::io::Result<()> {
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let exits = exits_dir(sock);
    std::fs::create_dir_all(&exits)?;
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock)?;
    let held: Held = Default::default();
    let pending: Pending = Default::default();
    {
        let pending = pending.clone();
        std::thread::spawn(move || reap(&exits, &pending));
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (held, pending) = (held.clone(), pending.clone());
        // A RUN waits for runc (tens of ms): requests must not queue behind each other.
        std::thread::spawn(move || handle(conn, &held, &pending));
    }
    Ok(())
}

fn handle(conn: UnixStream, held: &Held, pending: &Pending) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok((line, mut fds)) = recv_fds(conn.as_raw_fd()) else {
        return;
    };
    let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    let answer = match verb {
        "PUT" if !rest.is_empty() && fds.len() == 1 => {
            held.lock().unwrap().insert(rest.to_string(), fds.remove(0));
            "ok".to_string()
        }
        "GET" => {
            let h = held.lock().unwrap();
            if let Some(fd) = h.get(rest) {
                let _ = send_fds(conn.as_raw_fd(), b"ok", &[fd.as_fd()]);
                return;
            }
            "no".to_string()
        }
        "DEL" => {
            held.lock().unwrap().remove(rest);
            "ok".to_string()
        }
        "RUN" if fds.len() == 3 => match run(rest, fds, pending) {
            Ok(code) => format!("ok {code}"),
            Err(e) => format!("no {e}"),
        },
        _ => "no".to_string(),
    };
    let _ = (&conn).write_all(answer.as_bytes());
}

fn run(argv: &str, fds: Vec<OwnedFd>, pending: &Pending) -> std::io::Result<i32> {
    let argv: Vec<String> = serde_json::from_str(argv).map_err(std::io::Error::other)?;
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut fds = fds.into_iter();
    let mut c = std::process::Command::new(prog);
    c.args(args)
        .stdin(fds.next().unwrap())
        .stdout(fds.next().unwrap())
        .stderr(fds.next().unwrap());
    // Registered before the reaper can see it exit (the reaper takes this lock to decide).
    let mut child = {
        let mut p = pending.lock().unwrap();
        let child = c.spawn()?;
        p.insert(child.id());
        child
    };
    let st = child.wait();
    pending.lock().unwrap().remove(&child.id());
    Ok(st?.code().unwrap_or(128))
}

/// Reaps every child that is not a pending runc and records its status.
fn reap(exits: &Path, pending: &Pending) {
    loop {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // Look without reaping: a pending runc belongs to the thread that waits for it.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc != 0 {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let pid = unsafe { info.si_pid() };
        let p = pending.lock().unwrap();
        if p.contains(&(pid as u32)) {
            drop(p);
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
        drop(p);
        let code = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            128 + libc::WTERMSIG(st)
        };
        let tmp = exits.join(format!(".{pid}"));
        if std::fs::write(&tmp, code.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, exits.join(pid.to_string()));
        }
    }
}

/// berthd's side.
#[derive(Debug, Clone)]
pub struct Keeper {
    pub sock: PathBuf,
    /// The program to start it: berthd itself, with `keeper SOCKET` as arguments.
    pub exe: PathBuf,
}

impl Keeper {
    fn ask(&self, line: &str, fds: &[BorrowedFd]) -> std::io::Result<(String, Option<OwnedFd>)> {
        let conn = UnixStream::connect(&self.sock)?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        send_fds(conn.as_raw_fd(), line.as_bytes(), fds)?;
        let (answer, got) = recv_fds(conn.as_raw_fd())?;
        if answer != "ok" && !answer.starts_with("ok ") {
            return Err(std::io::Error::other(format!("keeper answered {answer:?}")));
        }
        Ok((answer, got.into_iter().next()))
    }

    /// Starts the keeper unless one answers. Called once when berthd starts.
    pub fn ensure(&self) -> std::io::Result<()> {
        if UnixStream::connect(&self.sock).is_ok() {
            return Ok(());
        }
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
        // Reap it if it ever exits, so no zombie stays behind.
        std::thread::spawn(move || child.wait());
        for _ in 0..400 {
            if UnixStream::connect(&self.sock).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(std::io::Error::other("the fd keeper did not start"))
    }

    pub fn exits(&self) -> PathBuf {
        exits_dir(&self.sock)
    }

    /// Runs `argv` as the keeper's child with the given stdio; its exit code.
    pub fn run(&self, argv: &[String], stdio: [BorrowedFd; 3]) -> std::io::Result<i32> {
        let line = format!("RUN {}", serde_json::to_string(argv)?);
        let (answer, _) = self.ask(&line, &stdio)?;
        answer
            .strip_prefix("ok ")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("keeper answered {answer:?}")))
    }

    /// Hands `fd` to the keeper under `key`.
    pub fn put(&self, key: &str, fd: BorrowedFd) -> std::io::Result<()> {
        self.ask(&format!("PUT {key}"), &[fd]).map(|_| ())
    }

    /// A copy of what the keeper holds under `key`.
    pub fn get(&self, key: &str) -> Option<OwnedFd> {
        self.ask(&format!("GET {key}"), &[]).ok()?.1
    }

    pub fn del(&self, key: &str) {
        let _ = self.ask(&format!("DEL {key}"), &[]);
    }
}
