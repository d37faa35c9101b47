//! How berthd's heap gives memory back (issue 12's soak: RSS flat after the load ends).
//!
//! glibc's malloc, left to itself, kept a 64-client soak's peak: 19 → 91 MB of RSS after every
//! container was gone, with 11.7 MB of it in use (malloc_stats). Two of its defaults cause that:
//! - the mmap threshold adapts upwards whenever a large block is freed (up to 32 MB), and the
//!   trim threshold follows at twice that, so arenas keep tens of MB of free top chunk;
//! - every blocking thread may get an arena of its own (up to 8 per core), and memory freed in
//!   one arena is never reused by another.
//!
//! Fixing the threshold at glibc's initial 128 KiB keeps large buffers (netlink dumps, archives,
//! nftables output) in mmap, which goes back on free; two arenas per core bound the spread; and
//! a trim once a quiet interval has passed returns the free pages inside the arenas, which
//! malloc does not do on its own for arenas other than the main one.

use std::time::Duration;

const MMAP_THRESHOLD: i32 = 128 * 1024;
const TRIM_EVERY: Duration = Duration::from_secs(15);

/// Sets malloc's parameters; called first thing, before any thread exists.
pub fn tune() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = i32::try_from(2 * cores).unwrap_or(i32::MAX);
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // is started, and an unknown parameter or refused value is reported by its return value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// Gives the free pages of every arena back to the kernel every `TRIM_EVERY`.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A trim walks every arena under its lock: a blocking thread, not a worker.
            let _ = tokio::task::spawn_blocking(|| {
                // SAFETY: malloc_trim is thread-safe (it takes each arena's lock) and only
                // releases pages malloc holds free.
                unsafe { libc::malloc_trim(0) };
            })
            .await;
        }
    });
}
