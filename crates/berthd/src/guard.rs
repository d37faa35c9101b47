//! What keeps two daemons apart and the API socket closed to others: a lock on the data root,
//! and a socket that has its final mode before anyone can reach it.

use anyhow::{bail, Context};
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The lock file under the data root, held (flock) for the daemon's lifetime: two daemons on
/// one store and one set of layers would each repair the other's work away.
pub fn lock_data_root(data_root: &Path) -> anyhow::Result<File> {
    let path = data_root.join("berthd.lock");
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // std opens with O_CLOEXEC: the fd keeper and runc do not inherit the lock
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = pid.trim();
            let who = if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            };
            bail!(
                "another berthd{who} is using the data root {}: stop it first, or give this one \
                 another --data-root",
                data_root.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    f.set_len(0)?;
    std::io::Write::write_all(&mut &f, format!("{}\n", std::process::id()).as_bytes())?;
    Ok(f)
}

/// An error when some process answers on `path`: berthd checks before it touches anything, and
/// again when it binds.
pub fn refuse_live_socket(path: &Path) -> anyhow::Result<()> {
    if UnixStream::connect(path).is_ok() {
        bail!(
            "another daemon is listening on unix://{}: stop it first, or give this one another \
             socket with -H",
            path.display()
        );
    }
    Ok(())
}

/// Binds the API socket at `path` with `mode` from its first moment: it is bound in a private
/// 0700 directory, given its mode there, then renamed into place (atomically replacing a stale
/// socket). A socket some process still answers on is never taken over.
pub fn bind_api_socket(path: &Path, mode: u32) -> anyhow::Result<UnixListener> {
    refuse_live_socket(path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let private = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let result = bind_in(&private, path, mode);
    let _ = std::fs::remove_dir_all(&private);
    result
}

fn bind_in(private: &Path, path: &Path, mode: u32) -> anyhow::Result<UnixListener> {
    let tmp: PathBuf = private.join("sock");
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).with_context(|| format!("binding {}", path.display()))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_second_lock_on_the_data_root_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_root(dir.path()).unwrap();
        let e = lock_data_root(dir.path()).unwrap_err().to_string();
        assert!(e.contains("another berthd"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(held);
        lock_data_root(dir.path()).unwrap();
    }

    #[test]
    fn the_socket_has_its_mode_and_a_live_one_is_not_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.sock");
        // a stale socket (nobody listening) is replaced
        drop(UnixListener::bind(&path).unwrap());
        let live = bind_api_socket(&path, 0o660).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let e = bind_api_socket(&path, 0o660).unwrap_err().to_string();
        assert!(e.contains("another daemon is listening"), "{e}");
        // the live daemon still has its socket, and nothing was left beside it
        assert!(UnixStream::connect(&path).is_ok());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
        drop(live);
    }
}
