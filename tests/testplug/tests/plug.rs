//! berth-testplug driven by berth's own plugin client, the plugin running in a network
//! namespace of its own (root only; skipped otherwise).

use berth_net::plugins::api::{ipam as ia, net as na};
use berth_net::plugins::ipam::gateway_request;
use berth_net::plugins::{Config, Dirs, RemoteDriver, RemoteIpam};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn links(pid: u32) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn addrs(pid: u32, dev: &str) -> String {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "ip",
            "-o",
            "addr",
            "show",
            "dev",
            dev,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn network_and_ipam_do_real_work() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("calls.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-testplug"));
    cmd.arg("--socket")
        .arg(dir.path().join("testplug.sock"))
        .arg("--range")
        .arg("10.231.0.0/16")
        .arg("--record")
        .arg(&record);
    // SAFETY: unshare is async-signal-safe; the child gets a network namespace of its own.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let plugin = Plugin(cmd.spawn().unwrap());
    let pid = plugin.0.id();
    let plugins = berth_net::plugins::Plugins::new(Config {
        dirs: Dirs::from_dirs(&[dir.path().to_path_buf()]),
        retry: berth_net::plugins::Retry {
            unit: Duration::from_millis(100),
            limit: 30,
        },
        ..Config::default()
    });

    let ipam = RemoteIpam::resolve(&plugins, "testplug").await.unwrap();
    let d = RemoteDriver::resolve(&plugins, "testplug").await.unwrap();
    let space = ipam.address_space(false).unwrap();
    assert_eq!(space, "testplug-local");
    let pool = ipam
        .request_pool(&ia::RequestPoolRequest {
            address_space: space.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.pool.to_string(), "10.231.0.0/24");
    let (gw, _) = ipam
        .request_address(&pool.id, None, Some(gateway_request()))
        .await
        .unwrap();
    assert_eq!(gw.to_string(), "10.231.0.1/24");
    let nid = "4f1c0ffee0000000000000000000000000000000000000000000000000000001";
    d.create_network(&na::CreateNetworkRequest {
        network_id: nid.into(),
        ipv4_data: vec![na::IpamData {
            address_space: space,
            pool: pool.pool.to_string(),
            gateway: Some(gw.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(addrs(pid, "tpbr4f1c0ffe").contains("10.231.0.1/24"));

    let (a, _) = ipam.request_address(&pool.id, None, None).await.unwrap();
    assert_eq!(a.to_string(), "10.231.0.2/24");
    let eid = "abcdef0123456789000000000000000000000000000000000000000000000002";
    let i = d
        .create_endpoint(&na::CreateEndpointRequest {
            network_id: nid.into(),
            endpoint_id: eid.into(),
            interface: na::EndpointInterface {
                address: a.to_string(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let mac = i.mac.expect("the plugin chose a MAC");
    assert_eq!(mac[0], 0x02);
    let j = d
        .join(&na::JoinRequest {
            network_id: nid.into(),
            endpoint_id: eid.into(),
            sandbox_key: "/run/berth/netns/x".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(j.src_name, "tpcabcdef012");
    assert_eq!(j.dst_prefix, "eth");
    assert_eq!(j.gateway, Some("10.231.0.1".parse().unwrap()));
    let l = links(pid);
    assert!(l.contains("tpcabcdef012@tphabcdef012"), "{l}");
    assert!(
        l.contains("tphabcdef012@tpcabcdef012") && l.contains("master tpbr4f1c0ffe"),
        "{l}"
    );

    // an address in use is refused with the plugin's error
    let e = ipam
        .request_address(&pool.id, Some(a.addr()), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "IpamDriver.RequestAddress: Address already in use"
    );

    d.leave(nid, eid).await.unwrap();
    d.delete_endpoint(nid, eid).await.unwrap();
    assert!(!links(pid).contains("tphabcdef012"));
    ipam.release_address(&pool.id, a.addr()).await.unwrap();
    ipam.release_address(&pool.id, gw.addr()).await.unwrap();
    ipam.release_pool(&pool.id).await.unwrap();
    d.delete_network(nid).await.unwrap();
    assert!(!links(pid).contains("tpbr4f1c0ffe"));

    let calls: Vec<String> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["Method"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(calls[0], "Plugin.Activate");
    assert_eq!(calls.last().unwrap(), "NetworkDriver.DeleteNetwork");
    assert_eq!(calls.iter().filter(|c| *c == "Plugin.Activate").count(), 1);
}
