//! The engine: containers and networks together. It owns the container registry, asks the
//! runtime to run containers and the network controller to give them sandboxes and endpoints.
//!
//! Locking: the registry mutex is held only to look up or insert; each container has its own
//! `op` lock serialising start/exit-cleanup/remove of that one container, so containers start
//! in parallel. State changes are published on a watch channel that `wait`, `stop`, attach and
//! logs followers listen to.

mod archive;
mod create;
mod diagnose;
mod epconf;
mod exec;
pub mod filter;
pub mod lifecycle;
mod links;
pub mod logconf;
pub mod mounts;
mod names;
mod netconf;
mod pause;
mod pidfd;
mod port_runs;
mod ports;
mod prune;
pub mod record;
mod resources;
pub mod restart;
pub mod stats;
pub mod streams;
mod top;
mod update;
mod view;
pub mod volumes;

use berth_net::store::Store;
use berth_net::{Controller, NetError};
use berth_runtime::container::Runtime;
use berth_runtime::image::ImageStore;
pub use exec::Exec;
use record::{Record, CONTAINERS};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub type Result<T> = std::result::Result<T, NetError>;

/// A container known to the engine.
pub struct Ctr {
    pub id: String,
    pub rec: Mutex<Record>,
    /// Where attach writes input (TTY master or stdin pipe), while running with `-i`/`-t`.
    pub stdin: Mutex<Option<File>>,
    /// Bumped on every change of state.
    changed: watch::Sender<u64>,
    /// How many times the container's process has ended.
    pub exits: AtomicU64,
    pub removed: AtomicBool,
    /// The running process, signalled through this (never by pid) until its exit is seen.
    pub proc: Mutex<Option<pidfd::Proc>>,
    /// The restart policy's back-off (in memory: a daemon restart starts it over).
    backoff: Mutex<restart::Backoff>,
    op: tokio::sync::Mutex<()>,
}

impl Ctr {
    fn new(rec: Record) -> Arc<Ctr> {
        Arc::new(Ctr {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            stdin: Mutex::new(None),
            changed: watch::channel(0).0,
            exits: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            proc: Mutex::new(None),
            backoff: Mutex::new(restart::Backoff::default()),
            op: tokio::sync::Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Record {
        self.rec.lock().unwrap().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g += 1);
    }

    pub fn exits(&self) -> u64 {
        self.exits.load(Ordering::SeqCst)
    }
}

pub struct Engine {
    pub net: Arc<Controller>,
    pub images: Arc<ImageStore>,
    pub rt: Arc<Runtime>,
    store: Store,
    ctrs: Mutex<BTreeMap<String, Arc<Ctr>>>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Engine {
    pub async fn start(
        net: Arc<Controller>,
        images: Arc<ImageStore>,
        rt: Arc<Runtime>,
        store: Store,
    ) -> anyhow::Result<Arc<Engine>> {
        let e = Arc::new(Engine {
            net,
            images,
            rt,
            store,
            ctrs: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(HashMap::new()),
        });
        let recs = e
            .store
            .list::<Record>(CONTAINERS)
            .map_err(|err| anyhow::anyhow!("loading containers: {err}"))?;
        for (_, rec) in recs {
            let c = Ctr::new(rec);
            e.ctrs.lock().unwrap().insert(c.id.clone(), c.clone());
            e.clone().restore(c).await;
        }
        Ok(e)
    }

    /// A container by full id, name (with or without `/`) or unique id prefix.
    pub fn find(&self, key: &str) -> Result<Arc<Ctr>> {
        let ctrs = self.ctrs.lock().unwrap();
        if let Some(c) = ctrs.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = ctrs.values().find(|c| c.rec.lock().unwrap().name == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut m = ctrs
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key));
            if let Some((_, c)) = m.next() {
                if m.next().is_none() {
                    return Ok(c.clone());
                }
                return Err(NetError::invalid(format!(
                    "Multiple IDs found with provided prefix: {key}"
                )));
            }
        }
        Err(no_such_container(key))
    }

    pub fn all(&self) -> Vec<Arc<Ctr>> {
        self.ctrs.lock().unwrap().values().cloned().collect()
    }

    /// A container (its id) that uses the image `image_id`, if any: such an image cannot be
    /// removed without force.
    pub fn image_user(&self, image_id: &str) -> Option<String> {
        self.all()
            .into_iter()
            .find(|c| c.rec.lock().unwrap().image_id == image_id)
            .map(|c| c.id.clone())
    }

    fn persist(&self, rec: &Record) -> Result<()> {
        self.store
            .put(CONTAINERS, &rec.id, rec)
            .map_err(|e| NetError::internal(e.to_string()))
    }

    /// Applies `f` to the record, saves it and tells the listeners.
    fn update(&self, c: &Ctr, f: impl FnOnce(&mut Record)) -> Result<Record> {
        let rec = {
            let mut r = c.rec.lock().unwrap();
            f(&mut r);
            r.clone()
        };
        let res = self.persist(&rec);
        c.bump();
        res.map(|_| rec)
    }
}

/// Runs blocking runtime or image-store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_runtime::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetError::internal(e.to_string()))?
}

pub fn no_such_container(key: &str) -> NetError {
    NetError::not_found(format!("No such container: {key}"))
}

pub fn not_running(id: &str) -> NetError {
    NetError::conflict(format!("Container {id} is not running"))
}
