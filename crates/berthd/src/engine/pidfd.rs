//! A container's process as a pidfd: a signal sent through it reaches that process or nothing,
//! never another one that was given the same pid after it ended (`kill(pid)` can).

use std::os::fd::{AsRawFd, OwnedFd};

pub struct Proc(OwnedFd);

impl Proc {
    /// The process now known as `pid`; `None` if it is gone (or `pid` is not a pid).
    pub fn open(pid: i32) -> Option<Proc> {
        if pid <= 0 {
            // Pid::from_raw asserts on a negative number
            return None;
        }
        let pid = rustix::process::Pid::from_raw(pid)?;
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .ok()
            .map(|fd| Proc(berth_api::fd::lift(fd)))
    }

    /// Sends `sig`; `ESRCH` once the process has ended, even if its pid was reused since.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        // rustix's pidfd_send_signal takes only the signals it names (not SIGRTMIN+n, which
        // `docker kill -s` accepts), hence the raw call.
        // SAFETY: the fd is a pidfd we own for the duration of the call; a null siginfo and
        // zero flags make the call behave as kill(2), and no memory is passed to the kernel.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_signal_reaches_the_process_and_nothing_after_it_ended() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let p = Proc::open(child.id() as i32).unwrap();
        p.signal(libc::SIGTERM).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        // reaped: the pid is free for anyone, the pidfd still names the dead process
        let e = p.signal(libc::SIGKILL).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        assert!(Proc::open(0).is_none() && Proc::open(-5).is_none());
    }
}
