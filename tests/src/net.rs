//! Traffic from inside the test's namespaces: a thread enters a namespace (`setns`) and uses
//! plain sockets there, so a test can talk from the lab host, an "outside" namespace or a
//! container's sandbox, and serve UDP from inside a container, without any tool in the image.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `f` on a new thread inside the network namespace pinned at `path`.
pub fn in_netns<R: Send + 'static>(
    path: impl AsRef<std::path::Path>,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let path = path.as_ref().display().to_string();
    std::thread::spawn(move || {
        enter(&path);
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns only changes the calling thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// `/run/netns/<name>`
pub fn ns_path(name: &str) -> String {
    format!("/run/netns/{name}")
}

/// `GET /` over HTTP/1.0 from namespace `ns` (a path); the body, or the error.
pub fn http_get(ns: &str, to: SocketAddr) -> Result<String, String> {
    in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        match out.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") => Ok(body.to_string()),
            _ => Err(format!("not an HTTP answer: {out:?}")),
        }
    })
}

/// Sends `msg` over UDP from namespace `ns`; the answer, or `None` within 2 s.
pub fn udp_ask(ns: &str, to: SocketAddr, msg: &str) -> Option<String> {
    let msg = msg.to_string();
    in_netns(ns, move || {
        let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(local).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.send_to(msg.as_bytes(), to).ok()?;
        let mut b = [0u8; 512];
        let (n, _) = s.recv_from(&mut b).ok()?;
        Some(String::from_utf8_lossy(&b[..n]).into_owned())
    })
}

/// A UDP server inside a namespace (typically a container's sandbox): answers every datagram
/// with `<name> got <datagram> from <sender address>`. Stops when dropped.
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start(ns: &str, bind: SocketAddr, name: &str) -> UdpEcho {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (ns, name, stop2) = (ns.to_string(), name.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let s = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut b = [0u8; 512];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok((n, from)) = s.recv_from(&mut b) {
                    let msg = String::from_utf8_lossy(&b[..n]);
                    let _ = s.send_to(
                        format!("{name} got {msg} from {}", from.ip()).as_bytes(),
                        from,
                    );
                }
            }
        });
        rx.recv().expect("UDP echo server started");
        UdpEcho {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a TCP listener on `addr` can be bound in namespace `ns` right now (the port is
/// free) — and the error kind when not.
pub fn tcp_bind(ns: &str, addr: SocketAddr) -> Result<(), std::io::ErrorKind> {
    in_netns(ns, move || {
        std::net::TcpListener::bind(addr)
            .map(|_| ())
            .map_err(|e| e.kind())
    })
}

/// A namespace standing in for another machine, wired to the lab host by a veth: lab `up0`
/// 198.51.100.1/24 and 2001:db8:ff::1/64 ↔ outside `up1` 198.51.100.2/24 and
/// 2001:db8:ff::2/64. It has no route to the containers: only the host's addresses answer.
pub struct Outside {
    pub name: String,
}

impl Outside {
    pub const HOST4: &'static str = "198.51.100.1";
    pub const HOST6: &'static str = "2001:db8:ff::1";
    pub const ADDR4: &'static str = "198.51.100.2";

    pub fn new(lab: &crate::Lab) -> Outside {
        let name = format!("{}-out", lab.ns);
        let o = Outside { name: name.clone() };
        let sh = |s: &str| {
            let st = std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .status()
                .unwrap();
            assert!(st.success(), "{s}");
        };
        sh(&format!("ip netns add {name}"));
        sh(&format!(
            "ip -n {lab} link add up0 type veth peer name up1 netns {name} && \
             ip -n {lab} addr add 198.51.100.1/24 dev up0 && \
             ip -n {lab} addr add 2001:db8:ff::1/64 dev up0 nodad && ip -n {lab} link set up0 up && \
             ip -n {name} addr add 198.51.100.2/24 dev up1 && \
             ip -n {name} addr add 2001:db8:ff::2/64 dev up1 nodad && ip -n {name} link set up1 up && \
             ip -n {name} link set lo up",
            lab = lab.ns
        ));
        o
    }

    pub fn path(&self) -> String {
        ns_path(&self.name)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
