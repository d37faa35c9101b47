//! The part of Go's text/template that docker users write in `--format`: fields, variables,
//! pipelines, `if`/`else`/`range`/`with`, trim markers, and the functions the docker CLI adds
//! (`json`, `join`, `split`, `lower`, `upper`, `title`, `truncate`, `println`, ...).

use super::gofmt;
use serde_json::Value;

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path is `.`)
    Field(Vec<String>),
    /// `$x.A`
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    Sub(Pipe),
}

#[derive(Debug, Clone, Default)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

fn perr(msg: impl std::fmt::Display) -> String {
    format!("template parsing error: template: :1: {msg}")
}

/// Splits the source into text and action contents, applying `{{-` / `-}}` trimming.
fn lex(src: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[i + 2..];
        let (after, trim_prev) = match after.strip_prefix("- ") {
            Some(a) => (a, true),
            None => (after, false),
        };
        if trim_prev {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            out.push((false, text));
        }
        let end = after.find("}}").ok_or_else(|| perr("unclosed action"))?;
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(x) = inner.strip_suffix(" -") {
            inner = x;
            trim_next = true;
        }
        out.push((true, inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        out.push((false, text));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(String),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Comma,
    Assign,
}

fn path_after(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let word_end = |mut j: usize| {
        while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_' || b[j] == '.') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if b.get(i + 1) == Some(&'=') => {
                out.push(Tok::Assign);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '"' | '`' => {
                let q = c;
                let mut j = i + 1;
                let mut lit = String::new();
                while j < b.len() && b[j] != q {
                    if q == '"' && b[j] == '\\' && j + 1 < b.len() {
                        j += 1;
                        lit.push(match b[j] {
                            'n' => '\n',
                            't' => '\t',
                            x => x,
                        });
                    } else {
                        lit.push(b[j]);
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return Err(perr("unterminated quoted string"));
                }
                out.push(Tok::Str(lit));
                i = j + 1;
            }
            '.' => {
                let j = word_end(i);
                out.push(Tok::Dot(path_after(&s_of(&b[i..j]))));
                i = j;
            }
            '$' => {
                let j = word_end(i + 1);
                let w = s_of(&b[i + 1..j]);
                let (name, path) = match w.split_once('.') {
                    Some((n, p)) => (n.to_string(), path_after(p)),
                    None => (w, vec![]),
                };
                out.push(Tok::Var(name, path));
                i = j;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == '.') {
                    j += 1;
                }
                out.push(Tok::Num(s_of(&b[i..j])));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let j = word_end(i);
                out.push(Tok::Ident(s_of(&b[i..j])));
                i = j;
            }
            c => return Err(perr(format!("unexpected {c:?} in operand"))),
        }
    }
    Ok(out)
}

fn s_of(c: &[char]) -> String {
    c.iter().collect()
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe, String> {
    let mut p = Pipe::default();
    let mut toks = toks;
    if let Some(pos) = toks.iter().position(|t| *t == Tok::Assign) {
        for t in &toks[..pos] {
            match t {
                Tok::Var(n, path) if path.is_empty() => p.decl.push(n.clone()),
                Tok::Comma => {}
                _ => return Err(perr("bad variable declaration")),
            }
        }
        toks = &toks[pos + 1..];
    }
    let mut i = 0;
    let mut cmd = Vec::new();
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return Err(perr("missing command"));
                }
                p.cmds.push(std::mem::take(&mut cmd));
            }
            Tok::LParen => {
                let mut depth = 1;
                let mut j = i + 1;
                while j < toks.len() && depth > 0 {
                    match toks[j] {
                        Tok::LParen => depth += 1,
                        Tok::RParen => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(perr("unclosed left paren"));
                }
                cmd.push(Arg::Sub(parse_pipe(&toks[i + 1..j - 1])?));
                i = j;
                continue;
            }
            Tok::RParen => return Err(perr("unexpected right paren")),
            Tok::Comma | Tok::Assign => return Err(perr("unexpected token")),
            Tok::Dot(path) => cmd.push(Arg::Field(path.clone())),
            Tok::Var(n, path) => cmd.push(Arg::Var(n.clone(), path.clone())),
            Tok::Str(s) => cmd.push(Arg::Lit(Value::String(s.clone()))),
            Tok::Num(n) => cmd.push(Arg::Lit(
                serde_json::from_str(n).map_err(|_| perr(format!("bad number syntax: {n:?}")))?,
            )),
            Tok::Ident(w) => cmd.push(match w.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Null),
                f if FUNCS.contains(&f) => Arg::Func(f.to_string()),
                f => return Err(perr(format!("function {f:?} not defined"))),
            }),
        }
        i += 1;
    }
    if cmd.is_empty() {
        return Err(perr("missing value for command"));
    }
    p.cmds.push(cmd);
    Ok(p)
}

const FUNCS: [&str; 19] = [
    "json", "join", "split", "lower", "upper", "title", "truncate", "println", "print", "printf",
    "len", "index", "not", "and", "or", "eq", "ne", "pad", "table",
];

/// Parses nodes until an `end`/`else` at this level; returns the nodes and the terminator.
fn parse_nodes(
    items: &[(bool, String)],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let (is_action, s) = &items[*pos];
        *pos += 1;
        if !is_action {
            nodes.push(Node::Text(s.clone()));
            continue;
        }
        if s.starts_with("/*") {
            continue;
        }
        let (kw, rest) = s.split_once(' ').unwrap_or((s.as_str(), ""));
        match kw {
            "end" | "else" => return Ok((nodes, Some(s.clone()))),
            "if" | "range" | "with" => nodes.push(parse_branch(kw, rest, items, pos)?),
            _ => nodes.push(Node::Action(parse_pipe(&tokenize(s)?)?)),
        }
    }
    Ok((nodes, None))
}

/// An `if`/`range`/`with` block. `{{else if x}}` chains parse as a nested `if` that consumes
/// the chain's single `{{end}}`.
fn parse_branch(
    kw: &str,
    cond: &str,
    items: &[(bool, String)],
    pos: &mut usize,
) -> Result<Node, String> {
    let pipe = parse_pipe(&tokenize(cond)?)?;
    let (body, term) = parse_nodes(items, pos)?;
    let els = match term.as_deref() {
        Some("end") => vec![],
        Some("else") => match parse_nodes(items, pos)? {
            (els, Some(t)) if t == "end" => els,
            _ => return Err(perr(format!("expected end; found EOF in {kw}"))),
        },
        Some(t) => {
            let chained = t.strip_prefix("else").unwrap_or("").trim();
            let (kw2, cond2) = chained.split_once(' ').unwrap_or((chained, ""));
            if !["if", "with"].contains(&kw2) {
                return Err(perr(format!("unexpected {{{{{t}}}}}")));
            }
            vec![parse_branch(kw2, cond2, items, pos)?]
        }
        None => return Err(perr(format!("unexpected EOF in {kw}"))),
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, els),
        "range" => Node::Range(pipe, body, els),
        _ => Node::With(pipe, body, els),
    })
}

type Vars = Vec<(String, Value)>;

struct Ctx {
    /// Missing fields print as `<no value>`, or as nothing when rendering table headers.
    missing: &'static str,
}

fn field(v: &Value, path: &[String]) -> Option<Value> {
    let mut cur = v.clone();
    for p in path {
        cur = match cur {
            Value::Object(mut m) => m.remove(p)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn text(v: &Option<Value>, ctx: &Ctx) -> String {
    match v {
        None => ctx.missing.to_string(),
        Some(v) => gofmt::format(v),
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let items = lex(src)?;
        let mut pos = 0;
        let (nodes, term) = parse_nodes(&items, &mut pos)?;
        if let Some(t) = term {
            return Err(perr(format!("unexpected {{{{{t}}}}}")));
        }
        Ok(Template { nodes })
    }

    pub fn execute(&self, data: &Value) -> Result<String, String> {
        self.run(
            data,
            &Ctx {
                missing: "<no value>",
            },
        )
    }

    pub fn execute_header(&self, headers: &Value) -> Result<String, String> {
        self.run(headers, &Ctx { missing: "" })
    }

    fn run(&self, data: &Value, ctx: &Ctx) -> Result<String, String> {
        let mut out = String::new();
        let mut vars: Vars = vec![("$".into(), data.clone())];
        exec(&self.nodes, data, &mut vars, ctx, &mut out)?;
        Ok(out)
    }
}

/// Renders a one-off template (inspect `-f`).
pub fn render(src: &str, data: &Value) -> Result<String, String> {
    Template::parse(src)?.execute(data)
}

fn exec(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vars,
    ctx: &Ctx,
    out: &mut String,
) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars, ctx)?;
                if p.decl.is_empty() {
                    out.push_str(&text(&v, ctx));
                } else {
                    vars.push((p.decl[0].clone(), v.unwrap_or(Value::Null)));
                }
            }
            Node::If(p, body, els) => {
                let v = eval_pipe(p, dot, vars, ctx)?;
                exec(if truthy(&v) { body } else { els }, dot, vars, ctx, out)?;
            }
            Node::With(p, body, els) => {
                let v = eval_pipe(p, dot, vars, ctx)?;
                if truthy(&v) {
                    exec(body, &v.unwrap(), vars, ctx, out)?;
                } else {
                    exec(els, dot, vars, ctx, out)?;
                }
            }
            Node::Range(p, body, els) => {
                let v = eval_pipe(p, dot, vars, ctx)?;
                let items: Vec<(Value, Value)> = match v {
                    Some(Value::Array(a)) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x))
                        .collect(),
                    Some(Value::Object(m)) => {
                        let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                        kv.sort_by(|a, b| a.0.cmp(&b.0));
                        kv.into_iter().map(|(k, x)| (Value::String(k), x)).collect()
                    }
                    None | Some(Value::Null) => vec![],
                    Some(other) => {
                        return Err(format!(
                            "range can't iterate over {}",
                            gofmt::format(&other)
                        ))
                    }
                };
                if items.is_empty() {
                    exec(els, dot, vars, ctx, out)?;
                }
                for (k, x) in items {
                    let mark = vars.len();
                    match p.decl.len() {
                        0 => {}
                        1 => vars.push((p.decl[0].clone(), x.clone())),
                        _ => {
                            vars.push((p.decl[0].clone(), k));
                            vars.push((p.decl[1].clone(), x.clone()));
                        }
                    }
                    exec(body, &x, vars, ctx, out)?;
                    vars.truncate(mark);
                }
            }
        }
    }
    Ok(())
}

fn eval_arg(a: &Arg, dot: &Value, vars: &Vars, ctx: &Ctx) -> Result<Option<Value>, String> {
    Ok(match a {
        Arg::Field(path) => field(dot, path),
        Arg::Var(name, path) => {
            let v = vars
                .iter()
                .rev()
                .find(|(n, _)| n == name || (name.is_empty() && n == "$"))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undefined variable: ${name}"))?;
            field(&v, path)
        }
        Arg::Lit(v) => Some(v.clone()),
        Arg::Sub(p) => eval_pipe(p, dot, vars, ctx)?,
        Arg::Func(f) => call(f, vec![], ctx)?,
    })
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &Vars, ctx: &Ctx) -> Result<Option<Value>, String> {
    let mut prev: Option<Option<Value>> = None;
    for cmd in &p.cmds {
        let v = match &cmd[0] {
            Arg::Func(f) => {
                let mut args = cmd[1..]
                    .iter()
                    .map(|a| eval_arg(a, dot, vars, ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(pv) = prev.take() {
                    args.push(pv);
                }
                call(f, args, ctx)?
            }
            a => {
                if cmd.len() > 1 {
                    return Err(format!("can't give argument to non-function {a:?}"));
                }
                eval_arg(a, dot, vars, ctx)?
            }
        };
        prev = Some(v);
    }
    Ok(prev.flatten())
}

fn as_str(v: &Option<Value>, ctx: &Ctx) -> String {
    text(v, ctx)
}

fn call(f: &str, args: Vec<Option<Value>>, ctx: &Ctx) -> Result<Option<Value>, String> {
    let s = |i: usize| args.get(i).map(|v| as_str(v, ctx)).unwrap_or_default();
    let need = |n: usize| {
        if args.len() < n {
            Err(format!(
                "wrong number of args for {f}: want {n} got {}",
                args.len()
            ))
        } else {
            Ok(())
        }
    };
    let out = match f {
        "json" => {
            need(1)?;
            let v = args[0].clone().unwrap_or(Value::Null);
            Value::String(super::go_html_escape(&v.to_string()))
        }
        "join" => {
            need(2)?;
            let items: Vec<String> = match &args[0] {
                Some(Value::Array(a)) => a.iter().map(gofmt::format).collect(),
                other => vec![as_str(other, ctx)],
            };
            Value::String(items.join(&s(1)))
        }
        "split" => {
            need(2)?;
            Value::Array(s(0).split(&s(1)).map(|x| Value::String(x.into())).collect())
        }
        "lower" => Value::String(s(0).to_lowercase()),
        "upper" => Value::String(s(0).to_uppercase()),
        "title" => Value::String(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "truncate" => {
            need(2)?;
            let n = args[1].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            Value::String(s(0).chars().take(n).collect())
        }
        "pad" => {
            need(3)?;
            let l = args[1].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            let r = args[2].as_ref().and_then(Value::as_u64).unwrap_or(0) as usize;
            Value::String(format!("{}{}{}", " ".repeat(l), s(0), " ".repeat(r)))
        }
        "println" => Value::String(
            args.iter()
                .map(|a| as_str(a, ctx))
                .collect::<Vec<_>>()
                .join(" ")
                + "\n",
        ),
        "print" => Value::String(
            args.iter()
                .map(|a| as_str(a, ctx))
                .collect::<Vec<_>>()
                .join(""),
        ),
        "printf" => {
            need(1)?;
            Value::String(printf(&s(0), &args[1..], ctx))
        }
        "len" => {
            need(1)?;
            Value::from(match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(Value::String(x)) => x.len(),
                _ => return Err("len of nil pointer".into()),
            })
        }
        "index" => {
            need(2)?;
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (cur, k) {
                    (Some(Value::Object(mut m)), Some(Value::String(k))) => m.remove(k),
                    (Some(Value::Array(a)), Some(Value::Number(n))) => {
                        a.get(n.as_u64().unwrap_or(u64::MAX) as usize).cloned()
                    }
                    _ => None,
                };
            }
            return Ok(cur);
        }
        "not" => Value::Bool(!truthy(args.first().unwrap_or(&None))),
        "and" => {
            return Ok(args
                .iter()
                .find(|a| !truthy(a))
                .or(args.last())
                .cloned()
                .flatten())
        }
        "or" => {
            return Ok(args
                .iter()
                .find(|a| truthy(a))
                .or(args.last())
                .cloned()
                .flatten())
        }
        "eq" => {
            need(2)?;
            Value::Bool(args[1..].iter().any(|a| *a == args[0]))
        }
        "ne" => {
            need(2)?;
            Value::Bool(args[0] != args[1])
        }
        _ => return Err(format!("function {f:?} not defined")),
    };
    Ok(Some(out))
}

fn printf(fmt: &str, args: &[Option<Value>], ctx: &Ctx) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&format!("{:?}", as_str(it.next().unwrap_or(&None), ctx))),
            Some(_) => out.push_str(&as_str(it.next().unwrap_or(&None), ctx)),
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net() -> Value {
        json!({"Name": "demo", "Id": "abc", "Internal": false,
               "IPAM": {"Driver": "default", "Options": {}, "Config": [
                   {"Subnet": "10.0.1.0/24", "IPRange": "10.0.1.128/25", "Gateway": "10.0.1.254",
                    "AuxiliaryAddresses": {"a": "10.0.1.130"}}]},
               "Labels": {"team": "a"},
               "Containers": {"c1": {"Name": "x"}, "c2": {"Name": "y"}}})
    }

    fn r(t: &str) -> String {
        render(t, &net()).unwrap()
    }

    #[test]
    fn fields_and_go_printing() {
        assert_eq!(r("{{.Name}}"), "demo");
        assert_eq!(
            r("{{.IPAM.Config}}"),
            "[{10.0.1.0/24 10.0.1.128/25 10.0.1.254 map[a:10.0.1.130]}]"
        );
        assert_eq!(r("{{.Labels.team}} {{index .Labels \"team\"}}"), "a a");
        assert_eq!(r("{{.Nope}}"), "<no value>");
    }

    #[test]
    fn functions_and_pipelines() {
        assert_eq!(r("{{json .Labels}}"), r#"{"team":"a"}"#);
        assert_eq!(r("{{.Name | upper}}"), "DEMO");
        assert_eq!(r("{{upper .Name}}"), "DEMO");
        assert_eq!(r("{{truncate .Name 2}}"), "de");
        assert_eq!(r("{{printf \"%s-%v\" .Name .Internal}}"), "demo-false");
        assert_eq!(r("{{len .Containers}}"), "2");
        assert_eq!(r("{{join (split \"a,b\" \",\") \"+\"}}"), "a+b");
        assert_eq!(r("{{println .Name}}"), "demo\n");
    }

    #[test]
    fn control_flow() {
        assert_eq!(r("{{if .Internal}}yes{{else}}no{{end}}"), "no");
        assert_eq!(
            r("{{if .Internal}}a{{else if .Name}}b{{else}}c{{end}}!"),
            "b!"
        );
        assert_eq!(
            r("{{range .IPAM.Config}}{{.Subnet}} {{end}}"),
            "10.0.1.0/24 "
        );
        assert_eq!(
            r("{{range $k, $v := .Containers}}{{$k}}={{$v.Name}};{{end}}"),
            "c1=x;c2=y;"
        );
        assert_eq!(r("{{with .IPAM}}{{.Driver}}{{end}}"), "default");
        assert_eq!(r("{{range .Nope}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r("a {{- \" b \" -}} c"), "a b c");
        assert_eq!(r("{{$n := .Name}}{{$n}}"), "demo");
    }

    #[test]
    fn errors() {
        assert!(render("{{.Name", &net()).is_err());
        assert!(render("{{nosuch .Name}}", &net()).is_err());
        assert!(render("{{if .Name}}x", &net()).is_err());
        assert!(render("{{end}}", &net()).is_err());
    }
}
