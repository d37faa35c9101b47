use serde_json::{json, Value};

use super::*;

pub(super) fn net() -> Value {
    json!({
        "Name": "web",
        "Id": "0d1f2e3c4b5a6978",
        "Driver": "bridge",
        "EnableIPv6": false,
        "Internal": true,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{
                "Subnet": "10.0.1.0/24",
                "IPRange": "10.0.1.128/25",
                "Gateway": "10.0.1.254",
                "AuxiliaryAddresses": {"a": "10.0.1.130"}
            }]
        },
        "Containers": {
            "bbb": {"Name": "db", "EndpointID": "e2", "MacAddress": "m2", "IPv4Address": "10.0.1.3/24", "IPv6Address": ""},
            "aaa": {"Name": "app", "EndpointID": "e1", "MacAddress": "m1", "IPv4Address": "10.0.1.2/24", "IPv6Address": ""}
        },
        "Options": {"com.docker.network.bridge.name": "br-web"},
        "Labels": {"team": "core", "env": "prod"},
        "Args": ["a", "b", "c"],
        "Nothing": null,
        "Size": 1000000.0,
        "Count": 3
    })
}

fn run(tpl: &str, data: &Value) -> String {
    Template::parse(tpl).unwrap().execute(data).unwrap()
}

fn run_err(tpl: &str, data: &Value) -> String {
    match Template::parse(tpl) {
        Err(e) => e,
        Ok(t) => t.execute(data).unwrap_err(),
    }
}

#[test]
fn field_access_and_dot() {
    let n = net();
    assert_eq!(run("{{.Name}}", &n), "web");
    assert_eq!(run("name={{ .Name }}!", &n), "name=web!");
    assert_eq!(run("{{.}}", &json!("hello")), "hello");
    assert_eq!(
        run("{{.Internal}} {{.EnableIPv6}} {{.Count}}", &n),
        "true false 3"
    );
    assert_eq!(run("plain text", &n), "plain text");
}

#[test]
fn nested_fields_and_map_keys() {
    let n = net();
    assert_eq!(run("{{.IPAM.Driver}}", &n), "default");
    assert_eq!(run("{{.Labels.team}}", &n), "core");
    assert_eq!(run("{{(index .IPAM.Config 0).Gateway}}", &n), "10.0.1.254");
    assert_eq!(
        run("{{$c := index .IPAM.Config 0}}{{$c.Subnet}}", &n),
        "10.0.1.0/24"
    );
}

#[test]
fn missing_values() {
    let n = net();
    assert_eq!(run("{{.Nope}}", &n), "<no value>");
    assert_eq!(run("{{.Labels.nope}}", &n), "<no value>");
    assert_eq!(run("{{.Nope.Deeper}}", &n), "<no value>");
    assert_eq!(run("{{.Nothing}}", &n), "<nil>");
    assert_eq!(run("{{index .Labels \"nope\"}}|", &n), "|");
    assert_eq!(run("{{if .Nope}}y{{else}}n{{end}}", &n), "n");
    assert_eq!(run("{{json .Nope}}", &n), "null");
    let g = GoFmt::docker();
    let strict = ExecOptions {
        missing_key_error: true,
        ..ExecOptions::new(&g)
    };
    let e = Template::parse("{{.Nope}}")
        .unwrap()
        .execute_with(&n, &strict)
        .unwrap_err();
    assert!(e.ends_with("map has no entry for key \"Nope\""), "{e}");
}

#[test]
fn json_func() {
    let n = net();
    assert_eq!(
        run("{{json .IPAM}}", &n),
        r#"{"Driver":"default","Options":{},"Config":[{"Subnet":"10.0.1.0/24","IPRange":"10.0.1.128/25","Gateway":"10.0.1.254","AuxiliaryAddresses":{"a":"10.0.1.130"}}]}"#
    );
    // Maps come out with sorted keys, as Go marshals them.
    assert_eq!(
        run("{{json .Labels}}", &n),
        r#"{"env":"prod","team":"core"}"#
    );
    assert_eq!(
        run("{{json .Args}} {{json .Name}} {{json .Count}}", &n),
        r#"["a","b","c"] "web" 3"#
    );
    // docker's json func disables HTML escaping; Marshal's default has it.
    let d = json!({"X": "<a&b>\n\"q\"\u{2028}"});
    assert_eq!(run("{{json .X}}", &d), r#""<a&b>\n\"q\"\u2028""#);
    assert_eq!(
        to_json(&GoFmt::docker(), &d["X"], None, true),
        r#""\u003ca\u0026b\u003e\n\"q\"\u2028""#
    );
    assert_eq!(
        to_json(&GoFmt::new(), &json!([1.5, 1e21, 1e-7, 100.0]), None, false),
        "[1.5,1e+21,1e-7,100]"
    );
    assert!(run("{{json .}}", &n).starts_with(r#"{"Name":"web","Id":"#));
}

#[test]
fn range_forms() {
    let n = net();
    assert_eq!(
        run("{{range .IPAM.Config}}{{.Subnet}} {{end}}", &n),
        "10.0.1.0/24 "
    );
    assert_eq!(
        run(
            "{{range $k, $v := .Containers}}{{$k}}={{$v.Name}};{{end}}",
            &n
        ),
        "aaa=app;bbb=db;"
    );
    assert_eq!(
        run("{{range $i, $a := .Args}}{{$i}}:{{$a}} {{end}}", &n),
        "0:a 1:b 2:c "
    );
    assert_eq!(run("{{range $a := .Args}}{{$a}}{{end}}", &n), "abc");
    assert_eq!(run("{{range .Nope}}x{{else}}empty{{end}}", &n), "empty");
    assert_eq!(
        run("{{range .IPAM.Options}}x{{else}}none{{end}}", &n),
        "none"
    );
    assert_eq!(
        run(
            "{{range .Args}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}",
            &n
        ),
        "ac"
    );
    assert_eq!(
        run(
            "{{range .Args}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}",
            &n
        ),
        "a"
    );
    assert_eq!(run("{{range .Args}}{{$.Name}}{{end}}", &n), "webwebweb");
    assert_eq!(run("{{range 3}}{{.}}{{end}}", &n), "012");
    assert!(run_err("{{range .Name}}{{end}}", &n).contains("range can't iterate over web"));
}

#[test]
fn if_else_with() {
    let n = net();
    assert_eq!(run("{{if .Internal}}yes{{else}}no{{end}}", &n), "yes");
    assert_eq!(run("{{if .EnableIPv6}}yes{{else}}no{{end}}", &n), "no");
    assert_eq!(
        run(
            "{{if .EnableIPv6}}a{{else if .Internal}}b{{else}}c{{end}}",
            &n
        ),
        "b"
    );
    assert_eq!(
        run("{{if .EnableIPv6}}a{{else if .Nope}}b{{else}}c{{end}}", &n),
        "c"
    );
    assert_eq!(run("{{with .IPAM}}{{.Driver}}{{end}}", &n), "default");
    assert_eq!(run("{{with .Nope}}x{{else}}none{{end}}", &n), "none");
    assert_eq!(
        run("{{with $d := .IPAM.Driver}}{{$d}}{{end}}", &n),
        "default"
    );
    assert_eq!(
        run("{{if and .Internal (not .EnableIPv6)}}ok{{end}}", &n),
        "ok"
    );
    assert_eq!(run("{{or .Nope .Name}} {{and .Name .Count}}", &n), "web 3");
    assert_eq!(
        run("{{if ne .Driver \"overlay\"}}local{{end}}", &n),
        "local"
    );
    assert_eq!(
        run(
            "{{if gt .Count 2}}big{{end}}{{if lt .Count 2}}small{{end}}",
            &n
        ),
        "big"
    );
    assert_eq!(run("{{if eq .Nope \"x\"}}a{{else}}b{{end}}", &n), "b");
}

#[test]
fn printf_verbs() {
    let n = net();
    assert_eq!(
        run(
            r#"{{printf "%s/%d/%v/%q" .Name .Count .Internal .Driver}}"#,
            &n
        ),
        r#"web/3/true/"bridge""#
    );
    assert_eq!(
        run(
            r#"{{printf "[%-6s][%6s][%05d][%x]" .Name .Name .Count 255}}"#,
            &n
        ),
        "[web   ][   web][00003][ff]"
    );
    assert_eq!(
        run(r#"{{printf "%.2f %v %s" 3.14159 .Size .Args}}"#, &n),
        "3.14 1e+06 [a b c]"
    );
    assert_eq!(
        run(r#"{{printf "%d %s"  .Name}}"#, &n),
        "%!d(string=web) %!s(MISSING)"
    );
    assert_eq!(
        run(r#"{{printf "%s" .Name .Count}}"#, &n),
        "web%!(EXTRA int=3)"
    );
    assert_eq!(
        run(r#"{{printf "%v %s" .IPAM.Config .Nope}}"#, &n),
        "[{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}] %!s(<nil>)"
    );
    assert_eq!(run(r#"{{printf "100%%"}}"#, &n), "100%");
    assert_eq!(
        sprintf(
            &GoFmt::new(),
            "%g %e %.3g",
            &[json!(0.000012), json!(1234.5), json!(2.0)]
        ),
        "1.2e-05 1.234500e+03 2"
    );
}

#[test]
fn pipelines_and_docker_funcs() {
    let n = net();
    assert_eq!(run("{{.Name | upper}}", &n), "WEB");
    assert_eq!(run(r#"{{.Name | printf "%s-x" | upper}}"#, &n), "WEB-X");
    assert_eq!(run(r#"{{join .Args ","}}"#, &n), "a,b,c");
    assert_eq!(
        run(r#"{{split "a:b:c" ":"}} {{len (split "a:b" ":")}}"#, &n),
        "[a b c] 2"
    );
    assert_eq!(
        run(r#"{{lower "ABC"}} {{title "hello big-world"}}"#, &n),
        "abc Hello Big-World"
    );
    assert_eq!(
        run("{{truncate .Id 5}} {{truncate .Name 10}}", &n),
        "0d1f2 web"
    );
    assert_eq!(
        run("[{{pad .Name 1 2}}][{{pad \"\" 1 2}}]", &n),
        "[ web  ][]"
    );
    assert_eq!(
        run("{{len .Args}} {{len .Labels}} {{len .Name}}", &n),
        "3 2 3"
    );
    assert_eq!(run("{{println .Name .Count}}", &n), "web 3\n");
    assert_eq!(run("{{print .Count .Count \"x\" .Count}}", &n), "3 3x3");
    assert_eq!(run("{{index .Args 1}} {{slice .Args 1}}", &n), "b [b c]");
    assert!(
        run_err("{{upper .Count}}", &n).ends_with("wrong type for value; expected string; got int")
    );
    assert!(
        run_err(r#"{{join .Args}}"#, &n).ends_with("wrong number of args for join: want 2 got 1")
    );
}

#[test]
fn variables_comments_trim() {
    let n = net();
    assert_eq!(
        run("{{$x := .Name}}{{$x}}{{$x = \"other\"}}{{$x}}", &n),
        "webother"
    );
    assert_eq!(run("a{{/* note */}}b", &n), "ab");
    assert_eq!(run("a  {{- /* note */ -}}  b", &n), "ab");
    assert_eq!(
        run("x \n {{- .Name -}} \n y", &n),
        "xwebz".replace('z', "y")
    );
    assert_eq!(run("{{range .Args -}}\n  {{.}}\n{{- end}}", &n), "abc");
    assert_eq!(run("{{-3}} {{.Name}}", &n), "-3 web");
    assert_eq!(
        run(r#"{{"a\tb"}}|{{`raw\t`}}|{{'x'}}"#, &n),
        "a\tb|raw\\t|120"
    );
}

#[test]
fn label_method_stand_in() {
    let row = json!({"Name": "web", "Label": {"team": "core"}});
    assert_eq!(
        run(r#"{{.Label "team"}}|{{.Label "none"}}|"#, &row),
        "core||"
    );
    assert!(run_err(r#"{{.Name "x"}}"#, &row).ends_with("Name is not a method but has arguments"));
}

#[test]
fn parse_errors() {
    let n = net();
    assert_eq!(run_err("{{.Name", &n), "template: :1: unclosed action");
    assert_eq!(
        run_err("{{.Name}", &n),
        "template: :1: unexpected \"}\" in operand"
    );
    assert_eq!(run_err("{{end}}", &n), "template: :1: unexpected {{end}}");
    assert_eq!(run_err("{{if .X}}a", &n), "template: :1: unexpected EOF");
    assert_eq!(
        run_err("{{foo .X}}", &n),
        "template: :1: function \"foo\" not defined"
    );
    assert_eq!(
        run_err("{{$x}}", &n),
        "template: :1: undefined variable \"$x\""
    );
    assert_eq!(
        run_err("a\nb {{}}", &n),
        "template: :2: missing value for command"
    );
    assert_eq!(
        run_err("{{if}}{{end}}", &n),
        "template: :1: missing value for if"
    );
    assert_eq!(
        run_err("{{break}}", &n),
        "template: :1: {{break}} outside {{range}}"
    );
    assert_eq!(
        run_err("{{(.Name}}", &n),
        "template: :1: unclosed left paren"
    );
    assert_eq!(run_err("{{/* x }}", &n), "template: :1: unclosed comment");
    assert_eq!(
        run_err(r#"{{"abc}}"#, &n),
        "template: :1: unterminated quoted string"
    );
    assert_eq!(
        run_err("{{.A | 3}}", &n),
        "template: :1: non executable command in pipeline stage 2"
    );
    assert_eq!(
        render_list("{{.Name", &header_map(NETWORK_LS_HEADERS), &[]).unwrap_err(),
        "template parsing error: template: :1: unclosed action"
    );
}

#[test]
fn exec_errors() {
    let n = net();
    assert_eq!(
        run_err("{{.Name.Foo}}", &n),
        "template: :1:2: executing \"\" at <.Name.Foo>: can't evaluate field Foo in type string"
    );
    assert_eq!(
        run_err("x\n  {{.Nothing.Foo}}", &n),
        "template: :2:4: executing \"\" at <.Nothing.Foo>: nil pointer evaluating interface {}.Foo"
    );
    assert!(
        run_err("{{index .Args 9}}", &n).ends_with("error calling index: index out of range: 9")
    );
    assert!(run_err("{{.Name 3}}", &n).contains("Name is not a method but has arguments"));
}

#[test]
fn gofmt_struct_and_map() {
    let n = net();
    assert_eq!(
        run("{{.IPAM.Config}}", &n),
        "[{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]"
    );
    assert_eq!(
        run("{{.IPAM}}", &n),
        "{default map[] [{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]}"
    );
    let omitted = json!({"IPAM": {"Driver": "default", "Options": null, "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}});
    assert_eq!(
        run("{{.IPAM.Config}}", &omitted),
        "[{172.18.0.0/16  172.18.0.1 map[]}]"
    );
    assert_eq!(
        run("{{.IPAM}}", &omitted),
        "{default map[] [{172.18.0.0/16  172.18.0.1 map[]}]}"
    );
    let empty_str = json!({"C": [{"Subnet": "10.0.1.0/24", "IPRange": "", "Gateway": "", "AuxiliaryAddresses": {}}]});
    assert_eq!(run("{{.C}}", &empty_str), "[{10.0.1.0/24   map[]}]");
    assert_eq!(run("{{.Labels}}", &n), "map[env:prod team:core]");
    assert_eq!(
        run("{{.Options}}", &n),
        "map[com.docker.network.bridge.name:br-web]"
    );
    assert_eq!(
        run("{{.Containers}}", &n),
        "map[aaa:{app e1 m1 10.0.1.2/24 } bbb:{db e2 m2 10.0.1.3/24 }]"
    );
    assert_eq!(run("{{.IPAM.Options}} {{.Args}}", &n), "map[] [a b c]");
    assert_eq!(run("{{.Labels}}", &json!({"Labels": null})), "map[]");
    // Unregistered objects: upper-case keys read as a struct, others as a map.
    assert_eq!(
        run(
            "{{.}}",
            &json!({"B": "1", "A": {"x": 1, "y": [true, null]}})
        ),
        "{1 map[x:1 y:[true <nil>]]}"
    );
    let mut g = GoFmt::new();
    g.register_struct("Pair", &[("Left", Zero::Str), ("Right", Zero::Int)]);
    assert_eq!(sprint_value(&g, &json!({"Left": "l"}), None), "{l 0}");
    assert_eq!(sprint_value(&g, &json!(1.5), None), "1.5");
    assert_eq!(
        sprint_value(&g, &json!(123456789.0), None),
        "1.23456789e+08"
    );
}

#[test]
fn hostile_input_errors_instead_of_panicking() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(run_err(&deep, &net()).contains("nesting deeper than"));
    let ifs = "{{if 1}}".repeat(5000);
    assert!(run_err(&ifs, &net()).contains("nesting deeper than"));
    // Deterministic garbage built from template fragments: every input must
    // parse-or-fail and execute-or-fail without a panic.
    let parts = [
        "{{",
        "}}",
        "{{-",
        " -}}",
        ".",
        ".Name",
        ".IPAM",
        ".Config",
        "$",
        "$x",
        ":=",
        "=",
        ",",
        "|",
        "(",
        ")",
        " ",
        "\"s\"",
        "`r`",
        "'c'",
        "'",
        "\"",
        "1",
        "-2",
        "0x1f",
        "1.5e3",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "index",
        "printf",
        "\"%5.2f %q %d %v %s %x\"",
        "len",
        "json",
        "slice",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "truncate",
        "pad",
        "split",
        "join",
        "nil",
        "true",
        "/*",
        "*/",
        "\n",
        "\t",
        "é",
        "名",
        "\\",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let data = net();
    for _ in 0..20_000 {
        let mut src = String::new();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..(seed >> 60) + 1 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            src.push_str(parts[(seed >> 33) as usize % parts.len()]);
        }
        if let Ok(t) = Template::parse(&src) {
            let _ = t.execute(&data);
        }
        let _ = render_list(
            &format!("table {src}"),
            &header_map(NETWORK_LS_HEADERS),
            std::slice::from_ref(&data),
        );
    }
}

#[test]
fn piping_scoping_and_keyword_trim() {
    let n = net();
    // The piped value is the last argument, as in Go.
    assert_eq!(run(r#"{{"x" | printf "%s-%s" "a"}}"#, &n), "a-x");
    assert_eq!(
        run(
            "{{range $i, $c := .IPAM.Config}}{{$i}}:{{$c.Gateway}}{{end}}",
            &n
        ),
        "0:10.0.1.254"
    );
    assert_eq!(
        run("{{with .Nope}}a{{else with .IPAM}}{{.Driver}}{{end}}", &n),
        "default"
    );
    assert_eq!(
        run("a\n  {{- if .Internal }}\n  yes\n  {{- end }}", &n),
        "a\n  yes"
    );
    assert_eq!(run("{{.IPAM.Config | len}} {{.Name\n}}", &n), "1 web");
    // A variable declared in a range body does not outlive the range.
    assert_eq!(
        run_err("{{range .Args}}{{$v := .}}{{end}}{{$v}}", &n),
        "template: :1: undefined variable \"$v\""
    );
}
