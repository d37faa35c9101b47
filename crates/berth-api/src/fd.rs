//! Long-lived descriptors kept out of the range `select()` can watch.
//!
//! libnftables (1.0.6, what Debian ships) waits for netlink answers with `select()`, and
//! glibc's fortified `FD_SET` aborts the whole process on a descriptor numbered 1,024 or more.
//! berthd opens a fresh libnftables context inside each new sandbox (its DNS redirect), and
//! that socket takes the lowest free number: once berthd's own sockets, pipes and pidfds fill
//! 0..1023 (a few hundred containers, or one published port range), the next container start
//! would kill berthd. So what berthd holds for the life of a container, a port or a sandbox
//! is moved above that range as it is made, leaving the low numbers to short-lived ones.
//!
//! This lives in the one crate every part of berth shares; it is not wire format.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Where lifted descriptors go: the first number `select()` cannot take.
pub const FLOOR: i32 = 1024;

/// `fd`, renumbered to `FLOOR` or above (close-on-exec kept), or unchanged when it already
/// is there or the open-file limit leaves no room up there.
pub fn lift<T: From<OwnedFd> + Into<OwnedFd>>(fd: T) -> T {
    let fd: OwnedFd = fd.into();
    if fd.as_raw_fd() >= FLOOR {
        return T::from(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor `fd` owns (alive for the call) and
    // returns a new one, which is owned here from the moment it exists.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FLOOR) };
    if high < 0 {
        return T::from(fd);
    }
    // SAFETY: `high` is a fresh descriptor nobody else owns; `fd` is dropped (closed) instead.
    T::from(unsafe { OwnedFd::from_raw_fd(high) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifted_descriptors_live_above_the_select_range_and_still_work() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls on a local struct.
        let room = unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
            }
        } && lim.rlim_cur > FLOOR as libc::rlim_t + 16;
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let low = a.as_raw_fd();
        let a = lift(a);
        if room {
            assert!(a.as_raw_fd() >= FLOOR, "{} was not lifted", a.as_raw_fd());
            // the low number is free again
            let probe = std::fs::File::open("/dev/null").unwrap();
            assert!(probe.as_raw_fd() <= low, "{} > {low}", probe.as_raw_fd());
            // close-on-exec kept
            // SAFETY: reads the flags of a descriptor `a` owns.
            let flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFD) };
            assert!(flags & libc::FD_CLOEXEC != 0);
        }
        a.send(b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(b.recv(&mut buf).unwrap(), 1);
        // a second lift keeps it where it is
        let n = a.as_raw_fd();
        assert_eq!(lift(a).as_raw_fd(), n);
    }
}
