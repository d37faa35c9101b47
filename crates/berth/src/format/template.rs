//! Lexer and parser for the part of Go's `text/template` that docker users
//! write in `--format`. The tree is executed by `exec.rs`.
//!
//! Error texts follow Go's (`template: :LINE: msg`) because scripts and
//! tests compare them against docker's output.

use serde_json::Value;

use super::exec::{self, ExecOptions};
use super::funcs;
use super::gofmt::GoFmt;
use super::lex::{lex, parse_number, Tok, Token, KEYWORDS};

/// A parsed template, reusable for any number of executions.
#[derive(Debug, Clone)]
pub struct Template {
    pub(crate) src: String,
    pub(crate) root: Vec<Node>,
}

impl Template {
    /// Parses `src`. The error reads like Go's, e.g.
    /// `template: :1: unclosed action`; docker prefixes it with
    /// `template parsing error: ` (see `super::parse_error`).
    pub fn parse(src: &str) -> Result<Template, String> {
        let toks = lex(src);
        let mut p = Parser {
            src,
            toks,
            i: 0,
            vars: vec!["$".into()],
            range_depth: 0,
            nest: 0,
        };
        let root = match p.list()? {
            (nodes, Term::Eof) => nodes,
            (_, Term::End(pos)) => return Err(p.err_at(pos, "unexpected {{end}}")),
            (_, Term::Else(pos)) => return Err(p.err_at(pos, "unexpected {{else}}")),
        };
        Ok(Template {
            src: src.to_string(),
            root,
        })
    }

    /// Executes against `data` with docker's defaults.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let g = GoFmt::docker();
        self.execute_with(data, &ExecOptions::new(&g))
    }

    pub fn execute_with(&self, data: &Value, opts: &ExecOptions) -> Result<String, String> {
        match exec::run(self, data, opts) {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    /// Like `execute_with` but keeps whatever was written before an error,
    /// which is what docker prints for a table header that fails half-way.
    pub fn execute_partial(&self, data: &Value, opts: &ExecOptions) -> (String, Option<String>) {
        exec::run(self, data, opts)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Option<Vec<Node>>),
    Range(Pipe, Vec<Node>, Option<Vec<Node>>),
    With(Pipe, Vec<Node>, Option<Vec<Node>>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub args: Vec<Arg>,
}

/// `pos`/`text` locate the operand in the source so runtime errors can say
/// `:1:2: executing "" at <.Foo>` like Go does.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub pos: usize,
    pub text: String,
    pub kind: ArgKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    Dot,
    Nil,
    Lit(Value),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Sub(Box<Pipe>, Vec<String>),
}

const MAX_NEST: usize = 200;

enum Term {
    Eof,
    End(usize),
    Else(usize),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Variables in scope, for Go's parse-time "undefined variable" check.
    vars: Vec<String>,
    range_depth: usize,
    /// Bounds recursion so hostile input gets an error, not a stack overflow.
    nest: usize,
}

impl Parser<'_> {
    fn err_at(&self, pos: usize, msg: &str) -> String {
        let line = 1 + self.src[..pos.min(self.src.len())].matches('\n').count();
        format!("template: :{line}: {msg}")
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        self.i += 1;
        t
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    /// Go's item.String(): how a token is quoted in "unexpected X" errors.
    fn desc(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Eof => "EOF".into(),
            Tok::Error(m) => m.clone(),
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => format!("<{w}>"),
            _ => {
                let s = &self.src[t.pos..t.end];
                if s.chars().count() > 10 {
                    format!("{:?}...", s.chars().take(10).collect::<String>())
                } else {
                    format!("{s:?}")
                }
            }
        }
    }

    fn unexpected(&self, t: &Token, context: &str) -> String {
        match &t.tok {
            Tok::Error(m) => self.err_at(t.pos, m),
            _ => self.err_at(t.pos, &format!("unexpected {} in {context}", self.desc(t))),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Term), String> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Eof => return Ok((nodes, Term::Eof)),
                Tok::Left => {
                    self.skip_space();
                    let kw = match &self.peek().tok {
                        Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => w.clone(),
                        _ => {
                            nodes.push(Node::Action(self.pipeline("command", true)?));
                            continue;
                        }
                    };
                    let kt = self.next();
                    match kw.as_str() {
                        "end" => {
                            self.expect_right("end")?;
                            return Ok((nodes, Term::End(kt.pos)));
                        }
                        "else" => return Ok((nodes, Term::Else(kt.pos))),
                        "if" | "range" | "with" => nodes.push(self.control(&kw)?),
                        "break" | "continue" => {
                            if self.range_depth == 0 {
                                return Err(self.err_at(
                                    kt.pos,
                                    &format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_right(&format!("{{{{{kw}}}}}"))?;
                            nodes.push(if kw == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => {
                            return Err(
                                self.err_at(kt.pos, &format!("{{{{{kw}}}}} is not supported"))
                            )
                        }
                    }
                }
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), String> {
        self.skip_space();
        let t = self.next();
        match t.tok {
            Tok::Right => Ok(()),
            _ => Err(self.unexpected(&t, context)),
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), String> {
        self.nest += 1;
        if self.nest > MAX_NEST {
            return Err(self.err_at(pos, &format!("nesting deeper than {MAX_NEST} levels")));
        }
        Ok(())
    }

    fn control(&mut self, kw: &str) -> Result<Node, String> {
        self.enter(self.toks[self.i - 1].pos)?;
        let mark = self.vars.len();
        let pipe = self.pipeline(kw, true)?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let (body, term) = self.list()?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        let els = match term {
            Term::End(_) => None,
            Term::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
            Term::Else(_) => {
                self.skip_space();
                match self.peek().tok.clone() {
                    // `{{else if}}` is `{{else}}{{if}}` sharing one `{{end}}`.
                    Tok::Ident(w) if w == "if" || w == "with" => {
                        self.next();
                        Some(vec![self.control(&w)?])
                    }
                    _ => {
                        self.expect_right("else")?;
                        match self.list()? {
                            (l, Term::End(_)) => Some(l),
                            (_, Term::Else(p)) => {
                                return Err(self.err_at(p, "expected end; found {{else}}"))
                            }
                            (_, Term::Eof) => {
                                return Err(self.err_at(self.src.len(), "unexpected EOF"))
                            }
                        }
                    }
                }
            }
        };
        self.vars.truncate(mark);
        self.nest -= 1;
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }

    fn check_var(&self, t: &Token, name: &str) -> Result<(), String> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err(self.err_at(t.pos, &format!("undefined variable {name:?}")))
        }
    }

    /// `top` says the pipeline ends at `}}` rather than `)`.
    fn pipeline(&mut self, context: &str, top: bool) -> Result<Pipe, String> {
        let mut pipe = Pipe {
            decl: vec![],
            assign: false,
            cmds: vec![],
        };
        self.skip_space();
        if let Tok::Var(_) = self.peek().tok {
            let save = self.i;
            let mut names = vec![];
            loop {
                let vt = self.next();
                let Tok::Var(name) = vt.tok.clone() else {
                    return Err(self.unexpected(&vt, context));
                };
                names.push((vt, name));
                self.skip_space();
                let t = self.next();
                match t.tok {
                    Tok::Declare | Tok::Assign => {
                        pipe.assign = t.tok == Tok::Assign;
                        break;
                    }
                    Tok::Comma if context == "range" && names.len() < 2 => self.skip_space(),
                    Tok::Comma if context == "range" => {
                        return Err(self.err_at(t.pos, "too many declarations in range"))
                    }
                    Tok::Comma => {
                        return Err(
                            self.err_at(t.pos, &format!("too many declarations in {context}"))
                        )
                    }
                    _ if names.len() == 1 => {
                        names.clear();
                        self.i = save;
                        break;
                    }
                    _ => return Err(self.err_at(t.pos, "range can only initialize variables")),
                }
            }
            for (vt, name) in names {
                if pipe.assign {
                    self.check_var(&vt, &name)?;
                } else {
                    self.vars.push(name.clone());
                }
                pipe.decl.push(name);
            }
        }
        loop {
            self.skip_space();
            let t = self.peek().clone();
            match t.tok {
                Tok::Right if top => {
                    self.next();
                    break;
                }
                Tok::RParen if !top => {
                    self.next();
                    break;
                }
                Tok::Right => return Err(self.err_at(t.pos, "unclosed left paren")),
                Tok::RParen => return Err(self.err_at(t.pos, "unexpected right paren")),
                Tok::Eof | Tok::Error(_) | Tok::Text(_) | Tok::Left => {
                    return Err(self.unexpected(&t, context))
                }
                _ => pipe.cmds.push(self.command()?),
            }
        }
        if pipe.cmds.is_empty() {
            let pos = self.toks[self.i - 1].pos;
            return Err(self.err_at(pos, &format!("missing value for {context}")));
        }
        for (n, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0].kind,
                ArgKind::Dot | ArgKind::Nil | ArgKind::Lit(_)
            ) {
                let pos = c.args[0].pos;
                return Err(self.err_at(
                    pos,
                    &format!("non executable command in pipeline stage {}", n + 1),
                ));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Cmd, String> {
        let mut args = vec![];
        loop {
            self.skip_space();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::Right | Tok::RParen => self.i -= 1,
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            let pos = self.peek().pos;
            return Err(self.err_at(pos, "missing value for command"));
        }
        Ok(Cmd { args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, String> {
        let Some(mut arg) = self.term()? else {
            return Ok(None);
        };
        while let Tok::Field(f) = self.peek().tok.clone() {
            let ft = self.next();
            match &mut arg.kind {
                ArgKind::Field(c) | ArgKind::Var(_, c) | ArgKind::Sub(_, c) => c.push(f),
                _ => {
                    let msg = format!("unexpected . after term {:?}", arg.text);
                    return Err(self.err_at(ft.pos, &msg));
                }
            }
            arg.text = self.src[arg.pos..ft.end].to_string();
        }
        Ok(Some(arg))
    }

    fn term(&mut self) -> Result<Option<Arg>, String> {
        let t = self.peek().clone();
        let kind = match &t.tok {
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => return Ok(None),
            Tok::Ident(w) => {
                if !funcs::is_defined(w) {
                    return Err(self.err_at(t.pos, &format!("function {w:?} not defined")));
                }
                ArgKind::Func(w.clone())
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Var(v) => {
                self.check_var(&t, v)?;
                ArgKind::Var(v.clone(), vec![])
            }
            Tok::Field(f) => ArgKind::Field(vec![f.clone()]),
            Tok::Bool(b) => ArgKind::Lit(Value::Bool(*b)),
            Tok::Str(s) => ArgKind::Lit(Value::String(s.clone())),
            Tok::Char(c) => ArgKind::Lit(Value::from(*c as u32)),
            Tok::Num(n) => match parse_number(n) {
                Some(v) => ArgKind::Lit(v),
                None => return Err(self.err_at(t.pos, &format!("illegal number syntax: {n:?}"))),
            },
            Tok::LParen => {
                self.next();
                self.enter(t.pos)?;
                let p = self.pipeline("parenthesized pipeline", false)?;
                self.nest -= 1;
                let end = self.toks[self.i - 1].end;
                let text = self.src[t.pos..end].to_string();
                return Ok(Some(Arg {
                    pos: t.pos,
                    text,
                    kind: ArgKind::Sub(Box::new(p), vec![]),
                }));
            }
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Arg {
            pos: t.pos,
            text: self.src[t.pos..t.end].to_string(),
            kind,
        }))
    }
}
