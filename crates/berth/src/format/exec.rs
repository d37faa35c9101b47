//! Executes a parsed template over a `serde_json::Value`, following the
//! semantics of Go's text/template when the data is docker's JSON.

use serde_json::Value;

use super::funcs;
use super::gofmt::{self, GoFmt};
use super::template::{Arg, ArgKind, Cmd, Node, Pipe, Template};

/// Knobs for one execution.
#[derive(Debug, Clone)]
pub struct ExecOptions<'a> {
    pub gofmt: &'a GoFmt,
    /// Render with docker's `HeaderFunctions`: `json`, `split`, `join`,
    /// `title`, `lower`, `upper`, `truncate` return their first argument
    /// so a table header shows column names untouched.
    pub header: bool,
    /// Go's `missingkey=error`: a missing map key is an error instead of
    /// `<no value>`.
    pub missing_key_error: bool,
}

impl<'a> ExecOptions<'a> {
    pub fn new(gofmt: &'a GoFmt) -> Self {
        ExecOptions {
            gofmt,
            header: false,
            missing_key_error: false,
        }
    }
}

/// A value during execution. `v: None` is Go's invalid reflect.Value (a
/// missing map key), printed as `<no value>`; `Some(Null)` is a nil
/// interface, printed as `<nil>`. `key` is the field name the value was
/// read from, which `gofmt` uses to tell maps from structs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Val {
    pub v: Option<Value>,
    pub key: Option<String>,
}

impl Val {
    pub fn of(v: Value) -> Val {
        Val {
            v: Some(v),
            key: None,
        }
    }
    pub fn none() -> Val {
        Val { v: None, key: None }
    }
    /// How a function parameter of type `interface{}` sees the value.
    pub fn or_null(&self) -> Value {
        self.v.clone().unwrap_or(Value::Null)
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'a, 'o> {
    pub opts: &'a ExecOptions<'o>,
    src: &'a str,
    vars: Vec<(String, Val)>,
    out: String,
    depth: usize,
}

/// Runs the template; returns the output so far and the error, if any.
pub(crate) fn run(t: &Template, data: &Value, opts: &ExecOptions) -> (String, Option<String>) {
    let dot = Val::of(data.clone());
    let mut st = State {
        opts,
        src: &t.src,
        vars: vec![("$".into(), dot.clone())],
        out: String::new(),
        depth: 0,
    };
    let err = st.walk(&t.root, &dot).err();
    (st.out, err)
}

pub(crate) fn truth(v: &Val) -> bool {
    match &v.v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// The Go type docker's raw-JSON fallback would hold, for error messages.
pub(crate) fn go_type(v: &Option<Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

impl State<'_, '_> {
    pub fn err_at(&self, pos: usize, ctx: &str, msg: &str) -> String {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        format!("template: :{line}:{col}: executing \"\" at <{ctx}>: {msg}")
    }

    pub fn print(&self, v: &Val) -> String {
        match &v.v {
            None => "<no value>".into(),
            Some(x) => gofmt::sprint_value(self.opts.gofmt, x, v.key.as_deref()),
        }
    }

    fn walk(&mut self, list: &[Node], dot: &Val) -> Result<Flow, String> {
        for n in list {
            let flow = match n {
                Node::Text(s) => {
                    self.out.push_str(s);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.eval_pipe(dot, p)?;
                    if p.decl.is_empty() {
                        let s = self.print(&v);
                        self.out.push_str(&s);
                    }
                    Flow::Normal
                }
                Node::If(p, body, els) | Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.eval_pipe(dot, p)?;
                    let with = matches!(n, Node::With(..));
                    let flow = if truth(&v) {
                        self.walk(body, if with { &v } else { dot })?
                    } else if let Some(e) = els {
                        self.walk(e, dot)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    flow
                }
                Node::Range(p, body, els) => self.range(dot, p, body, els.as_deref())?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        dot: &Val,
        p: &Pipe,
        body: &[Node],
        els: Option<&[Node]>,
    ) -> Result<Flow, String> {
        let mark = self.vars.len();
        let inner = Pipe {
            decl: vec![],
            assign: false,
            cmds: p.cmds.clone(),
        };
        let v = self.eval_pipe(dot, &inner)?;
        let items: Vec<(Value, Val)> = match &v.v {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    (
                        Value::from(i),
                        Val {
                            v: Some(x.clone()),
                            key: None,
                        },
                    )
                })
                .collect(),
            // Go ranges over a map in sorted key order.
            Some(Value::Object(o)) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| {
                        (
                            Value::from(k.clone()),
                            Val {
                                v: Some(o[k].clone()),
                                key: None,
                            },
                        )
                    })
                    .collect()
            }
            Some(Value::Number(n)) if n.as_i64().is_some() && p.decl.len() < 2 => {
                (0..n.as_i64().unwrap().max(0))
                    .map(|i| (Value::from(i), Val::of(Value::from(i))))
                    .collect()
            }
            Some(other) => {
                let a = &p.cmds[0].args[0];
                let shown = gofmt::sprint_value(self.opts.gofmt, other, v.key.as_deref());
                return Err(self.err_at(
                    a.pos,
                    &a.text,
                    &format!("range can't iterate over {shown}"),
                ));
            }
        };
        if items.is_empty() {
            self.vars.truncate(mark);
            return match els {
                Some(e) => self.walk(e, dot),
                None => Ok(Flow::Normal),
            };
        }
        for (k, elem) in items {
            match p.decl.as_slice() {
                [] => {}
                [one] => self.bind(one, elem.clone(), p.assign, mark),
                [a, b, ..] => {
                    self.bind(a, Val::of(k), p.assign, mark);
                    self.bind(b, elem.clone(), p.assign, mark);
                }
            }
            let body_mark = self.vars.len();
            let flow = self.walk(body, &elem)?;
            self.vars.truncate(body_mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// Declares (above `mark`, reusing the slot on later iterations) or
    /// assigns a variable.
    fn bind(&mut self, name: &str, v: Val, assign: bool, mark: usize) {
        if !assign {
            if let Some(slot) = self.vars[mark..].iter_mut().find(|(n, _)| n == name) {
                slot.1 = v;
            } else {
                self.vars.push((name.to_string(), v));
            }
        } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    pub fn eval_pipe(&mut self, dot: &Val, p: &Pipe) -> Result<Val, String> {
        self.depth += 1;
        if self.depth > 1000 {
            return Err("template: exceeded maximum template depth (1000)".into());
        }
        let mut fin: Option<Val> = None;
        for c in &p.cmds {
            fin = Some(self.eval_cmd(dot, c, fin)?);
        }
        self.depth -= 1;
        let v = fin.unwrap_or_else(Val::none);
        for name in &p.decl {
            let len = self.vars.len();
            self.bind(name, v.clone(), p.assign, len);
        }
        Ok(v)
    }

    fn not_a_function(&self, c: &Cmd, fin: &Option<Val>) -> Result<(), String> {
        let a = &c.args[0];
        if c.args.len() > 1 || fin.is_some() {
            return Err(self.err_at(
                a.pos,
                &a.text,
                &format!("can't give argument to non-function {}", a.text),
            ));
        }
        Ok(())
    }

    fn eval_cmd(&mut self, dot: &Val, c: &Cmd, fin: Option<Val>) -> Result<Val, String> {
        let first = &c.args[0];
        let rest = &c.args[1..];
        match &first.kind {
            ArgKind::Field(chain) => self.field_chain(dot, dot.clone(), chain, rest, fin, first),
            ArgKind::Var(_, chain) | ArgKind::Sub(_, chain) => {
                let v = self.eval_term(dot, first)?;
                if chain.is_empty() {
                    self.not_a_function(c, &fin)?;
                    Ok(v)
                } else {
                    self.field_chain(dot, v, chain, rest, fin, first)
                }
            }
            ArgKind::Func(name) => funcs::call(self, dot, name, first, rest, fin),
            ArgKind::Nil => Err(self.err_at(first.pos, &first.text, "nil is not a command")),
            ArgKind::Dot | ArgKind::Lit(_) => {
                self.not_a_function(c, &fin)?;
                self.eval_arg(dot, first)
            }
        }
    }

    /// The head of a Var/Sub operand, before its field chain.
    fn eval_term(&mut self, dot: &Val, a: &Arg) -> Result<Val, String> {
        match &a.kind {
            ArgKind::Var(name, _) => {
                let found = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone());
                found.ok_or_else(|| {
                    self.err_at(a.pos, &a.text, &format!("undefined variable: {name}"))
                })
            }
            ArgKind::Sub(p, _) => self.eval_pipe(dot, p),
            _ => self.eval_arg(dot, a),
        }
    }

    pub fn eval_arg(&mut self, dot: &Val, a: &Arg) -> Result<Val, String> {
        match &a.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Val::of(Value::Null)),
            ArgKind::Lit(v) => Ok(Val::of(v.clone())),
            ArgKind::Field(chain) => self.field_chain(dot, dot.clone(), chain, &[], None, a),
            ArgKind::Var(_, chain) | ArgKind::Sub(_, chain) => {
                let v = self.eval_term(dot, a)?;
                self.field_chain(dot, v, chain, &[], None, a)
            }
            ArgKind::Func(name) => funcs::call(self, dot, name, a, &[], None),
        }
    }

    fn field_chain(
        &mut self,
        dot: &Val,
        mut recv: Val,
        chain: &[String],
        args: &[Arg],
        fin: Option<Val>,
        at: &Arg,
    ) -> Result<Val, String> {
        let mut fin = fin;
        for (i, name) in chain.iter().enumerate() {
            let last = i + 1 == chain.len();
            let (a, f) = if last {
                (args, fin.take())
            } else {
                (&[][..], None)
            };
            recv = self.field(dot, recv, name, a, f, at)?;
        }
        Ok(recv)
    }

    fn field(
        &mut self,
        dot: &Val,
        recv: Val,
        name: &str,
        args: &[Arg],
        fin: Option<Val>,
        at: &Arg,
    ) -> Result<Val, String> {
        let err = |st: &Self, msg: String| Err(st.err_at(at.pos, &at.text, &msg));
        let has_args = !args.is_empty() || fin.is_some();
        match recv.v {
            None if self.opts.missing_key_error => {
                err(self, format!("nil data; no entry for key {name:?}"))
            }
            None => Ok(Val::none()),
            Some(Value::Null) => err(
                self,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            Some(Value::Object(m)) => {
                if has_args {
                    // Stand-in for docker's one-argument methods such as
                    // `{{.Label "com.example"}}`: a field holding an object
                    // is indexed by the single string argument.
                    if let Some(Value::Object(inner)) = m.get(name) {
                        let mut vals = Vec::new();
                        for a in args {
                            vals.push(self.eval_arg(dot, a)?);
                        }
                        vals.extend(fin);
                        if let [Val {
                            v: Some(Value::String(k)),
                            ..
                        }] = vals.as_slice()
                        {
                            return Ok(Val::of(
                                inner.get(k).cloned().unwrap_or_else(|| Value::from("")),
                            ));
                        }
                    }
                    return err(self, format!("{name} is not a method but has arguments"));
                }
                match m.get(name) {
                    Some(v) => Ok(Val {
                        v: Some(v.clone()),
                        key: Some(name.to_string()),
                    }),
                    None if self.opts.missing_key_error => {
                        err(self, format!("map has no entry for key {name:?}"))
                    }
                    None => Ok(Val::none()),
                }
            }
            other => err(
                self,
                format!("can't evaluate field {name} in type {}", go_type(&other)),
            ),
        }
    }
}
