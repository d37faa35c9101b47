//! Docker's output conventions: Go templates for `--format`, Go's `%v` printing, tabwriter
//! tables, and indented JSON for inspect.

mod gofmt;
mod tabwriter;
pub mod template;

use serde_json::{Map, Value};

/// The docker CLI turns the two-character sequences `\t` and `\n` of a command-line format into
/// a tab and a newline before parsing it.
pub fn docker_escapes(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Renders rows with `format`. A `table ` format gets a header line (the template rendered
/// against `headers`) and aligned columns; any other format prints one rendered line per row.
pub fn render_list(
    format: &str,
    headers: &Map<String, Value>,
    rows: &[Value],
) -> Result<String, String> {
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, format),
    };
    let tmpl = template::Template::parse(body)?;
    let mut out = String::new();
    if table {
        out.push_str(&tmpl.execute_header(&Value::Object(headers.clone()))?);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&tmpl.execute(r)?);
        out.push('\n');
    }
    Ok(if table { tabwriter::align(&out) } else { out })
}

/// JSON as `docker inspect` prints it: 4-space indent and Go's HTML-safe escaping.
pub fn indent_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("serializable");
    go_html_escape(&String::from_utf8(buf).expect("utf-8"))
}

/// `<`, `>` and `&` can only occur inside JSON strings, so escaping them everywhere is safe.
pub fn go_html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers() -> Map<String, Value> {
        json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn docker_default_table() {
        let rows = vec![
            json!({"ID": "0d1f2e3c4b5a", "Name": "bridge", "Driver": "bridge", "Scope": "local"}),
            json!({"ID": "1d1f2e3c4b5a", "Name": "none", "Driver": "null", "Scope": "local"}),
        ];
        let out = render_list(
            "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            &headers(),
            &rows,
        )
        .unwrap();
        assert_eq!(
            out,
            "NETWORK ID     NAME      DRIVER    SCOPE\n0d1f2e3c4b5a   bridge    bridge    local\n1d1f2e3c4b5a   none      null      local\n"
        );
    }

    #[test]
    fn plain_format_has_no_header() {
        let rows = vec![json!({"Name": "a"}), json!({"Name": "b"})];
        assert_eq!(
            render_list("{{.Name}}", &headers(), &rows).unwrap(),
            "a\nb\n"
        );
    }

    #[test]
    fn inspect_json_is_indented_and_escaped() {
        let v = json!([{"Name": "a<b", "Labels": {}}]);
        assert_eq!(
            indent_json(&v),
            "[\n    {\n        \"Name\": \"a\\u003cb\",\n        \"Labels\": {}\n    }\n]"
        );
    }
}
