//! Root tests of the published-port elements through libnftables, each in a network
//! namespace of its own: the kernel accepts every element shape, publishing is idempotent,
//! unpublishing what is gone is fine, and a reset leaves exactly the given elements.

use super::ports::{elements, self_element, Elem, FwPorts};
use super::*;
use crate::testing::in_new_netns;
use std::process::Command;

const T: &str = "berthports";

fn map_elements(map: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args([
            "list",
            if map.starts_with("self") {
                "set"
            } else {
                "map"
            },
            "inet",
            T,
            map,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // "elements = { a : b,\n c : d }" → ["a : b", "c : d"]
    let Some(i) = text.find("elements = {") else {
        return vec![];
    };
    let body = &text[i + "elements = {".len()..];
    let body = &body[..body.find('}').unwrap()];
    let mut v: Vec<String> = body
        .split(',')
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|e| !e.is_empty())
        .collect();
    v.sort();
    v
}

fn run(proto: &'static str, ip: &str, h: u16, count: u32, to: &str, c: u16) -> Vec<Elem> {
    elements(&FwPorts {
        proto,
        host_ip: ip.parse().unwrap(),
        host_port: h,
        count,
        to: to.parse().unwrap(),
        to_port: c,
    })
    .unwrap()
}

#[test]
fn port_elements_round_trip_through_the_kernel() {
    in_new_netns(|| {
        let fw = Nftables::new(T).unwrap();
        fw.init().unwrap();
        let mut all = Vec::new();
        all.extend(run("tcp", "0.0.0.0", 8080, 1, "172.17.0.2", 80));
        all.extend(run("udp", "127.0.0.1", 5353, 1, "172.17.0.2", 53));
        all.extend(run("sctp", "0.0.0.0", 10000, 10001, "172.17.0.3", 10000));
        all.extend(run("tcp", "::", 8080, 1, "fd00::2", 80));
        all.extend(run("tcp", "2001:db8::1", 9000, 3, "fd00::2", 9000));
        all.extend(run("udp", "2001:db8::1", 7000, 1, "fd00::2", 53));
        all.push(self_element("172.17.0.2".parse().unwrap()));
        all.push(self_element("fd00::2".parse().unwrap()));
        fw.publish(&all).unwrap();
        fw.publish(&all).unwrap(); // idempotent
        assert_eq!(map_elements("ports4"), ["tcp . 8080 : 172.17.0.2 . 80"]);
        assert_eq!(
            map_elements("ports4_ip"),
            ["127.0.0.1 . udp . 5353 : 172.17.0.2 . 53"]
        );
        assert_eq!(
            map_elements("ranges4"),
            ["sctp . 0.0.0.0/0 . 10000-20000 : 172.17.0.3"]
        );
        assert_eq!(map_elements("ports6"), ["tcp . 8080 : fd00::2 . 80"]);
        assert_eq!(
            map_elements("ports6_ip"),
            ["2001:db8::1 . udp . 7000 : fd00::2 . 53"]
        );
        assert_eq!(
            map_elements("ranges6"),
            ["tcp . 2001:db8::1 . 9000-9002 : fd00::2"]
        );
        assert_eq!(map_elements("self4"), ["172.17.0.2 . 172.17.0.2"]);
        assert_eq!(map_elements("self6"), ["fd00::2 . fd00::2"]);
        // a clash the allocator would never let through is refused by the kernel too
        let clash = run("sctp", "127.0.0.1", 15000, 2, "172.17.0.9", 15000);
        assert!(fw.publish(&clash).is_err());

        // unpublish one run, then again (already gone)
        let first = run("tcp", "0.0.0.0", 8080, 1, "172.17.0.2", 80);
        fw.unpublish(&first).unwrap();
        fw.unpublish(&first).unwrap();
        assert!(map_elements("ports4").is_empty());
        assert_eq!(map_elements("ranges6").len(), 1);

        // init keeps the elements (a restarted daemon)
        fw.init().unwrap();
        assert_eq!(map_elements("ranges4").len(), 1);

        // reset: exactly what is given
        fw.reset_ports(&first).unwrap();
        assert_eq!(map_elements("ports4"), ["tcp . 8080 : 172.17.0.2 . 80"]);
        for m in [
            "ports4_ip",
            "ranges4",
            "ports6",
            "ports6_ip",
            "ranges6",
            "self4",
            "self6",
        ] {
            assert!(map_elements(m).is_empty(), "{m}");
        }
    })
}
