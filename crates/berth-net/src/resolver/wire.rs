//! The DNS wire format of the resolver's hot path: one question in, a few A/AAAA/PTR records
//! out, with no allocation but the reply buffer. Written here rather than with hickory-proto's
//! `Message`, whose decode and encode build a tree of owned records per query (several µs);
//! the parser is strict and bounded (RFC 1035 §4), so hostile input is rejected, never
//! followed: names are length-checked, and a compression pointer in a query's question is
//! a format error (nothing precedes the question to point at).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const HEADER: usize = 12;
pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const NOERROR: u8 = 0;
pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const OPCODE: u16 = 0x7800;

/// What the resolver's UDP replies may grow to without EDNS (RFC 1035).
pub const UDP_PLAIN: usize = 512;
/// The payload size berth offers in its OPT records.
pub const UDP_EDNS: u16 = 1232;

/// A parsed query. The name is kept both as received (`qname_wire`, echoed in the reply) and
/// in lower-case dotted form for lookups.
#[derive(Debug)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    /// Including the final zero.
    pub qname_wire: &'a [u8],
    name: [u8; 255],
    name_len: usize,
    /// False when a label holds a byte no container name can hold ('.', controls...): such a
    /// name is never a local one.
    pub plain: bool,
    pub qtype: u16,
    pub qclass: u16,
    /// `Some(payload size)` when the query carried an OPT record.
    pub edns: Option<u16>,
}

impl Query<'_> {
    /// Lower case, dotted, without the trailing dot ("" for the root).
    pub fn name(&self) -> &str {
        // only ASCII is ever stored when `plain`; otherwise "" (never looked up)
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("")
    }

    /// The largest reply the client accepts over UDP.
    pub fn udp_limit(&self) -> usize {
        self.edns
            .map_or(UDP_PLAIN, |s| (s as usize).clamp(UDP_PLAIN, 65535))
    }
}

/// Why a packet is not a query berth answers.
#[derive(Debug, PartialEq)]
pub enum Reject {
    /// Not worth a reply: shorter than a header, or itself a response (never answer those:
    /// two resolvers would loop).
    Drop,
    /// Reply with this rcode and the query's id.
    Reply { id: u16, flags: u16, rcode: u8 },
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Parses a query with exactly one question and at most one additional record (OPT).
pub fn parse(p: &[u8]) -> Result<Query<'_>, Reject> {
    if p.len() < HEADER {
        return Err(Reject::Drop);
    }
    let id = u16::from_be_bytes([p[0], p[1]]);
    let flags = u16::from_be_bytes([p[2], p[3]]);
    if flags & QR != 0 {
        return Err(Reject::Drop);
    }
    let formerr = Reject::Reply {
        id,
        flags,
        rcode: FORMERR,
    };
    if flags & OPCODE != 0 {
        return Err(Reject::Reply {
            id,
            flags,
            rcode: NOTIMP,
        });
    }
    let count = |i| u16::from_be_bytes([p[i], p[i + 1]]);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return Err(formerr);
    }
    let mut name = [0u8; 255];
    let mut name_len = 0;
    let mut plain = true;
    let mut i = HEADER;
    loop {
        let len = *p.get(i).ok_or_else(|| formerr_of(id, flags))? as usize;
        if len & 0xC0 != 0 {
            // a pointer (0xC0) or a reserved label type: never valid in a query's question
            return Err(formerr_of(id, flags));
        }
        i += 1;
        if len == 0 {
            break;
        }
        let label = p.get(i..i + len).ok_or_else(|| formerr_of(id, flags))?;
        // wire length so far: every label's length byte and bytes, plus the final zero
        if i + len - HEADER + 1 > 255 {
            return Err(formerr_of(id, flags));
        }
        if name_len > 0 {
            name[name_len] = b'.';
            name_len += 1;
        }
        for &b in label {
            if !(b.is_ascii_graphic() && b != b'.') {
                plain = false;
            }
            name[name_len] = b.to_ascii_lowercase();
            name_len += 1;
        }
        i += len;
    }
    let qname_wire = &p[HEADER..i];
    let qtype = u16_at(p, i).ok_or_else(|| formerr_of(id, flags))?;
    let qclass = u16_at(p, i + 2).ok_or_else(|| formerr_of(id, flags))?;
    i += 4;
    let mut edns = None;
    if ar == 1 {
        // OPT: root name, type 41, class = payload size, ttl, rdlength, rdata
        if p.get(i) != Some(&0) || u16_at(p, i + 1) != Some(TYPE_OPT) {
            return Err(formerr_of(id, flags));
        }
        let size = u16_at(p, i + 3).ok_or_else(|| formerr_of(id, flags))?;
        let rdlen = u16_at(p, i + 9).ok_or_else(|| formerr_of(id, flags))? as usize;
        if p.len() < i + 11 + rdlen {
            return Err(formerr_of(id, flags));
        }
        i += 11 + rdlen;
        edns = Some(size);
    }
    if i != p.len() {
        return Err(formerr_of(id, flags));
    }
    if !plain {
        name_len = 0;
    }
    Ok(Query {
        id,
        flags,
        qname_wire,
        name,
        name_len,
        plain,
        qtype,
        qclass,
        edns,
    })
}

fn formerr_of(id: u16, flags: u16) -> Reject {
    Reject::Reply {
        id,
        flags,
        rcode: FORMERR,
    }
}

/// One answer record's data.
#[derive(Debug, Clone, Copy)]
pub enum Rdata<'a> {
    Addr(IpAddr),
    /// A dotted name, without the trailing dot.
    Ptr(&'a str),
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes `name` (dotted) in wire form. Empty labels are skipped.
fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

fn header(out: &mut Vec<u8>, id: u16, qflags: u16, extra: u16, rcode: u8, counts: [u16; 4]) {
    put16(out, id);
    put16(
        out,
        QR | (qflags & (OPCODE | RD)) | RA | extra | rcode as u16,
    );
    for c in counts {
        put16(out, c);
    }
}

fn put_opt(out: &mut Vec<u8>) {
    out.push(0);
    put16(out, TYPE_OPT);
    put16(out, UDP_EDNS);
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// A reply to `q` with `rcode` and `answers` (each with `ttl`), authoritative, into `out`
/// (cleared first). Records that would take the reply past `limit` are left out and the
/// reply is marked truncated, so the client asks again over TCP.
pub fn answer<'r>(
    q: &Query<'_>,
    rcode: u8,
    answers: impl IntoIterator<Item = Rdata<'r>>,
    ttl: u32,
    limit: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    let opt = q.edns.is_some() as u16;
    header(out, q.id, q.flags, AA, rcode, [1, 0, 0, opt]);
    out.extend_from_slice(q.qname_wire);
    put16(out, q.qtype);
    put16(out, q.qclass);
    let reserve = if opt == 1 { 11 } else { 0 };
    let mut n = 0u16;
    let mut truncated = false;
    for a in answers {
        let mark = out.len();
        put16(out, 0xC000 | HEADER as u16); // the question's name
        match a {
            Rdata::Addr(IpAddr::V4(v4)) => {
                put16(out, TYPE_A);
                put16(out, CLASS_IN);
                out.extend_from_slice(&ttl.to_be_bytes());
                put16(out, 4);
                out.extend_from_slice(&v4.octets());
            }
            Rdata::Addr(IpAddr::V6(v6)) => {
                put16(out, TYPE_AAAA);
                put16(out, CLASS_IN);
                out.extend_from_slice(&ttl.to_be_bytes());
                put16(out, 16);
                out.extend_from_slice(&v6.octets());
            }
            Rdata::Ptr(name) => {
                put16(out, TYPE_PTR);
                put16(out, CLASS_IN);
                out.extend_from_slice(&ttl.to_be_bytes());
                let len_at = out.len();
                put16(out, 0);
                put_name(out, name);
                let len = (out.len() - len_at - 2) as u16;
                out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            }
        }
        if out.len() + reserve > limit {
            out.truncate(mark);
            truncated = true;
            break;
        }
        n += 1;
    }
    out[6..8].copy_from_slice(&n.to_be_bytes());
    if truncated {
        out[2] |= (TC >> 8) as u8;
    }
    if opt == 1 {
        put_opt(out);
    }
}

/// A reply carrying only a header (and the question when the query could be parsed).
pub fn error_reply(id: u16, flags: u16, rcode: u8, out: &mut Vec<u8>) {
    out.clear();
    header(out, id, flags, 0, rcode, [0, 0, 0, 0]);
}

/// The query's reply with `rcode` and no records (not authoritative: used for failures).
pub fn failure(q: &Query<'_>, rcode: u8, out: &mut Vec<u8>) {
    answer(q, rcode, [], 0, usize::MAX, out);
    out[2] &= !((AA >> 8) as u8);
}

/// The address a PTR question asks about: `4.3.2.1.in-addr.arpa` or the 32 nibbles of
/// `ip6.arpa`, lower case.
pub fn ptr_addr(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut o = [0u8; 4];
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        for (k, part) in parts.iter().rev().enumerate() {
            if part.len() > 1 && part.starts_with('0') {
                return None;
            }
            o[k] = part.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(o)));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        if n.len() != 1 {
            return None;
        }
        v = (v << 4) | u8::from_str_radix(n, 16).ok()? as u128;
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

/// The rcode of a reply (for deciding whether to try the next upstream).
pub fn rcode_of(reply: &[u8]) -> Option<u8> {
    reply.get(3).map(|b| b & 0x0F)
}

/// Whether `reply` answers the question of `query`: same id and the same question bytes
/// (a stray or spoofed datagram must not be relayed to the client).
pub fn same_question(query: &[u8], reply: &[u8]) -> bool {
    if query.len() < HEADER || reply.len() < HEADER || query[..2] != reply[..2] {
        return false;
    }
    let Ok(q) = parse(query) else { return false };
    let end = HEADER + q.qname_wire.len() + 4;
    reply.len() >= end
        && reply[HEADER..end].eq_ignore_ascii_case(&query[HEADER..end])
        && reply[2] & 0x80 != 0
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
