//! A container's networking: its sandbox and endpoints at start and exit, `network connect`
//! and `disconnect`, and the `/etc/hosts`, `/etc/resolv.conf` files berth owns for it.

use super::epconf;
use super::record::{Attachment, Record};
use super::{no_such_container, Ctr, Engine, Result};
use berth_api::EndpointSettings;
use berth_api::NetworkMode;
use berth_net::endpoint::EndpointRequest;
use berth_net::{NetError, NetRef};
use std::path::PathBuf;
use std::sync::Arc;

const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

fn request(rec: &Record, a: &Attachment, user_net: bool) -> EndpointRequest {
    let ipam = a.requested.ipam_config.clone().unwrap_or_default();
    let mut aliases = a.requested.aliases.clone().unwrap_or_default();
    // Docker adds the short id (and the hostname) as aliases on user-defined networks.
    if user_net {
        for extra in [rec.short_id().to_string(), rec.config.hostname.clone()] {
            if !extra.is_empty() && !aliases.contains(&extra) {
                aliases.push(extra);
            }
        }
    }
    EndpointRequest {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        network: a.network.clone(),
        ipv4: Some(ipam.ipv4_address).filter(|s| !s.is_empty()),
        ipv6: Some(ipam.ipv6_address).filter(|s| !s.is_empty()),
        aliases,
        links: a.requested.links.clone().unwrap_or_default(),
        mac: epconf::mac(rec, a),
        link_local: epconf::link_local(&a.requested),
        sandbox: None,
        with: Vec::new(),
    }
}

impl Engine {
    fn is_user_network(&self, term: &str) -> bool {
        self.net.network_ref(term).is_ok_and(|n| !n.predefined)
    }

    /// Gives the container its network namespace and endpoints, in attach order. `None`: the
    /// host's stack. All or nothing.
    pub(super) async fn attach_networks(&self, c: &Arc<Ctr>) -> Result<Option<PathBuf>> {
        let rec = c.snapshot();
        let paths = self.rt.paths(&rec.id);
        let mode = rec.network_mode();
        if mode == NetworkMode::Host {
            copy_host_file("/etc/hosts", &paths.hosts(), HOSTS_HEADER);
            self.write_resolv_conf(&rec)?;
            return Ok(None);
        }
        if let NetworkMode::Container(other) = mode {
            let o = self.find(other)?;
            let orec = o.snapshot();
            if !orec.running() {
                return Err(NetError::conflict(format!(
                    "cannot join network of a non running container: {other}"
                )));
            }
            let op = self.rt.paths(&orec.id);
            let _ = std::fs::copy(op.hosts(), paths.hosts());
            let _ = std::fs::copy(op.resolv_conf(), paths.resolv_conf());
            return Ok(Some(self.sandbox_key(&orec)));
        }
        let sandbox = self.net.sandbox_create(&rec.id).await?;
        for a in &rec.networks {
            let user = self.is_user_network(&a.network);
            if let Err(e) = self.net.connect(request(&rec, a, user)).await {
                let _ = self.net.sandbox_delete(&rec.id).await;
                return Err(e);
            }
        }
        if let Err(e) = self
            .write_hosts(&rec)
            .and_then(|_| self.write_resolv_conf(&rec))
        {
            let _ = self.net.sandbox_delete(&rec.id).await;
            return Err(e);
        }
        if let Err(e) = self.publish_ports(&rec).await {
            let _ = self.net.sandbox_delete(&rec.id).await;
            return Err(e);
        }
        Ok(Some(sandbox))
    }

    /// Where the record lists `net` (attachments name networks as the user did).
    fn attachment(&self, rec: &Record, net: &NetRef) -> Option<usize> {
        rec.networks
            .iter()
            .position(|a| match self.net.network_ref(&a.network) {
                Ok(n) => n.id == net.id,
                Err(_) => a.network == net.name,
            })
    }

    /// After a crash, a running container's record may name a network whose endpoint the
    /// controller dropped (the connect was cut short): the live endpoints are the truth.
    pub(super) fn align_networks(&self, c: &Ctr) {
        let rec = c.snapshot();
        if rec.shares_netns() {
            return;
        }
        // the embedded DNS keeps no state across restarts but the store's endpoints
        self.give_dns_servers(&rec);
        let live: std::collections::HashSet<String> = self
            .net
            .endpoints_of(&rec.id)
            .into_iter()
            .map(|(_, s)| s.network_id)
            .collect();
        let keep = |a: &Attachment| {
            self.net
                .network_ref(&a.network)
                .is_ok_and(|n| live.contains(&n.id))
        };
        if rec.networks.iter().all(keep) {
            return;
        }
        let _ = self.update(c, |r| r.networks.retain(keep));
        let _ = self.write_hosts(&c.snapshot());
    }

    /// Releases the sandbox and every endpoint (addresses, veths).
    pub(super) async fn detach_networks(&self, c: &Ctr) {
        let rec = c.snapshot();
        if rec.shares_netns() {
            return;
        }
        self.net.unpublish(&rec.id).await;
        if let Err(e) = self.net.sandbox_delete(&rec.id).await {
            tracing::warn!("container {}: releasing its network: {e}", rec.short_id());
        }
    }

    pub fn sandbox_key(&self, rec: &Record) -> PathBuf {
        self.net.sandbox_path(&rec.id)
    }

    /// The container's live endpoints, keyed by network name (inspect's `Networks`); for a
    /// stopped container, what it is configured to join.
    pub fn networks_of(&self, rec: &Record) -> Vec<(String, EndpointSettings)> {
        if rec.running() {
            return self
                .net
                .endpoints_of(&rec.id)
                .into_iter()
                .map(|(name, live)| {
                    let requested = rec.networks.iter().find(|a| {
                        self.net
                            .network_ref(&a.network)
                            .is_ok_and(|n| n.id == live.network_id)
                    });
                    match requested {
                        Some(a) => (name, epconf::shown_live(live, &a.requested)),
                        None => (name, live),
                    }
                })
                .collect();
        }
        rec.networks
            .iter()
            .map(|a| {
                let net = self.net.network_ref(&a.network).ok();
                let id = net.as_ref().map(|n| n.id.clone()).unwrap_or_default();
                let name = net.map(|n| n.name).unwrap_or_else(|| a.network.clone());
                (name, epconf::shown_stopped(&a.requested, id))
            })
            .collect()
    }

    pub(super) fn write_hosts(&self, rec: &Record) -> Result<()> {
        let mut s = String::from(HOSTS_HEADER);
        for (_, ep) in self.net.endpoints_of(&rec.id) {
            if !ep.ip_address.is_empty() {
                s += &format!("{}\t{}\n", ep.ip_address, rec.config.hostname);
            }
            if !ep.global_ipv6_address.is_empty() {
                s += &format!("{}\t{}\n", ep.global_ipv6_address, rec.config.hostname);
            }
        }
        for l in self.legacy_links(rec).unwrap_or_default() {
            s += &super::links::hosts_line(&l);
        }
        for h in rec.host_config.extra_hosts.iter().flatten() {
            if let Some((name, ip)) = h.split_once(':') {
                s += &format!("{ip}\t{name}\n");
            }
        }
        let p = self.rt.paths(&rec.id).hosts();
        write_in_place(&p, &s)
    }

    /// The container's `--dns` servers, as the embedded DNS's upstreams for it.
    fn give_dns_servers(&self, rec: &Record) {
        let dns = rec.host_config.dns.iter().flatten();
        let ips: Vec<std::net::IpAddr> = dns.filter_map(|d| d.parse().ok()).collect();
        self.net.set_dns_servers(&rec.id, &ips);
    }

    /// Docker's rules: on a user-defined network the embedded DNS (`nameserver 127.0.0.11`,
    /// `options ndots:0`) forwards to `--dns` or the host's servers; elsewhere the servers
    /// are written directly. Search domains and options: the flags', else the host's.
    fn write_resolv_conf(&self, rec: &Record) -> Result<()> {
        let hc = &rec.host_config;
        let dns = hc.dns.clone().unwrap_or_default();
        let search = hc.dns_search.clone().unwrap_or_default();
        let mut opts = hc.dns_options.clone().unwrap_or_default();
        let host = std::fs::read_to_string(self.net.host_resolv_conf()).unwrap_or_default();
        let host_values = |key: &str| -> Vec<String> {
            host.lines()
                .filter(|l| l.split_whitespace().next() == Some(key))
                .flat_map(|l| l.split_whitespace().skip(1).map(str::to_string))
                .collect()
        };
        let embedded = self.net.dns_serving(&rec.id);
        let mut s = String::new();
        if embedded {
            self.give_dns_servers(rec);
            s += &format!("nameserver {}\n", berth_net::resolver::RESOLVER_IP);
        } else if dns.is_empty() {
            for ns in host_values("nameserver") {
                s += &format!("nameserver {ns}\n");
            }
        } else {
            for d in &dns {
                s += &format!("nameserver {d}\n");
            }
        }
        let search = if search.is_empty() {
            host_values("search")
        } else {
            search
        };
        if !search.is_empty() {
            s += &format!("search {}\n", search.join(" "));
        }
        if opts.is_empty() {
            opts = host_values("options");
        }
        if embedded && !opts.iter().any(|o| o.starts_with("ndots:")) {
            opts.push("ndots:0".into());
        }
        if !opts.is_empty() {
            s += &format!("options {}\n", opts.join(" "));
        }
        write_in_place(&self.rt.paths(&rec.id).resolv_conf(), &s)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect(
        &self,
        network: &str,
        container: &str,
        cfg: Option<EndpointSettings>,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        let net = self.net.network_ref(network)?;
        let c = self
            .find(container)
            .map_err(|_| no_such_container(container))?;
        if let Some(cfg) = &cfg {
            epconf::check(cfg)?;
        }
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        // What depends on the container; the network's own rules are the controller's.
        let mode = rec.network_mode();
        if mode == NetworkMode::Host {
            return Err(NetError::invalid(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        if let NetworkMode::Container(_) = mode {
            return Err(NetError::invalid("container sharing network namespace with another container or host cannot be connected to any other network"));
        }
        if mode == NetworkMode::None {
            return Err(NetError::invalid("container cannot be connected to multiple networks with one of the networks in private (none) mode"));
        }
        let a = Attachment {
            network: net.name.clone(),
            requested: cfg.unwrap_or_default(),
        };
        let mut req = request(&rec, &a, !net.predefined);
        if !rec.running() {
            // Only recorded now; the controller checks what it would check at connect.
            self.net.check_endpoint(&req)?;
            if self.attachment(&rec, &net).is_some() {
                return Err(NetError::forbidden(format!(
                    "endpoint with name {} already exists in network {}",
                    rec.name, net.name
                )));
            }
            self.update(&c, |r| r.networks.push(a))?;
            return Ok(());
        }
        // The container record is committed with the endpoint, in one store transaction.
        let mut next = rec.clone();
        next.networks.push(a.clone());
        let bytes = serde_json::to_vec(&next).map_err(|e| NetError::internal(e.to_string()))?;
        req.with = vec![(super::record::CONTAINERS, rec.id.clone(), bytes)];
        let t_checks = t0.elapsed();
        if let Err(e) = self.net.connect(req).await {
            // The transaction may have been committed before the kernel step failed.
            let _ = self.persist(&rec);
            return Err(e);
        }
        let t_net = t0.elapsed();
        *c.rec.lock().unwrap() = next.clone();
        c.bump();
        self.write_hosts(&next)?;
        // Joining a user network brings the embedded DNS (Docker rewrites resolv.conf then,
        // also for a container that started on the default bridge).
        if !net.predefined {
            self.write_resolv_conf(&next)?;
        }
        let t_files = t0.elapsed();
        self.publish_ports_again(&next).await;
        tracing::debug!(
            "container {}: connect to {}: checks {t_checks:?}, network {:?}, files {:?}, ports {:?}",
            rec.short_id(),
            net.name,
            t_net - t_checks,
            t_files - t_net,
            t0.elapsed() - t_files
        );
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(&self, network: &str, container: &str, _force: bool) -> Result<()> {
        let net = self.net.network_ref(network)?;
        let c = self
            .find(container)
            .map_err(|_| no_such_container(container))?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if net.driver == berth_net::drivers::HOST || rec.network_mode() == NetworkMode::Host {
            return Err(NetError::invalid(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let pos = self.attachment(&rec, &net);
        if rec.running() {
            self.net.unpublish_on(&rec.id, &net.id).await;
            self.net.disconnect(&rec.id, &net.id).await?;
        } else if pos.is_none() {
            return Err(NetError::internal(format!(
                "container {} is not connected to the network {}",
                rec.id, net.name
            )));
        }
        let rec = self.update(&c, |r| {
            if let Some(i) = pos {
                r.networks.remove(i);
            }
        })?;
        if rec.running() {
            self.write_hosts(&rec)?;
        }
        Ok(())
    }
}

fn copy_host_file(src: &str, dst: &std::path::Path, fallback: &str) {
    let s = std::fs::read_to_string(src).unwrap_or_else(|_| fallback.to_string());
    let _ = write_in_place(dst, &s);
}

/// Rewrites a file the container has bind-mounted. In place (not rename): a bind mount pins
/// the inode, so a renamed-over file would never be seen inside. Written over, then cut to
/// length, not truncated first: ext4 flushes a file truncated to zero and rewritten when it
/// is closed (`auto_da_alloc`), which cost 1-7 ms per connect on a busy disk (10 µs now).
fn write_in_place(p: &std::path::Path, s: &str) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let err = |e: std::io::Error| NetError::internal(format!("writing {}: {e}", p.display()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map_err(err)?;
    f.write_all_at(s.as_bytes(), 0).map_err(err)?;
    f.set_len(s.len() as u64).map_err(err)
}
