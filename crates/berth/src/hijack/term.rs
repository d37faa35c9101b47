//! The local terminal: raw mode while a TTY session runs (restored on drop, on panic, and
//! before the process exits), and its size for the container's TTY.

use std::sync::Mutex;

/// The settings to put back, kept where a panic hook can reach them.
static SAVED: Mutex<Option<(i32, libc::termios)>> = Mutex::new(None);

pub fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// (rows, columns) of the terminal on `fd`, if it is one.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data, for which all zeroes is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize we own; a bad fd is an error, not UB.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && (ws.ws_row > 0 || ws.ws_col > 0)).then_some((ws.ws_row, ws.ws_col))
}

/// Raw mode on a terminal for as long as the guard lives: keys go to the container as typed
/// (ctrl-c included), nothing is echoed locally.
pub struct RawGuard {
    _private: (),
}

impl RawGuard {
    pub fn enable(fd: i32) -> std::io::Result<RawGuard> {
        // SAFETY: termios is plain data, for which all zeroes is a valid value.
        let mut old: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills a termios we own.
        if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = old;
        // SAFETY: cfmakeraw only edits the termios we own.
        unsafe { libc::cfmakeraw(&mut raw) };
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some((fd, old));
        install_panic_hook();
        // SAFETY: tcsetattr reads the termios we own.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawGuard { _private: () })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back if raw mode is on; harmless otherwise. Called before exiting,
/// since `std::process::exit` runs no destructors.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((fd, t)) = saved {
        // SAFETY: restores settings read earlier from the same descriptor.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
}

/// Restores the terminal before the panic message is printed, so it is readable.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}
