//! What the crate's root tests share: running in a network namespace of their own, made by
//! the test thread, so the machine's namespace is never touched and the namespace (with every
//! bridge, veth and rule in it) disappears with the thread.

/// Runs `f` on a thread in a brand-new, empty network namespace.
pub fn in_new_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let r = std::thread::spawn(move || {
        // SAFETY: unshare only affects the calling thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed: {} (root tests must run as root)",
            std::io::Error::last_os_error()
        );
        // Never go on in the host's namespace.
        let id = |p: &str| std::fs::read_link(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_ne!(
            id("/proc/thread-self/ns/net"),
            id("/proc/self/ns/net"),
            "test thread is still in the process's network namespace"
        );
        f()
    })
    .join();
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// `in_new_netns` for async tests, on a current-thread runtime (its one thread is the one in
/// the new namespace).
pub fn block_on_in_new_netns<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    in_new_netns(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}

/// Runs a command (in the calling thread's namespace); its stdout. Panics on failure.
pub fn run(args: &[&str]) -> String {
    let o = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}
