//! Which ports other sockets of the host hold, asked of the kernel in one netlink dump
//! (`NETLINK_SOCK_DIAG`, what `ss` uses) filtered in the kernel to a port range. It lets berth
//! tell a port taken by another process before it binds thousands of sockets of its own.
//!
//! TCP sockets that are bound but neither listening nor connected are only listed by kernels
//! from 6.7 on (`TCP_BOUND_INACTIVE`); on older ones a bind tells (see `controller::ports`).

use super::spec::Proto;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
const INET_DIAG_SKV6ONLY: u16 = 11;
const NLMSG_HDRLEN: usize = 16;
/// inet_diag_req_v2: family, protocol, ext, pad, states (u32), sockid (48 bytes).
const REQ_LEN: usize = 56;
/// inet_diag_msg: 4 bytes, sockid (48), expires, rqueue, wqueue, uid, inode.
const MSG_LEN: usize = 72;

/// A socket bound on the host: its local address, port, (IPv6) whether it is IPv6-only, and
/// its inode (what `/proc/<pid>/fd` links name: `socket:[inode]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub ip: IpAddr,
    pub port: u16,
    pub v6only: bool,
    pub inode: u32,
}

impl Bound {
    /// Whether a bind of `ip:port` (IPv6 ones IPv6-only, as berth's) would clash with it.
    pub fn clashes(&self, ip: IpAddr, port: u16) -> bool {
        if self.port != port {
            return false;
        }
        if self.ip.is_ipv4() == ip.is_ipv4() {
            return self.ip.is_unspecified() || ip.is_unspecified() || self.ip == ip;
        }
        // a dual-stack IPv6 wildcard socket holds the IPv4 port too
        ip.is_ipv4() && self.ip.is_unspecified() && !self.v6only
    }
}

/// The request: all sockets of `proto`/`family` in every state whose local port is in
/// `lo..=hi`.
fn request(proto: Proto, v6: bool, lo: u16, hi: u16) -> Vec<u8> {
    // bytecode (see `ss`): S_GE lo, then S_LE hi; `no` jumps past the end (+4 = reject)
    let mut bc = Vec::with_capacity(16);
    for (code, no, port) in [(INET_DIAG_BC_S_GE, 20u16, lo), (INET_DIAG_BC_S_LE, 12, hi)] {
        bc.extend_from_slice(&[code, 8]);
        bc.extend_from_slice(&no.to_ne_bytes());
        bc.extend_from_slice(&[0, 0]);
        bc.extend_from_slice(&port.to_ne_bytes());
    }
    let attr_len = 4 + bc.len();
    let total = NLMSG_HDRLEN + REQ_LEN + attr_len;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    m.push(if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8);
    m.push(match proto {
        Proto::Tcp => libc::IPPROTO_TCP,
        Proto::Udp => libc::IPPROTO_UDP,
        Proto::Sctp => libc::IPPROTO_SCTP,
    } as u8);
    m.extend_from_slice(&[0, 0]); // ext, pad
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state, bound-only TCP included
    m.extend_from_slice(&[0u8; 48]); // sockid: any
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    m.extend_from_slice(&bc);
    m
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_ne_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Parses one inet_diag_msg (and its attributes).
fn parse_msg(p: &[u8]) -> Option<Bound> {
    if p.len() < MSG_LEN {
        return None;
    }
    let family = p[0] as i32;
    let port = u16::from_be_bytes([p[4], p[5]]);
    let src = &p[8..24];
    let ip = if family == libc::AF_INET6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(src);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
    };
    let mut v6only = false;
    let mut i = MSG_LEN;
    while i + 4 <= p.len() {
        let len = u16_at(p, i) as usize;
        if len < 4 || i + len > p.len() {
            break;
        }
        if u16_at(p, i + 2) == INET_DIAG_SKV6ONLY && len > 4 {
            v6only = p[i + 4] != 0;
        }
        i += (len + 3) & !3;
    }
    let inode = u32_at(p, MSG_LEN - 4);
    Some(Bound {
        ip,
        port,
        v6only,
        inode,
    })
}

/// Every socket of `proto`/`family` bound to a port in `lo..=hi`.
pub fn bound(proto: Proto, v6: bool, lo: u16, hi: u16) -> io::Result<Vec<Bound>> {
    // SAFETY: plain syscall; the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is new and ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let req = request(proto, v6, lo, hi);
    // SAFETY: `req` is a valid buffer for the call.
    let n = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let b = &buf[..n as usize];
        let mut i = 0;
        while i + NLMSG_HDRLEN <= b.len() {
            let len = u32_at(b, i) as usize;
            let ty = u16_at(b, i + 4);
            if len < NLMSG_HDRLEN || i + len > b.len() {
                return Err(io::Error::other("sock_diag: truncated message"));
            }
            match ty as i32 {
                libc::NLMSG_DONE => return Ok(out),
                libc::NLMSG_ERROR => {
                    let code = i32::from_ne_bytes(b[i + 16..i + 20].try_into().unwrap_or([0; 4]));
                    if code == 0 {
                        return Ok(out);
                    }
                    return Err(io::Error::from_raw_os_error(-code));
                }
                _ => {
                    if let Some(s) = parse_msg(&b[i + NLMSG_HDRLEN..i + len]) {
                        out.push(s);
                    }
                }
            }
            i += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashes_like_binds() {
        let b = |ip: &str, v6only| Bound {
            ip: ip.parse().unwrap(),
            port: 80,
            v6only,
            inode: 0,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(b("127.0.0.1", false).clashes(ip("0.0.0.0"), 80));
        assert!(b("0.0.0.0", false).clashes(ip("127.0.0.1"), 80));
        assert!(!b("127.0.0.1", false).clashes(ip("10.0.0.1"), 80));
        assert!(!b("127.0.0.1", false).clashes(ip("0.0.0.0"), 81));
        assert!(!b("0.0.0.0", false).clashes(ip("::"), 80));
        assert!(b("::", false).clashes(ip("0.0.0.0"), 80), "dual-stack");
        assert!(!b("::", true).clashes(ip("0.0.0.0"), 80));
        assert!(b("::", true).clashes(ip("::1"), 80));
    }

    #[test]
    fn lists_the_sockets_of_a_port_range() {
        crate::testing::in_new_netns(|| {
            crate::testing::run(&["ip", "link", "set", "lo", "up"]);
            let _l = std::net::TcpListener::bind("127.0.0.1:20005").unwrap();
            let bound_only =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            bound_only
                .bind(
                    &"0.0.0.0:20007"
                        .parse::<std::net::SocketAddr>()
                        .unwrap()
                        .into(),
                )
                .unwrap();
            let _u = std::net::UdpSocket::bind("[::]:20006").unwrap();
            let _far = std::net::TcpListener::bind("127.0.0.1:30000").unwrap();
            let tcp = bound(Proto::Tcp, false, 20000, 20010).unwrap();
            let mut ports: Vec<u16> = tcp.iter().map(|b| b.port).collect();
            ports.sort();
            // bound-only sockets are listed by kernels >= 6.7
            assert!(ports == [20005, 20007] || ports == [20005], "{tcp:?}");
            assert_eq!(tcp[0].ip, "127.0.0.1".parse::<IpAddr>().unwrap());
            let want = format!("socket:[{}]", tcp[0].inode);
            let fds = std::fs::read_dir("/proc/self/fd").unwrap();
            assert!(
                fds.flatten().any(
                    |f| std::fs::read_link(f.path()).is_ok_and(|l| l.to_string_lossy() == want)
                ),
                "the inode names the listener's fd"
            );
            assert!(bound(Proto::Udp, false, 20000, 20010).unwrap().is_empty());
            let udp6 = bound(Proto::Udp, true, 20006, 20006).unwrap();
            assert_eq!(udp6.len(), 1);
            assert!(!udp6[0].v6only, "std binds dual-stack");
            assert!(udp6[0].clashes("0.0.0.0".parse().unwrap(), 20006));
        })
    }
}
