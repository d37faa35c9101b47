//! DNS from the tests' side: a client that asks from inside a namespace (a container's
//! sandbox), and upstream servers of the test's own, run in a namespace the test made.
//! Messages are built and read with hickory-proto, an implementation independent of berth's.

use crate::net::in_netns;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{rdata, Name, RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn query(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(rand_id())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

fn rand_id() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(1);
    (N.fetch_add(7919, Ordering::Relaxed) as u16) ^ (std::process::id() as u16)
}

/// A parsed reply: rcode and the answers as text (addresses, PTR names).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub answers: Vec<String>,
    pub truncated: bool,
    pub authoritative: bool,
}

pub fn read_reply(bytes: &[u8]) -> Reply {
    let m = Message::from_vec(bytes).expect("a DNS message");
    Reply {
        rcode: m.response_code(),
        truncated: m.truncated(),
        authoritative: m.authoritative(),
        answers: m
            .answers()
            .iter()
            .map(|r| match r.data() {
                RData::A(a) => a.to_string(),
                RData::AAAA(a) => a.to_string(),
                RData::PTR(p) => p.0.to_ascii(),
                other => format!("{other:?}"),
            })
            .collect(),
    }
}

/// One UDP query to `server` from inside `netns`; `None` when nothing came back in 6 s.
pub fn ask_udp(netns: &Path, server: SocketAddr, name: &str, rtype: RecordType) -> Option<Reply> {
    let q = query(name, rtype);
    in_netns(netns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        s.send_to(&q, server).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        assert_eq!(buf[..2], q[..2], "reply id");
        Some(read_reply(&buf[..n]))
    })
}

/// Several queries on one TCP connection from inside `netns`.
pub fn ask_tcp(netns: &Path, server: SocketAddr, names: &[(&str, RecordType)]) -> Vec<Reply> {
    let qs: Vec<Vec<u8>> = names.iter().map(|(n, t)| query(n, *t)).collect();
    in_netns(netns, move || {
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        qs.iter()
            .map(|q| {
                s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
                s.write_all(q).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).unwrap();
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut buf).unwrap();
                read_reply(&buf)
            })
            .collect()
    })
}

/// An upstream DNS server of the test's own, bound in a namespace: answers `A` questions
/// from its table over UDP and TCP, NXDOMAIN otherwise; or, `silent`, answers nothing (a dead
/// server). Counts what it receives. Stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start(
        netns: impl AsRef<Path>,
        ip: IpAddr,
        table: &[(&str, Ipv4Addr)],
        silent: bool,
    ) -> Upstream {
        let addr = SocketAddr::new(ip, 53);
        let table: Vec<(String, Ipv4Addr)> = table
            .iter()
            .map(|(n, a)| (n.trim_end_matches('.').to_ascii_lowercase(), *a))
            .collect();
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (udp, tcp) = in_netns(netns, move || {
            let u = UdpSocket::bind(addr).expect("bind upstream udp");
            let t = std::net::TcpListener::bind(addr).expect("bind upstream tcp");
            (u, t)
        });
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let answer = move |q: &[u8]| -> Option<Vec<u8>> {
            let m = Message::from_vec(q).ok()?;
            let question = m.queries().first()?.clone();
            let mut r = Message::new();
            r.set_id(m.id())
                .set_message_type(MessageType::Response)
                .set_recursion_desired(true)
                .set_recursion_available(true)
                .add_query(question.clone());
            let name = question
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            match table.iter().find(|(n, _)| *n == name) {
                Some((_, a)) if question.query_type() == RecordType::A => {
                    r.add_answer(Record::from_rdata(
                        question.name().clone(),
                        30,
                        RData::A(rdata::A(*a)),
                    ));
                }
                Some(_) => {}
                None => {
                    r.set_response_code(ResponseCode::NXDomain);
                }
            }
            r.to_vec().ok()
        };
        let (rx, st) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    rx.fetch_add(1, Ordering::SeqCst);
                    if !silent {
                        if let Some(r) = answer(&buf[..n]) {
                            let _ = udp.send_to(&r, from);
                        }
                    }
                }
                if let Ok((mut c, _)) = tcp.accept() {
                    rx.fetch_add(1, Ordering::SeqCst);
                    c.set_nonblocking(false).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut len = [0u8; 2];
                    if c.read_exact(&mut len).is_ok() {
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if c.read_exact(&mut q).is_ok() && !silent {
                            if let Some(r) = answer(&q) {
                                let _ = c.write_all(&(r.len() as u16).to_be_bytes());
                                let _ = c.write_all(&r);
                            }
                        }
                    }
                }
            }
        });
        Upstream {
            addr,
            received,
            stop,
        }
    }

    pub fn count(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
