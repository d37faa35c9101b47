//! What berth leaves out (build, commit, diff, push, search, managed plugins) is answered with
//! Docker's 404 for an unknown object and otherwise 501 with a message saying what to do, never
//! a bare "page not found"; the docker CLI shows that message.

use berth_e2e::{ok, Lab};

#[test]
fn left_out_features_say_so() {
    let lab = Lab::start();
    ok(
        &lab.cli(&["create", "--name", "kept", "busybox", "true"]),
        "create",
    );
    let cases: &[(&str, &str, u16, &str)] = &[
        ("POST", "/build", 501, "berth does not build images"),
        (
            "POST",
            "/commit?container=kept",
            501,
            "does not commit containers",
        ),
        (
            "POST",
            "/commit?container=nosuch",
            404,
            "No such container: nosuch",
        ),
        ("GET", "/containers/kept/changes", 501, "(docker diff)"),
        (
            "GET",
            "/containers/nosuch/changes",
            404,
            "No such container: nosuch",
        ),
        ("POST", "/images/busybox/push", 501, "reaches no registry"),
        (
            "POST",
            "/images/nosuch/push",
            404,
            "An image does not exist locally with the tag: nosuch",
        ),
        ("GET", "/images/search?term=x", 501, "reaches no registry"),
        (
            "GET",
            "/distribution/busybox/json",
            501,
            "reaches no registry",
        ),
        (
            "POST",
            "/plugins/pull?remote=x",
            501,
            "does not install managed plugins",
        ),
        (
            "GET",
            "/plugins/weave/json",
            404,
            "plugin \"weave\" not found",
        ),
    ];
    for (method, path, code, text) in cases {
        let (got, v) = lab.api(method, &format!("/v1.41{path}"), None);
        assert_eq!(got, *code, "{method} {path}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{method} {path}: {msg}");
    }
    let (code, v) = lab.api("GET", "/plugins", None);
    assert_eq!((code, v), (200, serde_json::json!([])));
    // the docker CLI passes the message on
    let o = lab.docker(&["diff", "kept"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("(docker diff)"),
        "{o:?}"
    );
}
