//! Activation, registration, missing plugins, and a plugin that restarts.

use super::*;
use std::sync::Arc;

#[tokio::test]
async fn first_use_activates_and_registers_once() {
    let t = tempfile::tempdir().unwrap();
    let f = Fake::start(&sock(t.path(), "p"), fake::standard);
    let plugins = registry(t.path());
    assert!(plugins.registered("p").is_none());
    let d = RemoteDriver::resolve(&plugins, "p").await.unwrap();
    assert_eq!(
        f.methods(),
        [
            "Plugin.Activate",
            "NetworkDriver.GetCapabilities",
            "IpamDriver.GetCapabilities",
            "IpamDriver.GetDefaultAddressSpaces"
        ]
    );
    let a = f.last("Plugin.Activate");
    assert_eq!(a.verb, "POST");
    assert_eq!(
        a.header("accept"),
        Some("application/vnd.docker.plugins.v1.2+json")
    );
    assert_eq!(a.header("content-length"), Some("0"));
    assert_eq!(a.header("host"), Some("plugin.moby.localhost"));
    assert!(a.body.is_empty());
    let caps = d.capabilities().unwrap();
    assert_eq!(caps.scope, crate::drivers::Scope::Local);
    assert_eq!(caps.connectivity_scope, crate::drivers::Scope::Local);
    // cached: neither a second resolve nor the IPAM view sends anything
    RemoteDriver::resolve(&plugins, "p").await.unwrap();
    RemoteIpam::resolve(&plugins, "p").await.unwrap();
    assert_eq!(f.calls().len(), 4);
    assert_eq!(plugins.names(NETWORK_DRIVER), ["p"]);
    assert_eq!(plugins.names(IPAM_DRIVER), ["p"]);
    assert_eq!(d.plugin().activations(), 1);
}

#[tokio::test]
async fn concurrent_first_uses_activate_once() {
    let t = tempfile::tempdir().unwrap();
    let f = Fake::start(&sock(t.path(), "p"), fake::standard);
    let plugins = Arc::new(registry(t.path()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = plugins.clone();
            tokio::spawn(async move { RemoteDriver::resolve(&p, "p").await.map(drop) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let n = f
        .methods()
        .iter()
        .filter(|m| *m == "Plugin.Activate")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn missing_plugin() {
    let t = tempfile::tempdir().unwrap();
    let plugins = registry(t.path());
    let started = std::time::Instant::now();
    let e = RemoteDriver::resolve(&plugins, "nosuch").await.unwrap_err();
    assert_eq!(e.to_string(), "plugin \"nosuch\" not found");
    assert_eq!(
        crate::error::NetError::from(e).kind,
        crate::error::ErrorKind::NotFound
    );
    // 1+2+4+8 units of 5 ms
    assert!(started.elapsed() >= Duration::from_millis(75));
}

#[tokio::test]
async fn refused_then_started() {
    let t = tempfile::tempdir().unwrap();
    let path = sock(t.path(), "dead");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // the file stays
    let plugins = registry(t.path());
    let e = RemoteDriver::resolve(&plugins, "dead")
        .await
        .unwrap_err()
        .to_string();
    let escaped = path.display().to_string().replace('/', "%2F");
    assert_eq!(
        e,
        format!(
            "legacy plugin: Post \"http://{escaped}/Plugin.Activate\": dial unix {}: connect: connection refused",
            path.display()
        )
    );
    // a failed activation is forgotten: the next use activates
    assert!(plugins.registered("dead").is_none());
    let f = Fake::start(&path, fake::standard);
    RemoteDriver::resolve(&plugins, "dead").await.unwrap();
    assert_eq!(f.methods()[0], "Plugin.Activate");
}

#[tokio::test]
async fn implements_is_checked() {
    let t = tempfile::tempdir().unwrap();
    let _v = Fake::start(&sock(t.path(), "vol"), |c: &Call| match c.method.as_str() {
        "Plugin.Activate" => ok(r#"{"Implements":["VolumeDriver"]}"#),
        _ => ok("{}"),
    });
    let _i = Fake::start(
        &sock(t.path(), "ipamonly"),
        with("Plugin.Activate", || ok(r#"{"implements":["IpamDriver"]}"#)),
    );
    let plugins = registry(t.path());
    let text = "legacy plugin: Plugin does not implement the requested driver";
    assert_eq!(err_of(RemoteDriver::resolve(&plugins, "vol")).await, text);
    assert_eq!(
        err_of(RemoteDriver::resolve(&plugins, "ipamonly")).await,
        text
    );
    RemoteIpam::resolve(&plugins, "ipamonly").await.unwrap();
    // Activate answered with an error
    let _e = Fake::start(&sock(t.path(), "err"), |_: &Call| {
        Answer::Json(500, r#"{"Err":"not ready"}"#.into())
    });
    assert_eq!(
        err_of(RemoteDriver::resolve(&plugins, "err")).await,
        "legacy plugin: Plugin.Activate: not ready"
    );
}

#[tokio::test]
async fn failed_registration() {
    let t = tempfile::tempdir().unwrap();
    let _b = Fake::start(
        &sock(t.path(), "bogus"),
        with("NetworkDriver.GetCapabilities", || {
            ok(r#"{"Scope":"bogus"}"#)
        }),
    );
    let _c = Fake::start(
        &sock(t.path(), "nocaps"),
        with("NetworkDriver.GetCapabilities", || {
            Answer::Json(500, "{}".into())
        }),
    );
    let _s = Fake::start(
        &sock(t.path(), "nospaces"),
        with("IpamDriver.GetDefaultAddressSpaces", || {
            ok(r#"{"Error":"x"}"#)
        }),
    );
    let _g = Fake::start(
        &sock(t.path(), "glob"),
        with("NetworkDriver.GetCapabilities", || {
            ok(r#"{"Scope":"global","ConnectivityScope":"local"}"#)
        }),
    );
    let plugins = registry(t.path());
    assert_eq!(
        err_of(RemoteDriver::resolve(&plugins, "bogus")).await,
        "could not resolve driver bogus in registry"
    );
    assert_eq!(
        err_of(RemoteDriver::resolve(&plugins, "nocaps")).await,
        "could not resolve driver nocaps in registry"
    );
    assert_eq!(
        err_of(RemoteIpam::resolve(&plugins, "nospaces")).await,
        "invalid ipam driver: \"nospaces\""
    );
    // the network side of "nospaces" is fine
    RemoteDriver::resolve(&plugins, "nospaces").await.unwrap();
    let c = RemoteDriver::resolve(&plugins, "glob")
        .await
        .unwrap()
        .capabilities()
        .unwrap();
    assert_eq!(c.scope, crate::drivers::Scope::Global);
    assert_eq!(c.connectivity_scope, crate::drivers::Scope::Local);
}

#[tokio::test]
async fn a_plugin_that_restarts_is_activated_again() {
    let t = tempfile::tempdir().unwrap();
    let path = sock(t.path(), "p");
    let f = Fake::start(&path, fake::standard);
    let log = f.log();
    let plugins = Arc::new(registry(t.path()));
    let d = RemoteDriver::resolve(&plugins, "p").await.unwrap();
    d.leave("n", "e").await.unwrap();
    f.stop();
    // it comes back 20 ms later, within the retry window (5 ms units: ~75 ms)
    let back = {
        let path = path.clone();
        let log = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Fake::start_shared(&path, Arc::new(fake::standard), log)
        })
    };
    d.delete_network("n").await.unwrap();
    let f2 = back.await.unwrap();
    let m: Vec<String> = f2.methods();
    let after: Vec<&str> = m[5..].iter().map(String::as_str).collect();
    assert_eq!(
        after,
        [
            "Plugin.Activate",
            "NetworkDriver.GetCapabilities",
            "IpamDriver.GetCapabilities",
            "IpamDriver.GetDefaultAddressSpaces",
            "NetworkDriver.DeleteNetwork"
        ]
    );
    assert_eq!(d.plugin().activations(), 2);
    // and a plugin that stays away fails the call after the window with Go's text
    f2.stop();
    let e = err_of(d.leave("n", "e")).await;
    assert!(
        e.ends_with(&format!(
            "dial unix {}: connect: no such file or directory",
            path.display()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn plugins_dir_in_a_subdirectory_and_spec_to_a_socket() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let f = Fake::start(&t.path().join("sub/sub.sock"), fake::standard);
    let g = Fake::start(&elsewhere.path().join("x.sock"), fake::standard);
    std::fs::write(
        t.path().join("viaspec.spec"),
        format!("unix://{}", g.path.display()),
    )
    .unwrap();
    let plugins = registry(t.path());
    RemoteDriver::resolve(&plugins, "sub").await.unwrap();
    RemoteDriver::resolve(&plugins, "viaspec").await.unwrap();
    assert_eq!(f.methods()[0], "Plugin.Activate");
    assert_eq!(g.methods()[0], "Plugin.Activate");
    let _ = PathBuf::new();
}
