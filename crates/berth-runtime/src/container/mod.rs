//! Containers under runc: prepare the root filesystem and bundle, create and start, signal,
//! exec, clean up. Stateless apart from the files it writes: the engine in berthd keeps the
//! container records and decides when each step happens.

pub mod archive;
pub mod archive_put;
pub mod bundle;
pub mod io;
pub mod keeper;
pub mod logfile;
pub mod mounts;
pub mod passwd;
pub mod resources;
pub mod rootfs;
pub mod runc;

use crate::{Error, Result};
pub use bundle::{BundleSpec, ProcessSpec};
pub use mounts::MountSpec;
use runc::{Runc, Stdio3};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Where one container's files live: `data` survives reboots (writable layer, logs, the
/// hosts/hostname/resolv.conf files), `run` does not (bundle, rootfs mount point, sockets).
#[derive(Debug, Clone)]
pub struct Paths {
    pub data: PathBuf,
    pub run: PathBuf,
}

impl Paths {
    /// Both output streams, timestamped (see `logfile`).
    pub fn log(&self) -> PathBuf {
        self.data.join("container.log")
    }
    pub fn hosts(&self) -> PathBuf {
        self.data.join("hosts")
    }
    pub fn hostname(&self) -> PathBuf {
        self.data.join("hostname")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.data.join("resolv.conf")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.run.join("rootfs")
    }
}

/// What to run.
pub struct RunSpec {
    /// Image layers, base first.
    pub layers: Vec<PathBuf>,
    pub hostname: String,
    pub netns: Option<PathBuf>,
    pub process: ProcessSpec,
    /// `-i`: keep a writable stdin for attach.
    pub open_stdin: bool,
    /// Binds, volumes and tmpfs mounts.
    pub mounts: Vec<MountSpec>,
    /// cgroup limits.
    pub resources: resources::Resources,
    /// Supplementary groups, numbers or names from the image's `/etc/group`.
    pub groups: Vec<String>,
}

/// A started container's init process.
pub struct Running {
    pub pid: i32,
    /// Where attach writes the user's input: the pty master (TTY) or a pipe (`-i`).
    pub stdin: Option<File>,
}

/// A started exec process and its ends of the streams.
pub struct ExecProcess {
    pub pid: i32,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// TTY execs: the pty master, for input and output.
    pub console: Option<OwnedFd>,
}

pub struct Runtime {
    runc: Runc,
    /// Holds TTY masters across daemon restarts (see `keeper`); none in unit tests.
    keeper: Option<keeper::Keeper>,
    /// The containers' output pumps: each says when the last output is in the log.
    pumps: std::sync::Mutex<std::collections::HashMap<String, std::sync::mpsc::Receiver<()>>>,
    data_dir: PathBuf,
    run_dir: PathBuf,
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> Error {
    Error::internal(format!("{what}: {e}"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    // std's pipe is close-on-exec
    let (r, w) = std::io::pipe().map_err(|e| io_err("pipe", e))?;
    Ok((r.into(), w.into()))
}

impl Runtime {
    /// `data_dir` = `<data-root>/containers`, `run_dir` = `<exec-root>/containers`.
    pub fn new(runc_binary: PathBuf, data_dir: PathBuf, run_dir: PathBuf) -> Result<Runtime> {
        let root = run_dir.join("runc");
        for d in [&data_dir, &run_dir, &root] {
            std::fs::create_dir_all(d).map_err(|e| io_err(d.display(), e))?;
        }
        Ok(Runtime {
            runc: Runc {
                binary: runc_binary,
                root,
                via: None,
            },
            keeper: None,
            pumps: Default::default(),
            data_dir,
            run_dir,
        })
    }

    /// Short on purpose: a unix socket path must fit in 108 bytes.
    fn console_path(&self, id: &str) -> PathBuf {
        self.run_dir
            .join(format!("{}.sock", &id[..12.min(id.len())]))
    }

    /// Blocks (≤ 1 s) until a container's last output is in its log, so that attach, logs
    /// and `docker run` see all of it before the exit is reported.
    pub fn drain_output(&self, id: &str) {
        let rx = self.pumps.lock().unwrap().remove(id);
        if let Some(rx) = rx {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(1));
        }
    }

    /// Starts (or finds) the keeper and runs runc through it from now on.
    pub fn use_keeper(&mut self, k: keeper::Keeper) -> Result<()> {
        k.ensure()
            .map_err(|e| Error::internal(format!("starting the fd keeper: {e}")))?;
        self.runc.via = Some(k.clone());
        self.keeper = Some(k);
        Ok(())
    }

    /// Waits for a process this runtime started to end (see `io::wait_exit`).
    pub async fn wait_exit(&self, pid: i32) -> Option<i32> {
        let exits = self.keeper.as_ref().map(|k| k.exits());
        io::wait_exit(pid, exits.as_deref()).await
    }

    pub fn paths(&self, id: &str) -> Paths {
        Paths {
            data: self.data_dir.join(id),
            run: self.run_dir.join(id),
        }
    }

    /// Creates the container's directories (for the files berth owns before it first runs).
    pub fn prepare(&self, id: &str) -> Result<Paths> {
        let p = self.paths(id);
        for d in [&p.data, &p.run] {
            std::fs::create_dir_all(d).map_err(|e| io_err(d.display(), e))?;
        }
        Ok(p)
    }

    /// Mounts the rootfs, writes the bundle, `runc run --detach`. Blocking. On
    /// failure nothing of the attempt remains (the rootfs is unmounted, runc's state deleted).
    pub fn start(&self, id: &str, spec: RunSpec) -> Result<Running> {
        let p = self.prepare(id)?;
        if self.runc.root.join(id).exists() {
            self.runc.delete(id);
        }
        rootfs::mount(
            &spec.layers,
            &p.data.join("upper"),
            &p.data.join("work"),
            &p.rootfs(),
        )?;
        let r = mounts::copy_up(&p.rootfs(), &spec.mounts)
            .and_then(|_| self.create_and_start(id, &p, spec));
        if r.is_err() {
            self.cleanup(id);
        }
        r
    }

    fn create_and_start(&self, id: &str, p: &Paths, spec: RunSpec) -> Result<Running> {
        let mut binds = vec![
            (p.hostname(), "/etc/hostname".to_string()),
            (p.hosts(), "/etc/hosts".to_string()),
        ];
        if p.resolv_conf().exists() {
            binds.push((p.resolv_conf(), "/etc/resolv.conf".to_string()));
        }
        let b = BundleSpec {
            rootfs: p.rootfs(),
            hostname: spec.hostname.clone(),
            netns: spec.netns.clone(),
            binds,
            mounts: spec.mounts.clone(),
        };
        let mut oci = bundle::spec(&b, &spec.process)?;
        bundle::set_resources(&mut oci, &spec.resources)?;
        bundle::set_groups(&mut oci, &p.rootfs(), &spec.groups)?;
        bundle::write(&p.run, &oci)?;
        let (pid, stdin) = if spec.process.tty {
            let sock_path = self.console_path(id);
            let sock = io::ConsoleSocket::bind(&sock_path)?;
            let rx = sock.receive();
            let created = self
                .runc
                .run_detached(id, &p.run, Some(&sock_path), Stdio3::null()?);
            if created.is_err() {
                io::ConsoleSocket::wake(&sock_path);
            }
            let master = rx
                .join()
                .map_err(|_| Error::internal("console thread panicked"))?;
            let pid = created?;
            let master = berth_api::fd::lift(master?);
            let input = File::from(master.try_clone().map_err(|e| io_err("dup console", e))?);
            if let Some(k) = &self.keeper {
                use std::os::fd::AsFd;
                if let Err(e) = k.put(id, master.as_fd()) {
                    tracing::warn!(
                        "container {id}: its terminal will not survive a daemon restart: {e}"
                    );
                }
            }
            let done = logfile::pump(vec![(logfile::STDOUT, master)], &p.log());
            self.pumps.lock().unwrap().insert(id.to_string(), done);
            (pid, Some(input))
        } else {
            let (stdin, writer) = if spec.open_stdin {
                let (r, w) = pipe()?;
                // Kept by the keeper too, so a berthd restart is not an end-of-file.
                if let Some(k) = &self.keeper {
                    use std::os::fd::AsFd;
                    if let Err(e) = k.put(&stdin_key(id), w.as_fd()) {
                        tracing::warn!("container {id}: its stdin will end with berthd: {e}");
                    }
                }
                (r, Some(File::from(w)))
            } else {
                (Stdio3::null()?.stdin, None)
            };
            let (out_r, out_w) = logfile::output_pipe().map_err(|e| io_err("pipe", e))?;
            let (err_r, err_w) = logfile::output_pipe().map_err(|e| io_err("pipe", e))?;
            // Kept by the keeper too: a berthd restart leaves the output waiting in the pipes
            // (and the container unharmed by SIGPIPE) until the next berthd pumps them.
            if let Some(k) = &self.keeper {
                use std::os::fd::AsFd;
                for (key, fd) in [(out_key(id), &out_r), (err_key(id), &err_r)] {
                    if let Err(e) = k.put(&key, fd.as_fd()) {
                        tracing::warn!("container {id}: its output may be lost with berthd: {e}");
                    }
                }
            }
            let stdio = Stdio3 {
                stdin,
                stdout: out_w,
                stderr: err_w,
            };
            let pid = self.runc.run_detached(id, &p.run, None, stdio)?;
            let done = logfile::pump(
                vec![(logfile::STDOUT, out_r), (logfile::STDERR, err_r)],
                &p.log(),
            );
            self.pumps.lock().unwrap().insert(id.to_string(), done);
            (pid, writer)
        };
        Ok(Running { pid, stdin })
    }

    /// Forgets the runc state and unmounts the rootfs; the container's files stay.
    /// After a daemon restart: the running TTY container's terminal, from the keeper, with
    /// its output copied to the log again. Returns the input end for attach.
    pub fn reattach_console(&self, id: &str) -> Option<File> {
        let master = self.keeper.as_ref()?.get(id)?;
        let input = File::from(master.try_clone().ok()?);
        let done = logfile::pump(vec![(logfile::STDOUT, master)], &self.paths(id).log());
        self.pumps.lock().unwrap().insert(id.to_string(), done);
        Some(input)
    }

    /// After a daemon restart: a running container's output pipes, from the keeper, pumped
    /// into its log again. Nothing for a container an older berthd started (it writes its
    /// legacy log files itself).
    pub fn reattach_output(&self, id: &str) {
        let Some(k) = self.keeper.as_ref() else {
            return;
        };
        let fds: Vec<_> = [
            (logfile::STDOUT, out_key(id)),
            (logfile::STDERR, err_key(id)),
        ]
        .into_iter()
        .filter_map(|(s, key)| Some((s, k.get(&key)?)))
        .collect();
        if !fds.is_empty() {
            let done = logfile::pump(fds, &self.paths(id).log());
            self.pumps.lock().unwrap().insert(id.to_string(), done);
        }
    }

    /// After a daemon restart: the write end of a `-i` container's stdin pipe.
    pub fn reattach_stdin(&self, id: &str) -> Option<File> {
        self.keeper.as_ref()?.get(&stdin_key(id)).map(File::from)
    }

    /// The user's input ended for good (`StdinOnce`): the keeper lets go of its copy, so the
    /// process sees end-of-file once berthd closes its own.
    pub fn release_stdin(&self, id: &str) {
        if let Some(k) = &self.keeper {
            k.del(&stdin_key(id));
        }
    }

    pub fn cleanup(&self, id: &str) {
        if let Some(k) = &self.keeper {
            k.del(id);
            k.del(&stdin_key(id));
            k.del(&out_key(id));
            k.del(&err_key(id));
        }
        if self.runc.root.join(id).exists() {
            self.runc.delete(id);
        }
        rootfs::unmount(&self.paths(id).rootfs());
    }

    /// Removes everything of the container, files included.
    pub fn remove(&self, id: &str) {
        self.cleanup(id);
        let p = self.paths(id);
        let _ = std::fs::remove_dir_all(&p.run);
        let _ = std::fs::remove_dir_all(&p.data);
    }

    /// `<data-root>/volumes`: where local volumes keep their data.
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_dir
            .parent()
            .unwrap_or(&self.data_dir)
            .join("volumes")
    }

    /// Runs `f` on the container's root filesystem, mounting it for the time of the call when
    /// the container does not run (`docker cp` on a stopped container). The caller keeps the
    /// container from starting or being removed meanwhile.
    pub fn with_rootfs<T>(
        &self,
        id: &str,
        layers: &[PathBuf],
        f: impl FnOnce(&std::path::Path) -> Result<T>,
    ) -> Result<T> {
        let p = self.prepare(id)?;
        let rootfs = p.rootfs();
        let was_mounted = rootfs::is_mounted(&rootfs);
        rootfs::mount(layers, &p.data.join("upper"), &p.data.join("work"), &rootfs)?;
        let r = f(&rootfs);
        if !was_mounted {
            rootfs::unmount(&rootfs);
        }
        r
    }

    /// Freezes every process of the container (`runc pause`: the freezer cgroup).
    pub fn pause(&self, id: &str) -> Result<()> {
        self.runc.verb(
            "pause",
            &["pause".into()],
            id,
            &self.paths(id).run.join("ctl.log"),
        )
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        self.runc.verb(
            "resume",
            &["resume".into()],
            id,
            &self.paths(id).run.join("ctl.log"),
        )
    }

    /// Changes the cgroup limits of the running container (`runc update -r`).
    pub fn update(&self, id: &str, r: &resources::Resources) -> Result<()> {
        let dir = self.paths(id).run;
        let file = dir.join("resources.json");
        let body = serde_json::to_vec(&r.to_oci()).map_err(|e| Error::internal(e.to_string()))?;
        std::fs::write(&file, body).map_err(|e| io_err(file.display(), e))?;
        let r = self.runc.verb(
            "update",
            &["update".into(), "-r".into(), file.clone().into()],
            id,
            &dir.join("ctl.log"),
        );
        let _ = std::fs::remove_file(&file);
        r
    }

    pub fn state(&self, id: &str) -> Option<runc::State> {
        self.runc.state(id)
    }

    /// Starts a process in the running container (`docker exec`). Blocking. `detached`
    /// (`exec -d`): its stdio is /dev/null, since nobody will read a pipe or hold a terminal.
    pub fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &ProcessSpec,
        stdin: bool,
        detached: bool,
    ) -> Result<ExecProcess> {
        let dir = self.paths(id).run.join("exec").join(exec_id);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(dir.display(), e))?;
        let pj = dir.join("process.json");
        let proc_ = bundle::process(process, &self.paths(id).rootfs())?;
        let body = serde_json::to_vec(&proc_).map_err(|e| Error::internal(e.to_string()))?;
        std::fs::write(&pj, body).map_err(|e| io_err(pj.display(), e))?;
        let r = if detached {
            let pid = self.runc.exec(id, &dir, &pj, None, Stdio3::null()?)?;
            Ok(ExecProcess {
                pid,
                stdin: None,
                stdout: None,
                stderr: None,
                console: None,
            })
        } else if process.tty {
            let sock_path = self.console_path(exec_id);
            let sock = io::ConsoleSocket::bind(&sock_path)?;
            let rx = sock.receive();
            let started = self
                .runc
                .exec(id, &dir, &pj, Some(&sock_path), Stdio3::null()?);
            if started.is_err() {
                io::ConsoleSocket::wake(&sock_path);
            }
            let master = rx
                .join()
                .map_err(|_| Error::internal("console thread panicked"))?;
            let pid = started?;
            Ok(ExecProcess {
                pid,
                stdin: None,
                stdout: None,
                stderr: None,
                console: Some(master?),
            })
        } else {
            let (in_r, in_w) = if stdin {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                (Stdio3::null()?.stdin, None)
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let pid = self.runc.exec(
                id,
                &dir,
                &pj,
                None,
                Stdio3 {
                    stdin: in_r,
                    stdout: out_w,
                    stderr: err_w,
                },
            )?;
            Ok(ExecProcess {
                pid,
                stdin: in_w,
                stdout: Some(out_r),
                stderr: Some(err_r),
                console: None,
            })
        };
        let _ = std::fs::remove_dir_all(&dir);
        r
    }
}

fn stdin_key(id: &str) -> String {
    format!("{id}.in")
}

fn out_key(id: &str) -> String {
    format!("{id}.out")
}

fn err_key(id: &str) -> String {
    format!("{id}.err")
}
