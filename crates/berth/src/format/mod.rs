//! Docker's `--format` handling over `serde_json::Value`: a Go
//! text/template engine (`template`, `exec`, `funcs`), Go `fmt`/`json`
//! printing (`gofmt`), and docker's tables (`table`).
//!
//! Typical use:
//! - list commands: `render_list(resolve_list_format(user, NETWORK_LS_TABLE), &header_map(NETWORK_LS_HEADERS), &rows)`
//! - inspect: `render_inspect(format, &items)`

// A library for every list/inspect command; any one build of the CLI uses
// only part of it.
#![allow(dead_code, unused_imports)]

mod exec;
mod funcs;
pub mod gofmt;
mod lex;
mod printf;
pub mod table;
pub mod template;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_list;
#[cfg(test)]
mod tests_props;

use serde_json::Value;

pub use exec::ExecOptions;
pub use gofmt::{sprint_value, to_json, GoFmt, Zero};
pub use printf::sprintf;
pub use table::{
    header_map, render_list, render_list_with, resolve_list_format, tabwrite, TabWriter,
    NETWORK_LS_HEADERS, NETWORK_LS_TABLE,
};
pub use template::Template;

/// Turns the two-character sequences `\t` and `\n` into tab and newline,
/// as docker does to a list command's `--format` (shells pass them
/// through literally). Left to right, like Go's strings.Replacer.
pub fn docker_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix("\\t") {
            out.push('\t');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("\\n") {
            out.push('\n');
            rest = r;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Docker's wrapping of any template error, parse-time or run-time.
pub fn parse_error(e: &str) -> String {
    format!("template parsing error: {e}")
}

/// What `docker ... inspect` prints: `out` goes to stdout; each entry of
/// `errors` is a failed item (docker prints them on stderr, exit status 1,
/// after printing the items that worked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectOutput {
    pub out: String,
    pub errors: Vec<String>,
}

/// `inspect -f FORMAT` / `--format`. An empty format prints the items as
/// a 4-space indented JSON array, `json` as a compact one; anything else
/// is a template run once per item, each result followed by a newline.
/// Unlike list commands docker does NOT convert `\t`/`\n` here. `Err` is
/// a template syntax error (docker exits 64 with it).
pub fn render_inspect(format: &str, items: &[Value]) -> Result<InspectOutput, String> {
    let ok = |out| {
        Ok(InspectOutput {
            out,
            errors: vec![],
        })
    };
    match format {
        "" => {
            let mut out = String::new();
            indent_json(&Value::Array(items.to_vec()), 0, &mut out);
            ok(out + "\n")
        }
        "json" => {
            let g = GoFmt::new();
            let mut out = String::from("[");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&raw_json(&g, it));
            }
            ok(out + "]\n")
        }
        _ => {
            let t = Template::parse(format).map_err(|e| parse_error(&e))?;
            let g = GoFmt::docker();
            let opts = ExecOptions::new(&g);
            let mut res = InspectOutput {
                out: String::new(),
                errors: vec![],
            };
            for it in items {
                match t.execute_with(it, &opts) {
                    Ok(s) => {
                        res.out.push_str(&s);
                        res.out.push('\n');
                    }
                    Err(e) => res.errors.push(parse_error(&e)),
                }
            }
            if res.out.is_empty() {
                res.out.push('\n');
            }
            Ok(res)
        }
    }
}

/// The daemon's bytes as Go's encoder wrote them: key order kept, HTML
/// characters escaped.
fn raw_json(g: &GoFmt, v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        to_json(g, &Value::from(k.clone()), None, true),
                        raw_json(g, x)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| raw_json(g, x))
                .collect::<Vec<_>>()
                .join(",")
        ),
        x => to_json(g, x, None, true),
    }
}

/// Go's json.Indent(dst, raw, "", "    ") over the daemon's JSON.
fn indent_json(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize| "    ".repeat(d);
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                out.push_str(&pad(depth + 1));
                indent_json(x, depth + 1, out);
            }
            out.push('\n');
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                out.push_str(&pad(depth + 1));
                out.push_str(&raw_json(&GoFmt::new(), &Value::from(k.clone())));
                out.push_str(": ");
                indent_json(x, depth + 1, out);
            }
            out.push('\n');
            out.push_str(&pad(depth));
            out.push('}');
        }
        x => out.push_str(&raw_json(&GoFmt::new(), x)),
    }
}

/// Prints the objects found (a JSON array, or the template per object), then every error,
/// as docker's `inspect.Inspect` does; returns the exit code (64: a template that does not
/// parse).
pub fn print_inspect(
    format: Option<&str>,
    found: &[serde_json::Value],
    mut errors: Vec<String>,
) -> i32 {
    match render_inspect(format.unwrap_or(""), found) {
        Ok(r) => {
            print!("{}", r.out);
            errors.extend(r.errors);
            if errors.is_empty() {
                return 0;
            }
            eprintln!("{}", errors.join("\n"));
            1
        }
        Err(e) => {
            eprintln!("{e}");
            64
        }
    }
}

/// go-units: `size` divided down by `base` while it is at least `base`, `%.{prec}g` + unit.
fn scaled(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let (mut size, mut i) = (size, 0);
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", gofmt::float_g(size, Some(precision)), units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.*g`.
pub fn human_size(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    scaled(size, 1000.0, &UNITS, precision)
}

/// go-units `BytesSize`: binary units, four digits.
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    scaled(size, 1024.0, &UNITS, 4)
}

#[cfg(test)]
mod units_tests {
    use super::human_size;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0, 3), "0B");
        assert_eq!(human_size(2.0, 3), "2B");
        assert_eq!(human_size(999.0, 3), "999B");
        assert_eq!(human_size(1000.0, 3), "1kB");
        assert_eq!(human_size(1_234.0, 3), "1.23kB");
        assert_eq!(human_size(123_400.0, 3), "123kB");
        assert_eq!(human_size(1_240_000.0, 3), "1.24MB");
        assert_eq!(human_size(4_261_375.0, 3), "4.26MB");
        assert_eq!(human_size(4_261_375.0, 4), "4.261MB");
        assert_eq!(human_size(999_600.0, 3), "1e+03kB");
        assert_eq!(human_size(21_500_000.0, 3), "21.5MB");
        assert_eq!(human_size(77_800_000.0, 3), "77.8MB");
    }
}
