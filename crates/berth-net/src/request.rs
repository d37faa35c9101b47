//! Turning a `POST /networks/create` body into a checked plan, before anything is allocated:
//! a request refused here has changed nothing.

use crate::drivers;
use crate::error::{NetError, Result};
use crate::network::PREDEFINED;
use berth_api::{IpamConfig, NetworkCreateRequest};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

const SWARM_MSG: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// One subnet the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetRequest {
    pub subnet: IpNet,
    pub range: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub aux: BTreeMap<String, IpAddr>,
}

#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub name: String,
    pub driver: String,
    pub enable_ipv6: bool,
    pub v4: Option<SubnetRequest>,
    pub v6: Option<SubnetRequest>,
    /// Further subnets, in the order given (overlay networks may have several per family).
    pub more: Vec<SubnetRequest>,
    pub user_ipam: Vec<IpamConfig>,
    /// `--ipam-driver NAME` of a plugin (`None`: berth's own, Docker's `default`).
    pub ipam_driver: Option<String>,
}

fn cidr(s: &str) -> Option<IpNet> {
    // Go's ParseCIDR accepts host bits ("10.0.1.5/24") and means the enclosing network.
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

fn parse_subnet(c: &IpamConfig, net_name: &str) -> Result<SubnetRequest> {
    let subnet = cidr(&c.subnet).ok_or_else(|| {
        NetError::internal(format!(
            "Invalid subnet {} : invalid CIDR address: {}",
            c.subnet, c.subnet
        ))
    })?;
    let range = match c.ip_range.as_str() {
        "" => None,
        r => {
            let rn = cidr(r).ok_or_else(|| {
                NetError::internal(format!("Invalid IP range {r} : invalid CIDR address: {r}"))
            })?;
            if !subnet.contains(&rn) {
                return Err(NetError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
            Some(rn)
        }
    };
    let gateway = match c.gateway.as_str() {
        "" => None,
        g => Some(g.parse::<IpAddr>().map_err(|_| {
            NetError::internal(format!("invalid gateway address {g} in Ipam configuration"))
        })?),
    };
    let mut aux = BTreeMap::new();
    for (k, v) in c.aux_addresses.iter().flatten() {
        let ip = v.parse::<IpAddr>().map_err(|_| {
            NetError::internal(format!(
                "non parsable secondary ip address ({k}:{v}) passed for network {net_name}"
            ))
        })?;
        if !subnet.contains(&ip) {
            return Err(NetError::forbidden(format!(
                "auxiliary address: ({k}:{v}) must belong to the master pool: {subnet}"
            )));
        }
        aux.insert(k.clone(), ip);
    }
    Ok(SubnetRequest {
        subnet,
        range,
        gateway,
        aux,
    })
}

/// Checks everything about a create request that needs no state, in Docker's order.
pub fn plan(req: &NetworkCreateRequest) -> Result<CreatePlan> {
    let name = req.name.clone();
    // Docker's only rule for a name (libnetwork `IsValidName`): not blank. Spaces, '/', any
    // UTF-8 are fine: the kernel bridge's name comes from the id. `ErrInvalidName` is a
    // libnetwork "BadRequest", which the engine answers with 500.
    if name.trim().is_empty() {
        return Err(NetError::internal(format!("invalid name: {name}")));
    }
    if PREDEFINED.contains(&name.as_str()) {
        return Err(NetError::forbidden(format!(
            "operation is not permitted on predefined {name} network "
        )));
    }
    let driver = if req.driver.is_empty() {
        drivers::BRIDGE.to_string()
    } else {
        req.driver.clone()
    };
    let overlay = driver == drivers::OVERLAY;
    match req.scope.as_str() {
        "" | "local" => {}
        "global" if overlay => {}
        "swarm" => {
            return Err(NetError::forbidden(
                "cannot create a swarm scoped network when swarm is not active",
            ))
        }
        "global" => return Err(NetError::internal(SWARM_MSG)),
        s => return Err(NetError::invalid(format!("invalid scope {s:?}"))),
    }
    match driver.as_str() {
        drivers::BRIDGE => {}
        drivers::HOST | drivers::NULL => {
            return Err(NetError::forbidden(format!(
                "only one instance of \"{driver}\" network is allowed"
            )))
        }
        drivers::OVERLAY => {}
        "macvlan" | "ipvlan" => {
            return Err(NetError::not_implemented(format!(
                "the {driver} driver is not supported by berth yet"
            )))
        }
        // any other name is a plugin's, looked up by the controller
        _ => {}
    }
    if req.config_only
        || req
            .config_from
            .as_ref()
            .is_some_and(|c| !c.network.is_empty())
    {
        return Err(NetError::not_implemented(
            "config-only networks are not supported by berth yet",
        ));
    }
    let ipam = req.ipam.clone().unwrap_or_default();
    let ipam_driver = match ipam.driver.as_str() {
        "" | "default" => None,
        "null" => {
            return Err(NetError::not_implemented(
                "the null IPAM driver is not supported by berth yet",
            ))
        }
        d => Some(d.to_string()),
    };
    let user_ipam = ipam.config.unwrap_or_default();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for c in &user_ipam {
        let s = parse_subnet(c, &name)?;
        if s.subnet.addr().is_ipv6() {
            v6.push(s)
        } else {
            v4.push(s)
        }
    }
    if driver == drivers::BRIDGE && (v4.len() > 1 || v6.len() > 1) {
        return Err(NetError::forbidden(
            "bridge driver doesn't support multiple subnets",
        ));
    }
    if !v6.is_empty() && !req.enable_ipv6 {
        return Err(NetError::invalid(
            "an IPv6 subnet was given without EnableIPv6 (--ipv6)",
        ));
    }
    // a remote IPAM chooses the IPv6 pool itself (RequestPool with an empty Pool)
    if req.enable_ipv6 && v6.is_empty() && ipam_driver.is_none() {
        return Err(NetError::not_found("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"));
    }
    let (mut v4, mut v6) = (v4.into_iter(), v6.into_iter());
    Ok(CreatePlan {
        name,
        driver,
        enable_ipv6: req.enable_ipv6,
        v4: v4.next(),
        v6: v6.next(),
        more: v4.chain(v6).collect(),
        user_ipam,
        ipam_driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::Ipam;

    fn req(name: &str, cfg: Vec<IpamConfig>) -> NetworkCreateRequest {
        NetworkCreateRequest {
            name: name.into(),
            ipam: Some(Ipam {
                driver: "default".into(),
                options: None,
                config: Some(cfg),
            }),
            ..Default::default()
        }
    }

    fn sub(s: &str) -> IpamConfig {
        IpamConfig {
            subnet: s.into(),
            ..Default::default()
        }
    }

    fn msg(r: NetworkCreateRequest) -> String {
        plan(&r).unwrap_err().message
    }

    #[test]
    fn docker_messages() {
        assert_eq!(
            msg(req("bridge", vec![])),
            "operation is not permitted on predefined bridge network "
        );
        assert_eq!(
            msg(req("x", vec![sub("10.9.0.0/33")])),
            "Invalid subnet 10.9.0.0/33 : invalid CIDR address: 10.9.0.0/33"
        );
        assert_eq!(
            msg(req("x", vec![sub("10.1.0.0/24"), sub("10.2.0.0/24")])),
            "bridge driver doesn't support multiple subnets"
        );
        let mut r = req("x", vec![]);
        // any other driver is a plugin's: the controller looks it up
        r.driver = "weave".into();
        assert!(plan(&r).is_ok());
        let mut c = sub("10.206.0.0/24");
        c.aux_addresses = Some([("x".to_string(), "10.207.0.1".to_string())].into());
        assert_eq!(
            msg(req("x", vec![c])),
            "auxiliary address: (x:10.207.0.1) must belong to the master pool: 10.206.0.0/24"
        );
        let mut c = sub("10.6.0.0/24");
        c.gateway = "bogus".into();
        assert_eq!(
            msg(req("x", vec![c])),
            "invalid gateway address bogus in Ipam configuration"
        );
        let mut r = req("x", vec![]);
        r.enable_ipv6 = true;
        assert!(msg(r).contains("IPv6 address pool"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(msg(req(" ", vec![])), "invalid name:  ");
        assert_eq!(msg(req("", vec![])), "invalid name: ");
        for ok in ["ok-name_1.x", "test 01", "a/b", "é", "-dash"] {
            assert!(plan(&req(ok, vec![])).is_ok(), "{ok}");
        }
    }

    #[test]
    fn splits_families() {
        let mut r = req("x", vec![sub("10.0.0.0/24"), sub("2001:db8::/64")]);
        r.enable_ipv6 = true;
        let p = plan(&r).unwrap();
        assert_eq!(p.v4.unwrap().subnet.to_string(), "10.0.0.0/24");
        assert_eq!(p.v6.unwrap().subnet.to_string(), "2001:db8::/64");
    }
}
