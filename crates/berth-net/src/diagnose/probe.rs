//! Real traffic from inside the source's namespace: a TCP connect when a TCP port is given,
//! else one ICMP echo (raw socket). One second at most; nothing is left behind.

use super::{PacketLimit, ProbeResult, Subject, Target};
use crate::controller::inspect::Model;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(1);

fn source_ns(m: &Model, from: &Target) -> Option<Option<PathBuf>> {
    match &from.subject {
        Subject::Host => Some(None),
        Subject::Container { id, mode, .. } if mode == "host" => {
            let _ = id;
            Some(None)
        }
        Subject::Container { id, .. } => m
            .endpoints
            .iter()
            .find(|e| &e.container_id == id)
            .map(|e| Some(e.sandbox.clone())),
        Subject::Addr { ip } => m
            .endpoints
            .iter()
            .find(|e| e.addrs().contains(ip))
            .map(|e| Some(e.sandbox.clone())),
        Subject::Name { .. } => None,
    }
}

/// Probes `dest` from the source; `None` when there is nothing to probe (no address, UDP).
pub async fn run(
    m: &Model,
    from: &Target,
    to: &Target,
    dest: Option<IpAddr>,
    verdict: bool,
    limit: Option<PacketLimit>,
) -> Option<ProbeResult> {
    let dest = dest?;
    let ns = source_ns(m, from)?;
    let port = to.port;
    let method = match (port, to.proto.as_str()) {
        (Some(_), "tcp") => "tcp",
        (Some(_), _) => return None,
        (None, _) => "ping",
    };
    // with a packet limit, a full-size echo that must not come back confirms it
    let big = limit.filter(|_| method == "ping").map(|l| l.mtu);
    let work = move || -> io::Result<(bool, String, Option<bool>)> {
        match port {
            Some(p) if method == "tcp" => {
                let (r, d) = tcp(SocketAddr::new(dest, p));
                Ok((r, d, None))
            }
            _ => {
                let (r, d) = ping(dest, None)?;
                match big {
                    Some(size) => {
                        let (rb, db) = ping(dest, Some(size))?;
                        Ok((
                            r,
                            format!("{d}; a {size}-byte echo (don't fragment): {db}"),
                            Some(rb),
                        ))
                    }
                    None => Ok((r, d, None)),
                }
            }
        }
    };
    let res = tokio::task::spawn_blocking(move || match ns {
        Some(path) => crate::osl::netns::run_in(&path, work),
        None => work(),
    })
    .await;
    let (reached, detail, big_reached) = match res {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => (false, format!("could not probe: {e}"), None),
        Err(e) => (false, format!("could not probe: {e}"), None),
    };
    Some(ProbeResult {
        method: method.into(),
        reached,
        detail,
        agrees: reached == verdict && big_reached != Some(true),
    })
}

fn tcp(to: SocketAddr) -> (bool, String) {
    let t = Instant::now();
    match std::net::TcpStream::connect_timeout(&to, TIMEOUT) {
        Ok(_) => (true, format!("connected to {to} in {:?}", t.elapsed())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => (
            false,
            format!("{to} refused the connection: the path works, nothing listens on the port"),
        ),
        Err(e) => (false, format!("connect to {to}: {e}")),
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One ICMP echo over a raw socket (root in the namespace; IPv4 only); with `size`, an IP
/// packet of that many bytes that may not be fragmented.
fn ping(to: IpAddr, size: Option<u32>) -> io::Result<(bool, String)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let IpAddr::V4(_) = to else {
        return Ok((false, "IPv6 ping is not implemented".into()));
    };
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let id = (std::process::id() & 0xffff) as u16;
    let seq: u16 = rand::random();
    let mut pkt = vec![8u8, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"berth-diagnose");
    if let Some(size) = size {
        // 20 bytes of IP header and the 8 of ICMP's around the payload
        pkt.resize((size as usize).saturating_sub(20).max(pkt.len()), 0);
        dont_fragment(&s)?;
    }
    let ck = checksum(&pkt);
    pkt[2..4].copy_from_slice(&ck.to_be_bytes());
    let t = Instant::now();
    s.send_to(&pkt, &SocketAddr::new(to, 0).into())?;
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 65536];
    while t.elapsed() < TIMEOUT {
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        // SAFETY: recv_from initialized the first n bytes.
        let b: Vec<u8> = buf[..n]
            .iter()
            .map(|x| unsafe { x.assume_init() })
            .collect();
        let ihl = (b.first().copied().unwrap_or(0) & 0x0f) as usize * 4;
        let Some(icmp) = b.get(ihl..) else { continue };
        if icmp.len() >= 8
            && from.as_socket().map(|a| a.ip()) == Some(to)
            && icmp[0] == 0
            && icmp[4..6] == id.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
        {
            return Ok((true, format!("echo reply from {to} in {:?}", t.elapsed())));
        }
    }
    Ok((false, format!("no echo reply from {to} within {TIMEOUT:?}")))
}

/// `IP_PMTUDISC_DO`: the kernel sets DF and refuses to fragment, so a too-big packet is lost
/// on the path instead of split into pieces that would pass.
fn dont_fragment(s: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let v: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: the fd is the live socket `s` owns; the option value is a c_int whose address and
    // size are passed together.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
