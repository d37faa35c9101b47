//! Go's `fmt.Sprintf` for template `printf`, including its in-band error
//! texts (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA ...)`).

use serde_json::Value;

use super::gofmt::{float_g, fmt_e, go_quote, rounded_digits, sprint_value, GoFmt};

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn type_name(v: &Value) -> &'static str {
    super::exec::go_type(&Some(v.clone()))
}

fn bad_verb(verb: char, v: &Value, g: &GoFmt) -> String {
    match v {
        Value::Null => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), sprint_value(g, v, None)),
    }
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64()
        .filter(|_| !v.as_number().is_some_and(|n| n.is_f64()))
}

fn format_one(g: &GoFmt, verb: char, sp: &Spec, v: &Value) -> String {
    let sign = |neg: bool, body: String| {
        let p = if neg {
            "-"
        } else if sp.plus {
            "+"
        } else if sp.space {
            " "
        } else {
            ""
        };
        format!("{p}{body}")
    };
    let truncate = |s: String| match sp.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    };
    match (verb, v) {
        ('v', Value::Array(a))
        | ('s', Value::Array(a))
        | ('q', Value::Array(a))
        | ('d', Value::Array(a)) => {
            let inner: Vec<String> = a
                .iter()
                .map(|x| format_one(g, verb, &Spec::default(), x))
                .collect();
            format!("[{}]", inner.join(" "))
        }
        ('v', Value::Number(n)) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            sign(f < 0.0, float_g(f.abs(), sp.prec))
        }
        ('v', Value::Number(n)) => sign(
            n.as_i64().is_some_and(|i| i < 0),
            n.to_string().trim_start_matches('-').into(),
        ),
        ('v', _) => sprint_value(g, v, None),
        ('s', Value::String(s)) => truncate(s.clone()),
        ('s', Value::Object(_)) => sprint_value(g, v, None),
        ('q', Value::String(s)) => go_quote(s),
        ('q', x) if int_of(x).is_some() => {
            let c = char::from_u32(int_of(x).unwrap() as u32).unwrap_or('\u{FFFD}');
            format!("'{c}'")
        }
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', x) if int_of(x).is_some() => {
            let i = int_of(x).unwrap();
            sign(i < 0, i.unsigned_abs().to_string())
        }
        ('x' | 'X' | 'o' | 'b', x) if int_of(x).is_some() => {
            let i = int_of(x).unwrap();
            let u = i.unsigned_abs();
            let body = match verb {
                'x' => format!("{u:x}"),
                'X' => format!("{u:X}"),
                'o' => format!("{u:o}"),
                _ => format!("{u:b}"),
            };
            sign(i < 0, body)
        }
        ('x' | 'X', Value::String(s)) => {
            let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('c', x) if int_of(x).is_some() => char::from_u32(int_of(x).unwrap() as u32)
            .unwrap_or('\u{FFFD}')
            .to_string(),
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Number(n)) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            let body = match verb {
                'f' | 'F' => format!("{:.*}", sp.prec.unwrap_or(6), f.abs()),
                'e' | 'E' => {
                    let p = sp.prec.unwrap_or(6);
                    let (d, e) = rounded_digits(f, p + 1);
                    fmt_e(false, &d, e, p)
                }
                _ => float_g(f.abs(), sp.prec),
            };
            let body = if verb.is_ascii_uppercase() {
                body.to_uppercase()
            } else {
                body
            };
            sign(f < 0.0, body)
        }
        _ => bad_verb(verb, v, g),
    }
}

/// Go's `fmt.Sprintf` for the verbs docker users reach for: %v %s %q %d
/// %t %x %X %o %b %c %f %e %g with flags `-+0 `, width and precision.
pub fn sprintf(g: &GoFmt, format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut it = format.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sp = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '-' => sp.minus = true,
                '+' => sp.plus = true,
                '0' => sp.zero = true,
                ' ' => sp.space = true,
                '#' => {}
                _ => break,
            }
            it.next();
        }
        let num =
            |it: &mut std::iter::Peekable<std::str::Chars>, next: &mut usize| -> Option<usize> {
                if it.peek() == Some(&'*') {
                    it.next();
                    let n = args.get(*next).and_then(int_of).map(|n| n.max(0) as usize);
                    *next += 1;
                    return n;
                }
                let mut n = None;
                while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                    n = Some(n.unwrap_or(0) * 10 + d as usize);
                    it.next();
                }
                n
            };
        sp.width = num(&mut it, &mut next);
        if it.peek() == Some(&'.') {
            it.next();
            sp.prec = Some(num(&mut it, &mut next).unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let body = format_one(g, verb, &sp, arg);
        let w = body.chars().count();
        match sp.width {
            Some(width) if width > w => {
                let pad = width - w;
                if sp.minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if sp.zero && matches!(arg, Value::Number(_)) && !body.starts_with("%!") {
                    let (s, rest) = match body.strip_prefix(['-', '+', ' ']) {
                        Some(r) => (&body[..1], r),
                        None => ("", body.as_str()),
                    };
                    out.push_str(&format!("{s}{}{rest}", "0".repeat(pad)));
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Null => "<nil>".to_string(),
                _ => format!("{}={}", type_name(a), sprint_value(g, a, None)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
