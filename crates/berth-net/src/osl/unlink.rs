//! Link deletion on a thread and netlink socket of its own.
//!
//! The kernel answers a link delete only after it has waited out RCU grace periods (20–40 ms
//! for a veth pair here), inside the `sendmsg` of the request. Sent on a shared socket, that
//! wait would block a runtime worker and hold every later request on the socket (the next
//! endpoint's veth) behind the delete; on a socket of its own it holds nothing else.

use super::netlink::{is_errno, kerr};
use super::netns;
use super::OslError;
use std::io;
use std::path::PathBuf;

const ENODEV: i32 = libc::ENODEV;

/// Deletes the link `name` in the namespace at `netns` (none: the daemon's); gone already is
/// not an error.
pub async fn delete_link(netns: Option<PathBuf>, name: String) -> Result<(), OslError> {
    let op = format!("delete link {name}");
    let work = move || -> io::Result<Result<(), OslError>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async move {
            let (conn, h, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            let index = match super::overlay::index_of(&h, &name).await {
                Ok(Some(i)) => i,
                Ok(None) => return Ok(Ok(())),
                Err(e) => return Ok(Err(e)),
            };
            Ok(match h.link().del(index).execute().await {
                Err(e) if !is_errno(&e, ENODEV) => Err(kerr(&format!("delete link {name}"), e)),
                _ => Ok(()),
            })
        })
    };
    let joined = tokio::task::spawn_blocking(move || match netns {
        Some(p) => netns::run_in(&p, work),
        None => work(),
    })
    .await;
    match joined {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(OslError::Kernel {
            op,
            msg: e.to_string(),
        }),
        Err(e) => Err(OslError::Kernel {
            op,
            msg: e.to_string(),
        }),
    }
}
