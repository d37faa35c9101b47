//! Tests for list tables, the tabwriter and inspect output.

use serde_json::json;

use super::tests::net;
use super::*;

#[test]
fn tabwriter_go_semantics() {
    let mut tw = TabWriter::new(0, 8, 1, ' ');
    tw.write("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n");
    assert_eq!(
        tw.flush(),
        "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"
    );
    // Text after the last tab is not a column; a one-cell line breaks blocks.
    assert_eq!(
        tabwrite("a\tb\nlonger-than-ten\tc\nsolo\nx\ty"),
        format!(
            "a{}b\nlonger-than-ten   c\nsolo\nx         y",
            " ".repeat(17)
        )
    );
    // Wide characters count as two columns, as go-runewidth measures them.
    assert_eq!(tabwrite("名前\tx\nab\ty\n"), "名前      x\nab        y\n");
}

#[test]
fn default_network_ls_table() {
    let rows = vec![
        json!({"ID": "0d1f2e3c4b5a", "Name": "bridge", "Driver": "bridge", "Scope": "local"}),
        json!({"ID": "9a8b7c6d5e4f", "Name": "host", "Driver": "host", "Scope": "local"}),
        json!({"ID": "1234567890ab", "Name": "my-long-network-name", "Driver": "bridge", "Scope": "local"}),
    ];
    let h = header_map(NETWORK_LS_HEADERS);
    let out = render_list(resolve_list_format(None, NETWORK_LS_TABLE), &h, &rows[..1]).unwrap();
    assert_eq!(
        out,
        "NETWORK ID     NAME      DRIVER    SCOPE\n0d1f2e3c4b5a   bridge    bridge    local\n"
    );
    let out = render_list(NETWORK_LS_TABLE, &h, &rows).unwrap();
    assert_eq!(
        out,
        "NETWORK ID     NAME                   DRIVER    SCOPE\n\
         0d1f2e3c4b5a   bridge                 bridge    local\n\
         9a8b7c6d5e4f   host                   host      local\n\
         1234567890ab   my-long-network-name   bridge    local\n"
    );
    assert_eq!(render_list("table", &h, &[]).unwrap(), "\n");
    assert_eq!(
        render_list(NETWORK_LS_TABLE, &h, &[]).unwrap(),
        "NETWORK ID   NAME      DRIVER    SCOPE\n"
    );
}

#[test]
fn user_list_formats() {
    let rows = vec![
        json!({"ID": "0d1f2e3c4b5a", "Name": "bridge", "Driver": "bridge", "Scope": "local"}),
        json!({"ID": "9a8b7c6d5e4f", "Name": "host", "Driver": "host", "Scope": "local"}),
    ];
    let h = header_map(NETWORK_LS_HEADERS);
    // Literal backslash-t from the shell, as docker receives it.
    assert_eq!(
        render_list(r"{{.Name}}\t{{.Driver}}", &h, &rows).unwrap(),
        "bridge\tbridge\nhost\thost\n"
    );
    assert_eq!(
        render_list(r"table {{.Name}}\t{{.ID}}", &h, &rows).unwrap(),
        "NAME      NETWORK ID\nbridge    0d1f2e3c4b5a\nhost      9a8b7c6d5e4f\n"
    );
    // Header functions leave the column names alone; pad still pads.
    assert_eq!(
        render_list(
            r"table {{.Name | upper}}\t{{lower .Driver}}\t{{json .Scope}}",
            &h,
            &rows[..1]
        )
        .unwrap(),
        "NAME      DRIVER    SCOPE\nBRIDGE    bridge    \"local\"\n"
    );
    assert_eq!(
        render_list("table {{.Nope}}", &h, &rows[..1]).unwrap(),
        "<no value>\n<no value>\n"
    );
    assert_eq!(
        render_list("json", &h, &rows[..1]).unwrap(),
        "{\"ID\":\"0d1f2e3c4b5a\",\"Name\":\"bridge\",\"Driver\":\"bridge\",\"Scope\":\"local\"}\n"
    );
    let e = render_list("{{.Name.X}}", &h, &rows).unwrap_err();
    assert!(
        e.starts_with("template parsing error: template: :1:2: executing"),
        "{e}"
    );
}

#[test]
fn escapes() {
    assert_eq!(docker_escapes(r"a\tb\nc"), "a\tb\nc");
    assert_eq!(docker_escapes(r"\\t \x \"), "\\\t \\x \\");
    assert_eq!(docker_escapes("no escapes"), "no escapes");
}

#[test]
fn inspect_output() {
    let items = vec![net(), json!({"Name": "other", "Driver": "overlay"})];
    let r = render_inspect("{{.Name}} {{.Driver}}", &items).unwrap();
    assert_eq!(
        r,
        InspectOutput {
            out: "web bridge\nother overlay\n".into(),
            errors: vec![]
        }
    );
    // No escape conversion for inspect, like docker.
    assert_eq!(
        render_inspect(r"{{.Name}}\t", &items[1..]).unwrap().out,
        "other\\t\n"
    );
    let r = render_inspect("{{.Name.X}}", &items).unwrap();
    assert_eq!((r.out.as_str(), r.errors.len()), ("\n", 2));
    assert!(r.errors[0].starts_with("template parsing error: template: :1:2:"));
    assert_eq!(
        render_inspect("{{.Name", &items).unwrap_err(),
        "template parsing error: template: :1: unclosed action"
    );
    let small = vec![json!({"Name": "a<b", "Labels": {}, "Config": []})];
    assert_eq!(
        render_inspect("", &small).unwrap().out,
        "[\n    {\n        \"Name\": \"a\\u003cb\",\n        \"Labels\": {},\n        \"Config\": []\n    }\n]\n"
    );
    assert_eq!(
        render_inspect("json", &small).unwrap().out,
        "[{\"Name\":\"a\\u003cb\",\"Labels\":{},\"Config\":[]}]\n"
    );
    assert_eq!(render_inspect("", &[]).unwrap().out, "[]\n");
}
