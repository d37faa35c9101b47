//! Network create: the request planned, names and subnets reserved under the state lock,
//! the record persisted, and only then the kernel (bridge, firewall) touched; every step
//! undone when a later one fails.

use super::*;

impl Controller {
    pub async fn create(&self, req: &NetworkCreateRequest) -> Result<String> {
        let plan = plan(req)?;
        if plan.driver == drivers::OVERLAY {
            return self.create_overlay(plan, req).await;
        }
        self.create_planned(plan, req, false).await
    }

    /// Bridge options parsed and names checked, then reserve (state lock), persist, and only
    /// then touch the kernel.
    pub(super) async fn create_planned(
        &self,
        plan: CreatePlan,
        req: &NetworkCreateRequest,
        predefined: bool,
    ) -> Result<String> {
        let id = new_id();
        let t0 = std::time::Instant::now();
        let mut lap = crate::laps::Laps::start();
        let options = req.options.clone().unwrap_or_default();
        // a plugin's network: its capabilities are known before anything is taken
        let scope = match drivers::Kind::of(&plan.driver) {
            Some(k) => k.scope(),
            None => self.driver(&plan.driver).await?.capabilities().scope,
        };
        if scope == drivers::Scope::Global {
            // kept in the cluster store, as overlays are (controller/plugin_cluster.rs)
            return self.create_overlay(plan, req).await;
        }
        let bridge = match plan.driver == drivers::BRIDGE {
            true => Some(BridgeConfig::from_options(
                &options,
                &format!("br-{}", &id[..12]),
            )?),
            false => None,
        };
        {
            let st = self.lock();
            if st.pending_names.contains(&plan.name)
                || st.networks.values().any(|n| n.name == plan.name)
            {
                return Err(NetError::conflict(format!(
                    "network with name {} already exists",
                    plan.name
                )));
            }
            if let Some(bridge) = &bridge {
                if let Some(other) = st
                    .networks
                    .values()
                    .find(|n| n.bridge.as_ref().is_some_and(|b| b.name == bridge.name))
                {
                    return Err(NetError::forbidden(format!(
                        "cannot create network {id} ({}): conflicts with network {} ({}): networks have same bridge name",
                        bridge.name, other.id, bridge.name
                    )));
                }
                if st.bridges.contains(&bridge.name) {
                    return Err(NetError::forbidden(format!(
                        "bridge name {} is in use by a network being created or removed",
                        bridge.name
                    )));
                }
            }
        }
        lap.mark("checks");
        if let Some(bridge) = &bridge {
            if self.osl.link_exists(&bridge.name).await? {
                return Err(NetError::forbidden(format!(
                    "cannot create network {} ({}): an interface named {} already exists on the host",
                    plan.name, bridge.name, bridge.name
                )));
            }
        }
        // Auto-allocated subnets must not overlap what the host routes; the routes of berth's
        // own bridges are already in the allocator, so they are dropped here to keep the check
        // cheap however many networks exist.
        // a remote IPAM chooses the pools (after the driver was resolved, as Docker does)
        let remote = match &plan.ipam_driver {
            Some(name) => {
                let ipam = self.remote_ipam(name).await?;
                let opts = req.ipam.as_ref().and_then(|i| i.options.as_ref());
                let pools = self.request_pools(&ipam, &plan, opts, false).await?;
                Some((ipam, pools))
            }
            None => None,
        };
        let host = if plan.v4.is_none() && remote.is_none() {
            let all = self.osl.host_networks().await?;
            let st = self.lock();
            all.into_iter()
                .filter(|h| !st.subnets.is_taken_exact(h))
                .collect()
        } else {
            vec![]
        };
        lap.mark("host routes");

        // The plugin calls took time: the name may have been taken meanwhile. Checked and
        // reserved under one lock: two creates of one name that both saw it free between two
        // lockings would both go on (two networks of one name).
        let reserved = {
            let mut st = self.lock();
            !st.networks.values().any(|n| n.name == plan.name)
                && st.pending_names.insert(plan.name.clone())
        };
        if !reserved {
            if let Some((ipam, pools)) = &remote {
                self.release_pools(ipam, pools).await;
            }
            return Err(NetError::conflict(format!(
                "network with name {} already exists",
                plan.name
            )));
        }
        let subnets = {
            let mut st = self.lock();
            // the same for a bridge name given as an option
            let subnets = match bridge
                .as_ref()
                .filter(|b| !st.bridges.insert(b.name.clone()))
            {
                Some(b) => Err(NetError::forbidden(format!(
                    "bridge name {} is in use by a network being created or removed",
                    b.name
                ))),
                None => match &remote {
                    Some((_, pools)) => Ok(pools.clone()),
                    None => allocate_subnets(&mut st, &id, &plan, &host).inspect_err(|_| {
                        if let Some(b) = &bridge {
                            st.bridges.remove(&b.name);
                        }
                    }),
                },
            };
            if subnets.is_err() {
                st.pending_names.remove(&plan.name);
            }
            subnets
        };
        let subnets = match subnets {
            Ok(s) => s,
            Err(e) => {
                if let Some((ipam, pools)) = &remote {
                    self.release_pools(ipam, pools).await;
                }
                return Err(e);
            }
        };
        let net = Network {
            id: id.clone(),
            name: plan.name.clone(),
            driver: plan.driver.clone(),
            scope: "local".into(),
            created: now_rfc3339(),
            enable_ipv6: plan.enable_ipv6,
            internal: req.internal,
            attachable: req.attachable,
            ingress: req.ingress,
            ipam_driver: req
                .ipam
                .as_ref()
                .map(|i| i.driver.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "default".into()),
            ipam_options: req.ipam.as_ref().and_then(|i| i.options.clone()),
            user_ipam: plan.user_ipam.clone(),
            subnets,
            options,
            labels: req.labels.clone().unwrap_or_default(),
            bridge,
            predefined,
            overlay: None,
        };
        lap.mark("subnets");
        match self.build(&net, &mut lap).await {
            Ok(()) => {
                let mut st = self.lock();
                st.pending_names.remove(&net.name);
                st.networks.insert(id.clone(), net);
                drop(st);
                // a create is tens of milliseconds alone, seconds under heavy load (its
                // netlink requests queue behind the containers'); say where a slow one waited
                if t0.elapsed() > std::time::Duration::from_secs(5) {
                    tracing::warn!("network {} created in {:?}: {lap}", plan.name, t0.elapsed());
                } else {
                    tracing::debug!("network {} created: {lap}", plan.name);
                }
                Ok(id)
            }
            Err(e) => {
                {
                    let mut st = self.lock();
                    st.pending_names.remove(&net.name);
                    self.release(&mut st, &net);
                }
                // the driver has undone its part (DeleteNetwork) first
                if let Some((ipam, pools)) = &remote {
                    self.release_pools(ipam, pools).await;
                }
                Err(e)
            }
        }
    }

    /// Store first (so a crash mid-way is finished by reconcile), then bridge, then rules;
    /// on failure everything done so far is undone.
    pub(super) async fn build(&self, net: &Network, lap: &mut crate::laps::Laps) -> Result<()> {
        let cursor = self.lock().subnets.cursor;
        self.store.commit(&[
            Op::put(NETWORKS, &net.id, net)?,
            Op::put(META, CURSOR_KEY, &cursor)?,
        ])?;
        lap.mark("store");
        crate::fail::point("network-create/stored");
        let driver = self.driver(&net.driver).await?;
        let result = async {
            driver.create_network(net).await?;
            lap.mark("bridge");
            crate::fail::point("network-create/bridge");
            if let Some(f) = fw_network(net) {
                if let Err(e) = self.fw.add_network(&f) {
                    let _ = driver.delete_network(net).await;
                    return Err(e.into());
                }
            }
            lap.mark("firewall");
            crate::fail::point("network-create/firewall");
            Ok(())
        }
        .await;
        if result.is_err() {
            if let Err(e) = self.store.delete(NETWORKS, &net.id) {
                tracing::error!("undoing network {}: {e}", net.id);
            }
        }
        result
    }

    pub(super) fn release(&self, st: &mut State, net: &Network) {
        for s in net.subnets.iter().filter(|s| s.remote.is_none()) {
            st.subnets.release(&s.pool.subnet);
        }
        if let Some(b) = &net.bridge {
            st.bridges.remove(&b.name);
        }
    }
}

/// Takes the subnets of a plan (explicit or auto) and reserves gateway and aux addresses; on
/// error nothing stays taken.
fn allocate_subnets(
    st: &mut State,
    id: &str,
    plan: &CreatePlan,
    host: &[IpNet],
) -> Result<Vec<Subnet>> {
    let mut out: Vec<Subnet> = Vec::new();
    let undo = |st: &mut State, out: &[Subnet]| {
        for s in out {
            st.subnets.release(&s.pool.subnet);
        }
    };
    let v4 = match &plan.v4 {
        Some(r) => Some(r.clone()),
        None => match st.subnets.allocate(id, host) {
            Some(subnet) => Some(SubnetRequest {
                subnet,
                range: None,
                gateway: None,
                aux: BTreeMap::new(),
            }),
            None => return Err(NetError::not_found("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")),
        },
    };
    let explicit = [plan.v4.is_some(), true];
    for (i, r) in [v4, plan.v6.clone()].into_iter().enumerate() {
        let Some(r) = r else { continue };
        if explicit[i] && st.subnets.take(&r.subnet, id).is_err() {
            undo(st, &out);
            return Err(NetError::forbidden(
                "Pool overlaps with other one on this address space",
            ));
        }
        let mut pool = AddressPool::new(r.subnet, r.range);
        match prepare(&mut pool, r.gateway, &r.aux) {
            Ok(gateway) => out.push(Subnet {
                pool,
                gateway,
                aux: r.aux.clone(),
                remote: None,
            }),
            Err((gw, e)) => {
                st.subnets.release(&r.subnet);
                undo(st, &out);
                return Err(gateway_error(gw, e));
            }
        }
    }
    Ok(out)
}
