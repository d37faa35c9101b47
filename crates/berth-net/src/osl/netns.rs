//! Network namespaces as files: a sandbox's namespace is bind-mounted at a path under the exec
//! root, so it outlives any process in it and a restarted daemon finds it again.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a new network namespace and pins it at `path`. The namespace is made on a
/// short-lived thread, because `unshare` changes the calling thread's namespace.
pub fn create(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path)?;
    let target = path.to_path_buf();
    let r = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare takes no pointers; it moves only this short-lived thread.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        let src = cstr(Path::new("/proc/thread-self/ns/net"))?;
        let dst = cstr(&target)?;
        // SAFETY: both paths are NUL-terminated and outlive the call; a bind mount reads no
        // fstype or data, so null is what it expects for them.
        check(unsafe {
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        })
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Unpins and removes a namespace file; the namespace dies with its last user.
/// A missing file is not an error.
pub fn delete(path: &Path) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let p = cstr(path)?;
    // EINVAL: not a mount point (e.g. a half-created sandbox); the file still goes.
    // SAFETY: `p` is a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    std::fs::remove_file(path)
}

/// An open handle on a pinned namespace (for moving links into it or entering it).
pub fn open(path: &Path) -> io::Result<OwnedFd> {
    Ok(std::fs::File::open(path)?.into())
}

/// Runs `f` on a thread that has entered the namespace at `path`; the caller's thread keeps
/// its own namespace. Sockets made inside `f` stay bound to that namespace.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        let fd = open(&path)?;
        // SAFETY: `fd` is an open namespace file we own; setns moves only this thread, which
        // ends with `f`.
        check(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) })?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_inode(path: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn create_enter_delete() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("netns/abc");
        create(&p).unwrap();
        let own = ns_inode("/proc/self/ns/net");
        let pinned = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&p).unwrap().ino()
        };
        assert_ne!(own, pinned, "a new namespace, not ours");
        let inside = run_in(&p, || Ok(ns_inode("/proc/thread-self/ns/net"))).unwrap();
        assert_eq!(inside, pinned);
        assert_eq!(
            ns_inode("/proc/self/ns/net"),
            own,
            "caller's namespace unchanged"
        );
        delete(&p).unwrap();
        assert!(!p.exists());
        delete(&p).unwrap();
    }
}
