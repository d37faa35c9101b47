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
//! code>` for RUN, with the fd for GET, or `no`. Whoever reaches the socket runs any command
//! line as root: it is 0600 in a 0700 directory, and only berthd's uid gets an answer.

use super::io::{recv_fds, send_fds};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit, WaitIdOptions, WaitOptions};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

/// Where the keeper writes exit statuses, next to its socket.
pub fn exits_dir(sock: &Path) -> PathBuf {
    sock.with_file_name("exits")
}

/// What the keeper prints on its stdout once it listens: berthd waits for it.
const READY: &str = "ready";

type Held = Arc<Mutex<HashMap<String, OwnedFd>>>;

/// The runc processes request threads wait for: the reaper hands them their exit code.
#[derive(Default)]
struct Children {
    pending: Mutex<HashMap<u32, mpsc::Sender<i32>>>,
    /// Signalled when a child is spawned: the reaper sleeps on it while there is none.
    spawned: Condvar,
}

/// The open-file limit the keeper was started with (berthd's own, before berthd raised it).
static GIVEN: std::sync::OnceLock<Rlimit> = std::sync::OnceLock::new();

/// The keeper holds two or three descriptors per running container (output pipes, stdin, a
/// terminal), so a soft limit of 1,024 would fail starts past a few hundred containers: it
/// raises its own as far as the kernel allows. runc, and so every container, still gets the
/// limit berthd was started with (restored in `run`'s child).
fn raise_own_limit() -> Rlimit {
    let given = getrlimit(Resource::Nofile);
    let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let hard = given.maximum.map_or(max, |h| h.max(max));
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    // raising the hard limit needs CAP_SYS_RESOURCE; without it, the soft one up to it
    if setrlimit(Resource::Nofile, raised).is_err() {
        let soft = Rlimit {
            current: given.maximum,
            maximum: given.maximum,
        };
        let _ = setrlimit(Resource::Nofile, soft);
    }
    *GIVEN.get_or_init(|| given)
}

/// The keeper's main loop (`berthd keeper SOCKET`). It runs until killed: it is the parent of
/// the containers.
pub fn serve(sock: &Path) -> std::io::Result<()> {
    // PR_SET_CHILD_SUBREAPER takes a flag; rustix passes it as a pid (any non-zero sets it)
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    raise_own_limit();
    let exits = exits_dir(sock);
    let listener = listen(sock)?;
    std::fs::create_dir_all(&exits)?;
    // berthd reads this line instead of polling the socket; it may be gone already
    let _ = writeln!(std::io::stdout(), "{READY}");
    let me = rustix::process::geteuid().as_raw();
    let held: Held = Default::default();
    let children: Arc<Children> = Default::default();
    {
        let children = children.clone();
        std::thread::spawn(move || reap(&exits, &children));
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (held, children) = (held.clone(), children.clone());
        // A RUN waits for runc (tens of ms): requests must not queue behind each other.
        std::thread::spawn(move || handle(conn, &held, &children, me));
    }
    Ok(())
}

/// Binds the keeper's socket: whoever talks to it runs any command line as root, so it is
/// 0600 in a 0700 directory owned by us, both with that mode from their creation.
pub fn listen(sock: &Path) -> std::io::Result<UnixListener> {
    let dir = sock
        .parent()
        .ok_or_else(|| std::io::Error::other("the keeper's socket needs a directory"))?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(std::io::Error::other(format!(
            "{} is not a directory owned by uid {me}",
            dir.display()
        )));
    }
    // one made by an older berthd may be wider
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let _ = std::fs::remove_file(sock);
    // bind creates the socket file with the umask's mode. The umask is the process's: this
    // runs before the keeper starts any thread.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(sock);
    rustix::process::umask(old);
    bound
}

/// Only a process of berthd's uid may talk to the keeper (the directory's mode says the same;
/// this holds even if the socket is reached some other way, such as an inherited fd).
fn peer_allowed(conn: &UnixStream, uid: u32) -> bool {
    match rustix::net::sockopt::socket_peercred(conn) {
        Ok(cred) => cred.uid.as_raw() == uid,
        Err(_) => false,
    }
}

fn handle(conn: UnixStream, held: &Held, children: &Children, uid: u32) {
    if !peer_allowed(&conn, uid) {
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok((line, mut fds)) = recv_fds(&conn) else {
        return;
    };
    let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    let answer = match verb {
        "PUT" if !rest.is_empty() && fds.len() == 1 => {
            lock(held).insert(rest.to_string(), fds.remove(0));
            "ok".to_string()
        }
        "GET" => {
            let h = lock(held);
            if let Some(fd) = h.get(rest) {
                let _ = send_fds(&conn, b"ok", &[fd.as_fd()]);
                return;
            }
            "no".to_string()
        }
        "DEL" => {
            lock(held).remove(rest);
            "ok".to_string()
        }
        "RUN" if fds.len() == 3 => match run(rest, fds, children) {
            Ok(code) => format!("ok {code}"),
            Err(e) => format!("no {e}"),
        },
        _ => "no".to_string(),
    };
    let _ = (&conn).write_all(answer.as_bytes());
}

/// A poisoned lock only means another request thread panicked: the map is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(argv: &str, fds: Vec<OwnedFd>, children: &Children) -> std::io::Result<i32> {
    let argv: Vec<String> = serde_json::from_str(argv).map_err(std::io::Error::other)?;
    let Some((prog, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let [stdin, stdout, stderr]: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| std::io::Error::other("three fds expected"))?;
    let mut c = std::process::Command::new(prog);
    c.args(args).stdin(stdin).stdout(stdout).stderr(stderr);
    if let Some(given) = GIVEN.get().copied() {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit (prlimit64) is async-signal-safe; `given` is a plain copy and
        // nothing is allocated in the child.
        unsafe {
            c.pre_exec(move || {
                let _ = setrlimit(Resource::Nofile, given);
                Ok(())
            });
        }
    }
    // Spawned and registered under the lock the reaper takes before it decides whose exit
    // it reaped; the reaper waits on `spawned` under that same lock, so no wake-up is lost.
    let (tx, rx) = mpsc::channel();
    {
        let mut p = lock(&children.pending);
        let child = c.spawn()?;
        p.insert(child.id(), tx);
        children.spawned.notify_all();
    }
    rx.recv()
        .map_err(|_| std::io::Error::other("the reaper stopped"))
}

/// Reaps every child: a pending runc's code goes to the thread that ran it, anything else
/// (containers, reparented to us) is recorded under `exits`.
fn reap(exits: &Path, children: &Children) {
    loop {
        // Block until some child is waitable without reaping it, then reap under the lock: a
        // spawn whose exec failed is reaped by std itself (within spawn, under that lock), and
        // must not be reaped here first.
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        match rustix::process::waitid(rustix::process::WaitId::All, opts) {
            Ok(Some(_)) => {}
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => {
                // no child at all: sleep until run() spawns one
                let p = lock(&children.pending);
                if !has_children() {
                    drop(children.spawned.wait(p));
                }
                continue;
            }
        }
        let mut p = lock(&children.pending);
        // `wait` is wait4(-1): `waitpid(None)` would be wait4(0), our process group only, and
        // the containers reparented to us are in theirs
        let Ok(Some((pid, st))) = rustix::process::wait(WaitOptions::NOHANG) else {
            continue;
        };
        let pid = pid.as_raw_nonzero().get();
        let code = match (st.exit_status(), st.terminating_signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            _ => 128,
        };
        if let Some(tx) = p.remove(&(pid as u32)) {
            let _ = tx.send(code);
            continue;
        }
        drop(p);
        let tmp = exits.join(format!(".{pid}"));
        if std::fs::write(&tmp, code.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, exits.join(pid.to_string()));
        }
    }
}

/// Whether any child exists (exited or not), without reaping one.
fn has_children() -> bool {
    let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    rustix::process::waitid(rustix::process::WaitId::All, opts).is_ok()
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
        send_fds(&conn, line.as_bytes(), fds)?;
        let (answer, got) = recv_fds(&conn)?;
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
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        // Its own session: a signal to berthd's process group must not reach it.
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = c.spawn()?;
        // The keeper prints a line once it listens, or exits (end of file) if it cannot; a
        // thread reads it so that a keeper stuck before it listens cannot stall berthd.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
        }
        // Reap it if it ever exits, so no zombie stays behind.
        std::thread::spawn(move || child.wait());
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.trim_end() == READY => Ok(()),
            _ => Err(std::io::Error::other("the fd keeper did not start")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::process::CommandExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_socket_is_0600_in_a_0700_directory_even_one_left_wider() {
        let dir = tempfile::tempdir().unwrap();
        let kdir = dir.path().join("keeper");
        std::fs::create_dir(&kdir).unwrap();
        std::fs::set_permissions(&kdir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = kdir.join("keeper.sock");
        let _l = listen(&sock).unwrap();
        assert!(std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket());
        assert_eq!(mode(&sock), 0o600);
        assert_eq!(mode(&kdir), 0o700);
        // a fresh one is made 0700
        let fresh = dir.path().join("new").join("keeper.sock");
        let _l = listen(&fresh).unwrap();
        assert_eq!(mode(fresh.parent().unwrap()), 0o700);
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn a_directory_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("k")).unwrap();
        let e = listen(&dir.path().join("k").join("keeper.sock")).unwrap_err();
        assert!(e.to_string().contains("not a directory owned"), "{e}");
    }

    /// Sends `line` through `handle` as a peer that is (or is not) the allowed uid.
    fn ask(line: &str, allowed: u32) -> String {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let held: Held = Default::default();
        let children = Children::default();
        send_fds(&ours, line.as_bytes(), &[]).unwrap();
        handle(theirs, &held, &children, allowed);
        let mut answer = String::new();
        // a refused peer sees its unread request dropped: a reset, or an empty answer
        let _ = (&ours).read_to_string(&mut answer);
        answer
    }

    #[test]
    fn only_berthds_uid_gets_an_answer() {
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(ask("DEL x", me), "ok");
        assert_eq!(ask("DEL x", me.wrapping_add(1)), "");
    }

    #[test]
    fn berthd_waits_for_the_keepers_ready_line_not_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let k = |exe| Keeper {
            sock: dir.path().join("k").join("keeper.sock"),
            exe,
        };
        k(script("ready", "echo ready; sleep 1")).ensure().unwrap();
        let e = k(script("fails", "exit 1")).ensure().unwrap_err();
        assert!(e.to_string().contains("did not start"), "{e}");
    }

    #[test]
    fn the_keeper_raises_its_own_file_limit_and_runc_gets_the_given_one() {
        // started as on a stock machine: a soft limit of 1,024 under a higher hard one
        let start = getrlimit(Resource::Nofile);
        let soft = Rlimit {
            current: Some(1024),
            maximum: start.maximum,
        };
        setrlimit(Resource::Nofile, soft).unwrap();
        let given = raise_own_limit();
        assert_eq!(given, soft);
        let own = getrlimit(Resource::Nofile);
        assert!(own.current > given.current, "{own:?} {given:?}");
        let dir = tempfile::tempdir().unwrap();
        let children: Arc<Children> = Default::default();
        {
            let (exits, children) = (dir.path().to_path_buf(), children.clone());
            std::thread::spawn(move || reap(&exits, &children));
        }
        let out = dir.path().join("out");
        let fd = |p: &Path| OwnedFd::from(std::fs::File::create(p).unwrap());
        let null = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let argv = r#"["/bin/sh", "-c", "ulimit -Sn; ulimit -Hn"]"#;
        let code = run(
            argv,
            vec![null, fd(&out), fd(&dir.path().join("err"))],
            &children,
        );
        assert_eq!(code.unwrap(), 0);
        let shown = |l: Option<u64>| l.map_or("unlimited".to_string(), |n| n.to_string());
        let want = format!("{}\n{}\n", shown(given.current), shown(given.maximum));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    }

    #[test]
    fn run_reports_the_exit_code_and_the_reaper_records_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let exits = dir.path().to_path_buf();
        let children: Arc<Children> = Default::default();
        {
            let (exits, children) = (exits.clone(), children.clone());
            std::thread::spawn(move || reap(&exits, &children));
        }
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let argv = r#"["/bin/sh", "-c", "exit 7"]"#;
        assert_eq!(
            run(argv, vec![null(), null(), null()], &children).unwrap(),
            7
        );
        // a child nobody waits for (a container, for the real keeper) lands in `exits`
        // reaped by the reaper under test, not here
        #[allow(clippy::zombie_processes)]
        let stray = {
            let _p = lock(&children.pending);
            // in a process group of its own, like the containers
            let c = std::process::Command::new("/bin/sh")
                .args(["-c", "exit 3"])
                .process_group(0)
                .spawn()
                .unwrap();
            children.spawned.notify_all();
            c.id()
        };
        let file = exits.join(stray.to_string());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "3");
        let missing = r#"["/nonexistent/runc"]"#;
        assert!(run(missing, vec![null(), null(), null()], &children).is_err());
        assert_eq!(
            run(argv, vec![null(), null(), null()], &children).unwrap(),
            7
        );
    }
}
