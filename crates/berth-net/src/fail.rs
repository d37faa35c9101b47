//! Failpoints for the crash campaign (issue 12): berthd dies with SIGKILL right after a store
//! write or a kernel step, so a test can check what the next berthd makes of it.
//!
//! Compiled in only with the `failpoints` feature (the e2e crate turns it on, so a
//! `cargo build --workspace` berthd has it; `cargo build -p berthd` does not). Even then a
//! point is inert unless berthd was started with `BERTH_FAILPOINTS=<file>`: each point then
//! reads the file and dies when it holds the point's name. berthd runs as root, so only root
//! can set its environment or choose that file. Without the feature [`point`] is empty.

/// Every failpoint, named `<operation>/<step just done>`. The crash test iterates over this
/// list and fails on a point no operation reaches.
pub const POINTS: &[&str] = &[
    // network create: store, bridge, firewall
    "network-create/stored",
    "network-create/bridge",
    "network-create/firewall",
    // network rm: store, firewall, bridge (in the background after the answer)
    "network-rm/stored",
    "network-rm/firewall",
    "network-rm/bridge",
    // a container's namespace: record, namespace
    "sandbox-create/stored",
    "sandbox-create/netns",
    // connect (at start and `network connect`): record, DNS listener, veth, live
    "connect/stored",
    "connect/dns-listener",
    "connect/veth",
    "connect/live",
    // disconnect (`network disconnect`, stop, rm): record, veth (in the background)
    "disconnect/stored",
    "disconnect/veth",
    // the namespace going at stop: records, DNS listener, namespace
    "sandbox-delete/stored",
    "sandbox-delete/dns-listener",
    "sandbox-delete/netns",
    // port publish: record, nft elements; unpublish: nft elements, record
    "publish/stored",
    "publish/nft",
    "unpublish/nft",
    "unpublish/stored",
    // container create, start (networks, runc, record), exit (networks, record), rm
    "create/stored",
    "start/networks",
    "start/runtime",
    "start/stored",
    "exit/networks",
    "exit/stored",
    "rm/removing",
    "rm/runtime",
    "rm/stored",
    // berthd's own repair at start (a crash while it repairs what a crash left): a missing
    // bridge made again, a network's nft elements added again, an orphan bridge removed,
    // endpoint records dropped, an orphan veth removed, the port maps reset
    "repair/bridge",
    "repair/firewall",
    "repair/orphan-bridge",
    "repair/endpoints-stored",
    "repair/orphan-veth",
    "repair/ports",
    // ... and the containers: one still running followed again, one found dead cleaned up,
    // a stopped one's leftovers removed
    "repair/resumed",
    "repair/exited",
    "repair/cleaned",
    // overlay network create: cluster store (name, subnets, VNI, record), local copy;
    // rm: cluster store, local copy
    "overlay-create/recorded",
    "overlay-create/cached",
    "overlay-rm/recorded",
    "overlay-rm/forgotten",
    // overlay connect: address claimed in the cluster store, local record, the network's
    // namespace and VXLAN, veth, endpoint published on the lease, live
    "overlay-connect/claimed",
    "overlay-connect/stored",
    "overlay-connect/data-path",
    "overlay-connect/veth",
    "overlay-connect/published",
    "overlay-connect/live",
    // overlay disconnect (after disconnect/stored, in the background): endpoint unpublished,
    // address released in the cluster store
    "overlay-disconnect/unpublished",
    "overlay-disconnect/released",
];

/// The points whose names start with one of `prefixes` (an operation's path).
pub fn points_under(prefixes: &[&str]) -> Vec<&'static str> {
    POINTS
        .iter()
        .copied()
        .filter(|p| prefixes.iter().any(|x| p.starts_with(x)))
        .collect()
}

/// Failpoints reached only with an IPAM plugin (tests/tests/plugins_crash.rs kills there; the
/// crash campaign runs without plugins): the plugin granted a pool, a network's gateway, an
/// endpoint's addresses, and berth journaled the grant but no record holds it yet.
pub const PLUGIN_POINTS: &[&str] = &[
    "plugin-ipam/pool",
    "plugin-ipam/gateway",
    "plugin-ipam/address",
];

/// Dies here (SIGKILL to itself, as `kill -9` would) if this point is armed.
#[inline]
pub fn point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    armed::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn file() -> Option<&'static PathBuf> {
        static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
        FILE.get_or_init(|| std::env::var_os("BERTH_FAILPOINTS").map(PathBuf::from))
            .as_ref()
    }

    pub fn hit(name: &'static str) {
        debug_assert!(
            super::POINTS.contains(&name) || super::PLUGIN_POINTS.contains(&name),
            "failpoint {name} not listed"
        );
        let Some(f) = file() else { return };
        let Ok(armed) = std::fs::read_to_string(f) else {
            return;
        };
        if armed.trim() == name {
            eprintln!("failpoint {name}: dying");
            // SAFETY: kill takes no pointers; getpid cannot fail.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
