//! Flags → `POST /containers/create` body, checked against what docker 28 sends
//! (engine-api.md §2.4, §6.1).

use super::create_args::{build, Host, Spec};
use super::RunArgs;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct T {
    #[command(flatten)]
    a: RunArgs,
}

fn parse(args: &[&str]) -> Result<RunArgs, String> {
    T::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
        .map(|t| t.a)
        .map_err(|e| e.to_string())
}

fn spec(args: &[&str]) -> Result<Spec, String> {
    let a = parse(args)?;
    let env = |k: &str| match k {
        "HOME" => Some("/home/u".to_string()),
        _ => None,
    };
    build(
        &a.flags,
        &Host {
            env: &env,
            console: (0, 0),
        },
        a.detach,
    )
}

fn body(args: &[&str]) -> Value {
    spec(args).unwrap().body
}

fn empty_endpoint() -> Value {
    json!({"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,
           "NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,
           "IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0})
}

#[test]
fn plain_run() {
    let b = body(&["busybox", "echo", "hi"]);
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
            "HostConfig",
            "NetworkingConfig"
        ]
    );
    assert_eq!(b["Image"], "busybox");
    assert_eq!(b["Cmd"], json!(["echo", "hi"]));
    assert_eq!(b["Env"], Value::Null);
    assert_eq!(b["Entrypoint"], Value::Null);
    assert_eq!(b["Labels"], json!({}));
    assert_eq!(
        (&b["AttachStdin"], &b["AttachStdout"], &b["AttachStderr"]),
        (&json!(false), &json!(true), &json!(true))
    );
    let h = &b["HostConfig"];
    assert_eq!(h["NetworkMode"], "default");
    assert_eq!(h["PortBindings"], json!({}));
    assert_eq!(h["AutoRemove"], false);
    assert_eq!(h["Links"], Value::Null);
    assert_eq!(h["Dns"], json!([]));
    assert_eq!(h["DnsOptions"], json!([]));
    assert_eq!(h["DnsSearch"], json!([]));
    assert_eq!(h["ExtraHosts"], Value::Null);
    assert_eq!(h["ConsoleSize"], json!([0, 0]));
    assert_eq!(
        b["NetworkingConfig"],
        json!({"EndpointsConfig": {"default": empty_endpoint()}})
    );
    assert_eq!(b["Cmd"], json!(["echo", "hi"]));
    assert_eq!(body(&["busybox"])["Cmd"], Value::Null);
}

#[test]
fn the_reference_example() {
    let b = body(&[
        "-d",
        "--name",
        "rsch-web",
        "-h",
        "webhost",
        "--network",
        "rsch-n4",
        "--network-alias",
        "webalias",
        "-p",
        "18080:80",
        "-p",
        "127.0.0.1:18081:81/udp",
        "-p",
        "18090-18091:90-91",
        "--expose",
        "7000",
        "busybox",
        "sh",
        "-c",
        "x",
    ]);
    assert_eq!(b["Hostname"], "webhost");
    assert_eq!(
        b["ExposedPorts"],
        json!({"7000/tcp":{},"80/tcp":{},"81/udp":{},"90/tcp":{},"91/tcp":{}})
    );
    assert_eq!(
        serde_json::to_string(&b["HostConfig"]["PortBindings"]).unwrap(),
        r#"{"80/tcp":[{"HostIp":"","HostPort":"18080"}],"81/udp":[{"HostIp":"127.0.0.1","HostPort":"18081"}],"90/tcp":[{"HostIp":"","HostPort":"18090"}],"91/tcp":[{"HostIp":"","HostPort":"18091"}]}"#
    );
    assert_eq!(b["HostConfig"]["NetworkMode"], "rsch-n4");
    let mut ep = empty_endpoint();
    ep["Aliases"] = json!(["webalias"]);
    assert_eq!(
        b["NetworkingConfig"]["EndpointsConfig"],
        json!({"rsch-n4": ep})
    );
    // -d: nothing attached
    assert_eq!(
        (
            &b["AttachStdin"],
            &b["AttachStdout"],
            &b["AttachStderr"],
            &b["StdinOnce"]
        ),
        (&json!(false), &json!(false), &json!(false), &json!(false))
    );
}

#[test]
fn interactive_tty_and_rm() {
    let s = spec(&["-it", "--rm", "busybox", "sh"]).unwrap();
    assert!(s.tty && s.attach_stdin && s.attach_stdout && s.attach_stderr && s.auto_remove);
    let b = s.body;
    assert_eq!(
        (
            &b["OpenStdin"],
            &b["AttachStdin"],
            &b["StdinOnce"],
            &b["Tty"]
        ),
        (&json!(true), &json!(true), &json!(true), &json!(true))
    );
    assert_eq!(b["HostConfig"]["AutoRemove"], true);
    let s = spec(&["-d", "-i", "busybox"]).unwrap();
    assert_eq!(s.body["OpenStdin"], true);
    assert_eq!(s.body["StdinOnce"], false);
    assert!(!s.attach_stdin);
    let s = spec(&["-a", "STDERR", "busybox"]).unwrap();
    assert!(!s.attach_stdout && s.attach_stderr && !s.attach_stdin);
    assert_eq!(
        spec(&["-d", "-a", "stdout", "busybox"]).unwrap_err(),
        "conflicting options: cannot specify both --attach and --detach"
    );
}

#[test]
fn short_h_is_hostname_and_command_flags_stay_with_the_command() {
    let a = parse(&[
        "-h", "box", "--rm", "busybox", "ls", "-l", "-h", "--rm", "-d",
    ])
    .unwrap();
    assert_eq!(a.flags.hostname.as_deref(), Some("box"));
    assert!(!a.detach);
    assert_eq!(a.flags.args, ["busybox", "ls", "-l", "-h", "--rm", "-d"]);
    assert!(parse(&["--help"]).is_err());
    assert!(parse(&[]).is_err());
    let a = parse(&["--sig-proxy=false", "busybox"]).unwrap();
    assert!(!a.sig_proxy);
    assert!(parse(&["busybox"]).unwrap().sig_proxy);
    let a = parse(&[
        "--net",
        "n1",
        "--net-alias",
        "x",
        "--dns-opt",
        "ndots:3",
        "busybox",
    ])
    .unwrap();
    assert_eq!(
        (a.flags.network, a.flags.network_alias),
        (vec!["n1".into()], vec!["x".into()])
    );
}

#[test]
fn environment_and_labels() {
    let b = body(&[
        "-e",
        "A=1",
        "-e",
        "HOME",
        "-e",
        "UNSET_VAR",
        "--env=B=x=y",
        "-l",
        "k=v",
        "-l",
        "bare",
        "busybox",
    ]);
    assert_eq!(
        b["Env"],
        json!(["A=1", "HOME=/home/u", "UNSET_VAR", "B=x=y"])
    );
    assert_eq!(b["Labels"], json!({"bare": "", "k": "v"}));
    assert_eq!(
        spec(&["-e", "=x", "busybox"]).unwrap_err(),
        "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
    );
}

#[test]
fn user_network_options() {
    let b = body(&[
        "--network",
        "n1",
        "--ip",
        "10.1.0.5",
        "--ip6",
        "fd00::5",
        "--link",
        "db:database",
        "--network-alias",
        "a1",
        "--network-alias",
        "a2",
        "busybox",
    ]);
    assert_eq!(b["HostConfig"]["Links"], json!(["db:database"]));
    let ep = &b["NetworkingConfig"]["EndpointsConfig"]["n1"];
    assert_eq!(
        ep["IPAMConfig"],
        json!({"IPv4Address":"10.1.0.5","IPv6Address":"fd00::5"})
    );
    assert_eq!(ep["Links"], json!(["db:database"]));
    assert_eq!(ep["Aliases"], json!(["a1", "a2"]));
    // a lone network without options sends no endpoint config
    assert_eq!(
        body(&["--network", "n1", "busybox"])["NetworkingConfig"],
        json!({"EndpointsConfig": {}})
    );
    let b = body(&["--network", "name=n2,alias=x,ip=10.2.0.9", "busybox"]);
    assert_eq!(b["HostConfig"]["NetworkMode"], "n2");
    let ep = &b["NetworkingConfig"]["EndpointsConfig"]["n2"];
    assert_eq!(
        (&ep["Aliases"], &ep["IPAMConfig"]["IPv4Address"]),
        (&json!(["x"]), &json!("10.2.0.9"))
    );
}

#[test]
fn default_network_options() {
    // links on the default network stay in HostConfig only
    let b = body(&["--link", "db", "--ip", "172.17.0.9", "busybox"]);
    assert_eq!(b["HostConfig"]["Links"], json!(["db"]));
    let ep = &b["NetworkingConfig"]["EndpointsConfig"]["default"];
    assert_eq!(ep["Links"], Value::Null);
    assert_eq!(ep["IPAMConfig"], json!({"IPv4Address": "172.17.0.9"}));
    assert_eq!(
        spec(&["--network-alias", "x", "busybox"]).unwrap_err(),
        "network-scoped aliases are only supported for user-defined networks"
    );
    assert_eq!(
        spec(&["--network", "bridge", "--link", "db", "busybox"]).unwrap_err(),
        "links are only supported for user-defined networks"
    );
    let b = body(&["--network", "host", "busybox"]);
    assert_eq!(b["HostConfig"]["NetworkMode"], "host");
    assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));
    let b = body(&["--mac-address", "92:d0:c6:0a:29:33", "busybox"]);
    assert_eq!(b["MacAddress"], "92:d0:c6:0a:29:33");
    assert_eq!(
        b["NetworkingConfig"]["EndpointsConfig"]["default"]["MacAddress"],
        "92:d0:c6:0a:29:33"
    );
    assert_eq!(
        spec(&["--mac-address", "92:d0", "busybox"]).unwrap_err(),
        "92:d0 is not a valid mac address"
    );
    assert_eq!(
        spec(&["--network", "n1", "--network", "host", "busybox"]).unwrap_err(),
        "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
    );
}

#[test]
fn dns_hosts_publish_all() {
    let b = body(&[
        "--dns",
        "10.204.0.53",
        "--dns-option",
        "ndots:3",
        "--dns-search",
        "x.test",
        "--add-host",
        "h:10.204.0.99",
        "--add-host",
        "v6=[::1]",
        "-P",
        "--expose",
        "8000-8001",
        "busybox",
    ]);
    let h = &b["HostConfig"];
    assert_eq!(h["Dns"], json!(["10.204.0.53"]));
    assert_eq!(h["DnsOptions"], json!(["ndots:3"]));
    assert_eq!(h["DnsSearch"], json!(["x.test"]));
    assert_eq!(h["ExtraHosts"], json!(["h:10.204.0.99", "v6:::1"]));
    assert_eq!(h["PublishAllPorts"], true);
    assert_eq!(b["ExposedPorts"], json!({"8000/tcp":{},"8001/tcp":{}}));
    assert_eq!(
        spec(&["--dns", "x", "busybox"]).unwrap_err(),
        "invalid argument \"x\" for \"--dns\" flag: IP address is not correctly formatted: x"
    );
    assert_eq!(
        spec(&["--add-host", "nohost", "busybox"]).unwrap_err(),
        "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\""
    );
    assert_eq!(
        spec(&["--add-host", "h:1.2.3", "busybox"]).unwrap_err(),
        "invalid argument \"h:1.2.3\" for \"--add-host\" flag: invalid IP address in add-host: \"1.2.3\""
    );
    assert_eq!(
        spec(&["--dns-search=-bad-", "busybox"]).unwrap_err(),
        "invalid argument \"-bad-\" for \"--dns-search\" flag: -bad- is not a valid domain"
    );
    assert_eq!(
        spec(&["--link", "a:b:c", "busybox"]).unwrap_err(),
        "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
    );
    assert_eq!(
        spec(&["-p", "80/icmp", "busybox"]).unwrap_err(),
        "invalid proto: icmp"
    );
    assert_eq!(
        spec(&["--expose", "1:2", "busybox"]).unwrap_err(),
        "invalid port format for --expose: 1:2"
    );
}

#[test]
fn entrypoint_user_workdir() {
    let b = body(&[
        "--entrypoint",
        "/bin/sh",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "busybox",
        "-c",
        "id",
    ]);
    assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(b["Cmd"], json!(["-c", "id"]));
    assert_eq!(
        (&b["User"], &b["WorkingDir"]),
        (&json!("1000:1000"), &json!("/tmp"))
    );
    // `--entrypoint=` resets the image's entrypoint
    assert_eq!(
        body(&["--entrypoint=", "busybox"])["Entrypoint"],
        json!([""])
    );
    let b = body(&[
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "--privileged",
        "busybox",
    ]);
    assert_eq!(
        (&b["StopSignal"], &b["StopTimeout"]),
        (&json!("SIGINT"), &json!(3))
    );
    assert_eq!(b["HostConfig"]["Privileged"], true);
}
