//! Link deletion on a thread and netlink socket of its own.
//!
//! The kernel answers a link delete only after it has waited out RCU grace periods (20–40 ms
//! for a veth pair here), inside the `sendmsg` of the request. Sent on a shared socket, that
//! wait would block a runtime worker and hold every later request on the socket (the next
//! endpoint's veth) behind the delete; on a socket of its own it holds nothing else.

use super::netlink::{is_errno, kerr, ENODEV};
use super::netns;
use super::OslError;
use std::io;
use std::path::PathBuf;

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
            Ok(match super::overlay::index_of(&h, &name).await {
                Ok(Some(i)) => match h.link().del(i).execute().await {
                    Err(e) if !is_errno(&e, ENODEV) => Err(kerr(&format!("delete link {name}"), e)),
                    _ => Ok(()),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            })
        })
    };
    let done = tokio::task::spawn_blocking(move || match netns {
        Some(p) => netns::run_in(&p, work),
        None => work(),
    })
    .await
    .map_err(io::Error::other)
    .and_then(|r| r);
    done.unwrap_or_else(|e| {
        Err(OslError::Kernel {
            op,
            msg: e.to_string(),
        })
    })
}
