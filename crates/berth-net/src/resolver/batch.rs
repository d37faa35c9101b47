//! Datagrams in batches: one `recvmmsg` takes up to [`BATCH`] queries and one `sendmmsg` sends
//! their answers, so a busy resolver makes two system calls per batch instead of two per
//! query (the calls, not the lookups, are most of a local answer's cost). The buffers belong
//! to the worker thread, not to each sandbox, so a thousand idle sandboxes cost nothing.

use std::cell::RefCell;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

pub const BATCH: usize = 32;
/// Largest datagram taken in; longer ones arrive truncated and are dropped.
pub const MAX_DATAGRAM: usize = 4096;

struct Buffers {
    input: Vec<u8>,
    output: Vec<Vec<u8>>,
    names: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    out_iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

thread_local! {
    static BUFS: RefCell<Buffers> = RefCell::new(Buffers {
        input: vec![0; BATCH * MAX_DATAGRAM],
        output: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
        // SAFETY: sockaddr_storage is plain data, for which all zeroes is a valid value.
        names: vec![unsafe { zeroed() }; BATCH],
        iov: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH],
        out_iov: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH],
        // SAFETY: mmsghdr is plain data (null pointers, zero lengths) when all zeroes.
        msgs: vec![unsafe { zeroed() }; BATCH],
    });
}

/// The peer address of a received datagram.
pub fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receives one batch from `fd` (non-blocking) and calls `handle(query, peer, reply)` for
/// each datagram; a reply left non-empty is sent back to its peer, all in one call. Returns
/// the number received (`WouldBlock` when there was none).
pub fn serve_batch(
    fd: RawFd,
    mut handle: impl FnMut(&[u8], &libc::sockaddr_storage, &mut Vec<u8>),
) -> io::Result<usize> {
    BUFS.with(|b| {
        let b = &mut *b.borrow_mut();
        let Buffers {
            input,
            output,
            names,
            iov,
            out_iov,
            msgs,
        } = b;
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: input[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            msgs[i].msg_len = 0;
        }
        // SAFETY: each of the BATCH headers points at its own name and iovec, each iovec at
        // its own MAX_DATAGRAM slice of `input`; all live in this thread's buffers for the
        // whole call, and a null timeout is allowed.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let mut k = 0;
        for i in 0..n {
            let out = &mut output[i];
            out.clear();
            if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let len = msgs[i].msg_len as usize;
            handle(
                &input[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len],
                &names[i],
                out,
            );
            if out.is_empty() {
                continue;
            }
            // replies are packed to the front; names[k] <= names[i] as k <= i
            out_iov[k] = libc::iovec {
                iov_base: out.as_mut_ptr().cast(),
                iov_len: out.len(),
            };
            names[k] = names[i];
            let h = &mut msgs[k].msg_hdr;
            h.msg_name = (&mut names[k] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = match names[k].ss_family as i32 {
                libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
                _ => size_of::<libc::sockaddr_in>(),
            } as u32;
            h.msg_iov = &mut out_iov[k];
            h.msg_iovlen = 1;
            k += 1;
        }
        let mut sent = 0;
        while sent < k {
            // SAFETY: the first `k` headers point at names and iovecs set above, the iovecs at
            // `output` vectors that are not touched until the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs[sent..].as_mut_ptr(),
                    (k - sent) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                break; // a full send buffer: the rest are dropped, their clients ask again
            }
            sent += r as usize;
        }
        Ok(n)
    })
}
