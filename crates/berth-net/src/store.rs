//! The local store: one redb file under the data root holding every object berth must remember
//! across restarts, as JSON values keyed by id.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

pub const NETWORKS: &str = "networks";
/// This host's copy of the global networks (the cluster store holds them): a restart while
/// the store is unreachable keeps its overlay containers.
pub const GLOBAL_NETWORKS: &str = "global_networks";
pub const META: &str = "meta";
/// Containers' attachments, keyed by endpoint id.
pub const ENDPOINTS: &str = "endpoints";
/// Containers' network namespaces, keyed by container id.
pub const SANDBOXES: &str = "sandboxes";
/// Containers' published ports, keyed by container id.
pub const PORTS: &str = "ports";

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Cheap to clone: the engine keeps its container records in the same file.
#[derive(Clone)]
pub struct Store {
    db: std::sync::Arc<Database>,
}

fn table(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // Container environments (secrets) live in this file: 0600 from its creation, and an
        // older file made with the umask's mode is narrowed.
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(err)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        // A small cache is plenty: the daemon keeps its working state in memory and reads the
        // file only at start.
        let db = Database::builder()
            .set_cache_size(4 << 20)
            .create(path)
            .map_err(err)?;
        Ok(Store {
            db: std::sync::Arc::new(db),
        })
    }

    /// Writes several values and deletions in one durable transaction.
    pub fn commit(&self, ops: &[Op<'_>]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        apply(&tx, ops)?;
        tx.commit().map_err(err)
    }

    /// Like `commit`, but the operations are computed once the write transaction has begun.
    /// redb runs one write transaction at a time, so values snapshotted from shared memory
    /// state inside `ops` reach the file in the order they were taken: a later commit never
    /// overwrites a newer snapshot with an older one.
    pub fn commit_with<'a>(
        &self,
        ops: impl FnOnce() -> Result<Vec<Op<'a>>, StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        apply(&tx, &ops()?)?;
        tx.commit().map_err(err)
    }

    /// Holds the file's write lock until the transaction is dropped: a test's way to stop
    /// every commit before it is made.
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> redb::WriteTransaction {
        self.db.begin_write().unwrap()
    }

    pub fn put<T: Serialize>(&self, t: &str, key: &str, v: &T) -> Result<(), StoreError> {
        self.commit(&[Op::put(t, key, v)?])
    }

    pub fn delete(&self, t: &str, key: &str) -> Result<(), StoreError> {
        self.commit(&[Op::Delete(t, key)])
    }

    pub fn get<T: DeserializeOwned>(&self, t: &str, key: &str) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let tab = match tx.open_table(table(t)) {
            Ok(tab) => tab,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        match tab.get(key).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    pub fn list<T: DeserializeOwned>(&self, t: &str) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let tab = match tx.open_table(table(t)) {
            Ok(tab) => tab,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for item in tab.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((
                k.value().to_string(),
                serde_json::from_slice(v.value()).map_err(err)?,
            ));
        }
        Ok(out)
    }
}

pub enum Op<'a> {
    Put(&'a str, &'a str, Vec<u8>),
    Delete(&'a str, &'a str),
}

fn apply(tx: &redb::WriteTransaction, ops: &[Op<'_>]) -> Result<(), StoreError> {
    for op in ops {
        match op {
            Op::Put(t, k, v) => {
                tx.open_table(table(t))
                    .map_err(err)?
                    .insert(*k, v.as_slice())
                    .map_err(err)?;
            }
            Op::Delete(t, k) => {
                tx.open_table(table(t))
                    .map_err(err)?
                    .remove(*k)
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

impl<'a> Op<'a> {
    pub fn put<T: Serialize>(t: &'a str, k: &'a str, v: &T) -> Result<Op<'a>, StoreError> {
        Ok(Op::Put(t, k, serde_json::to_vec(v).map_err(err)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.get::<u32>(NETWORKS, "a").unwrap(), None);
            s.put(NETWORKS, "a", &1u32).unwrap();
            s.put(NETWORKS, "b", &2u32).unwrap();
            s.delete(NETWORKS, "a").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.list::<u32>(NETWORKS).unwrap(), vec![("b".into(), 2)]);
        assert_eq!(s.get::<u32>(NETWORKS, "b").unwrap(), Some(2));
    }

    #[test]
    fn the_file_is_0600_new_or_left_wider_by_an_older_berthd() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }
}
