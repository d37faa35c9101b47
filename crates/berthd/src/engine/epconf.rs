//! A container's `EndpointSettings` as the user gave them (create's `EndpointsConfig`,
//! connect's `EndpointConfig`): Docker's checks of them, what of them reaches the network
//! library, and how they show in inspect before and after the container starts.

use super::record::{Attachment, Record};
use super::Result;
use berth_api::EndpointSettings;
use berth_net::endpoint::parse_mac;
use berth_net::NetError;
use std::net::IpAddr;

/// Docker's checks of the parts berth-net does not check itself: the MAC address (moby's
/// `validateEndpointSettings`, 400) and the link-local addresses (20.10's
/// `buildCreateEndpointOptions`, which prints the whole list, 500).
pub fn check(ep: &EndpointSettings) -> Result<()> {
    if !ep.mac_address.is_empty() && parse_mac(&ep.mac_address).is_none() {
        return Err(NetError::invalid(format!(
            "invalid MAC address {}",
            ep.mac_address
        )));
    }
    let lls = link_local_strs(ep);
    if lls
        .iter()
        .any(|s| !s.is_empty() && s.parse::<IpAddr>().is_err())
    {
        return Err(NetError::internal(format!(
            "Invalid link-local IP address: [{}]",
            lls.join(" ")
        )));
    }
    Ok(())
}

fn link_local_strs(ep: &EndpointSettings) -> Vec<String> {
    ep.ipam_config
        .as_ref()
        .and_then(|c| c.link_local_ips.clone())
        .unwrap_or_default()
}

/// The link-local addresses to put on the interface (checked by [`check`] before).
pub fn link_local(ep: &EndpointSettings) -> Vec<IpAddr> {
    link_local_strs(ep)
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The MAC the endpoint gets: the one asked for on this network, else the container's
/// `MacAddress`, which Docker applies only on the network of its `NetworkMode` (a second
/// interface with the same address would break both).
pub fn mac(rec: &Record, a: &Attachment) -> Option<String> {
    if !a.requested.mac_address.is_empty() {
        return Some(a.requested.mac_address.clone());
    }
    let on_mode = rec.network_mode().network() == Some(a.network.as_str());
    rec.config
        .mac_address
        .clone()
        .filter(|m| !m.is_empty() && on_mode)
}

/// A live endpoint as inspect shows it: the operational fields from the network library,
/// what the user asked for (`IPAMConfig` with its link-local addresses, `DriverOpts`) as given.
pub fn shown_live(mut live: EndpointSettings, requested: &EndpointSettings) -> EndpointSettings {
    if requested.ipam_config.is_some() {
        live.ipam_config = requested.ipam_config.clone();
    }
    live.driver_opts = requested.driver_opts.clone();
    live
}

/// The endpoint of a container that is not running: only what the user asked for (Docker
/// keeps the request, operational fields empty).
pub fn shown_stopped(requested: &EndpointSettings, network_id: String) -> EndpointSettings {
    EndpointSettings {
        ipam_config: requested.ipam_config.clone(),
        links: requested.links.clone(),
        aliases: requested.aliases.clone(),
        network_id,
        mac_address: requested.mac_address.clone(),
        driver_opts: requested.driver_opts.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::EndpointIpamConfig;

    fn with_ll(ll: &[&str]) -> EndpointSettings {
        EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                link_local_ips: Some(ll.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn checks_have_dockers_words() {
        let mut ep = EndpointSettings {
            mac_address: "02:42:ac:11:00:zz".into(),
            ..Default::default()
        };
        let e = check(&ep).unwrap_err();
        assert_eq!(e.message, "invalid MAC address 02:42:ac:11:00:zz");
        ep.mac_address = "02:42:ac:11:00:02".into();
        assert!(check(&ep).is_ok());
        let e = check(&with_ll(&["169.254.1.1", "bogus"])).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid link-local IP address: [169.254.1.1 bogus]"
        );
        assert_eq!(
            link_local(&with_ll(&["169.254.8.8", "fe80::8"])),
            vec![
                "169.254.8.8".parse::<IpAddr>().unwrap(),
                "fe80::8".parse().unwrap()
            ]
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02-42-AC-11-00-02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:002"), None);
    }
}
