//! Tokeniser for templates: splits text from `{{actions}}`, applies the
//! `{{-`/`-}}` trim markers and drops comments, and reads literals with
//! Go's escape and number rules.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Field(String),
    Dot,
    Var(String),
    Ident(String),
    Str(String),
    Num(String),
    Char(char),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Other(char),
    Error(String),
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub end: usize,
}

pub(super) const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenises the whole input up front. A lexical error becomes an `Error`
/// token at the point it happens so an earlier parse error still wins, as
/// it does with Go's lazily-driven lexer.
pub(super) fn lex(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut push = |tok, pos, end| out.push(Token { tok, pos, end });
    let mut i = 0;
    let at = |i: usize| src[i..].chars().next();
    loop {
        let j = src[i..].find("{{").map(|k| i + k).unwrap_or(src.len());
        let mut text = &src[i..j];
        if j == src.len() {
            if !text.is_empty() {
                push(Tok::Text(text.into()), i, j);
            }
            push(Tok::Eof, j, j);
            return out;
        }
        let mut k = j + 2;
        let ltrim = src[k..].starts_with('-') && at(k + 1).is_some_and(is_ws);
        if ltrim {
            text = text.trim_end_matches(is_ws);
            k += 2;
        }
        if !text.is_empty() {
            push(Tok::Text(text.into()), i, i + text.len());
        }
        // A comment must fill the whole action, Go rejects `{{/* x */ .A}}`.
        if src[k..].starts_with("/*") {
            let Some(e) = src[k + 2..].find("*/").map(|e| k + 2 + e + 2) else {
                push(Tok::Error("unclosed comment".into()), k, k);
                return out;
            };
            let rtrim = src[e..].starts_with(" -}}");
            if !rtrim && !src[e..].starts_with("}}") {
                push(
                    Tok::Error("comment ends before closing delimiter".into()),
                    e,
                    e,
                );
                return out;
            }
            i = if rtrim { e + 4 } else { e + 2 };
            if rtrim {
                i = src.len() - src[i..].trim_start_matches(is_ws).len();
            }
            continue;
        }
        push(Tok::Left, j, k);
        // Inside the action.
        loop {
            let Some(c) = at(k) else {
                push(Tok::Error("unclosed action".into()), k, k);
                return out;
            };
            if is_ws(c) && src[k + 1..].starts_with("-}}") {
                push(Tok::Right, k, k + 4);
                k += 4;
                k = src.len() - src[k..].trim_start_matches(is_ws).len();
                break;
            }
            if src[k..].starts_with("}}") {
                push(Tok::Right, k, k + 2);
                k += 2;
                break;
            }
            let start = k;
            let next = at(k + c.len_utf8());
            k += c.len_utf8();
            let tok = match c {
                c if is_ws(c) => {
                    while let Some(d) = at(k) {
                        if !is_ws(d) || src[k + 1..].starts_with("-}}") {
                            break;
                        }
                        k += 1;
                    }
                    Tok::Space
                }
                '=' => Tok::Assign,
                ':' if next == Some('=') => {
                    k += 1;
                    Tok::Declare
                }
                ':' => Tok::Error("expected :=".into()),
                '|' => Tok::Pipe,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                '"' | '\'' => match scan_quoted(src, start, c) {
                    Ok((t, e)) => {
                        k = e;
                        t
                    }
                    Err(m) => Tok::Error(m),
                },
                '`' => match src[k..].find('`') {
                    Some(e) => {
                        let s = src[k..k + e].to_string();
                        k += e + 1;
                        Tok::Str(s)
                    }
                    None => Tok::Error("unterminated raw quoted string".into()),
                },
                '$' => {
                    while at(k).is_some_and(is_alnum) {
                        k += at(k).unwrap().len_utf8();
                    }
                    Tok::Var(src[start..k].into())
                }
                '.' if next.is_some_and(|d| d.is_ascii_digit()) => {
                    k = scan_number(src, start);
                    Tok::Num(src[start..k].into())
                }
                '.' if next.is_some_and(is_alnum) => {
                    while at(k).is_some_and(is_alnum) {
                        k += at(k).unwrap().len_utf8();
                    }
                    Tok::Field(src[start + 1..k].into())
                }
                '.' => Tok::Dot,
                '+' | '-' if next.is_some_and(|d| d.is_ascii_digit() || d == '.') => {
                    k = scan_number(src, start);
                    Tok::Num(src[start..k].into())
                }
                d if d.is_ascii_digit() => {
                    k = scan_number(src, start);
                    Tok::Num(src[start..k].into())
                }
                d if is_alnum(d) => {
                    while at(k).is_some_and(is_alnum) {
                        k += at(k).unwrap().len_utf8();
                    }
                    match &src[start..k] {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => Tok::Ident(w.into()),
                    }
                }
                d if d.is_ascii_graphic() => Tok::Other(d),
                d => Tok::Error(format!(
                    "unrecognized character in action: U+{:04X}",
                    d as u32
                )),
            };
            let stop = matches!(tok, Tok::Error(_));
            push(tok, start, k);
            if stop {
                return out;
            }
        }
        i = k;
    }
}

fn scan_number(src: &str, start: usize) -> usize {
    let b = src.as_bytes();
    let mut k = start;
    if matches!(b[k], b'+' | b'-') {
        k += 1;
    }
    while k < b.len() {
        let c = b[k];
        let exp_sign = matches!(c, b'+' | b'-') && matches!(b[k - 1], b'e' | b'E' | b'p' | b'P');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
            k += 1;
        } else {
            break;
        }
    }
    k
}

/// Scans a "..." string or '.' character constant starting at `start`,
/// applying Go's escape rules. Returns the token and the end offset.
fn scan_quoted(src: &str, start: usize, q: char) -> Result<(Tok, usize), String> {
    let mut out = String::new();
    let mut it = src[start + 1..].char_indices();
    let bad = || "invalid syntax".to_string();
    let unterminated = || {
        if q == '"' {
            "unterminated quoted string"
        } else {
            "unterminated character constant"
        }
        .to_string()
    };
    loop {
        let Some((off, c)) = it.next() else {
            return Err(unterminated());
        };
        match c {
            '\n' => return Err(unterminated()),
            c if c == q => {
                let end = start + 1 + off + 1;
                if q == '"' {
                    return Ok((Tok::Str(out), end));
                }
                let mut cs = out.chars();
                return match (cs.next(), cs.next()) {
                    (Some(ch), None) => Ok((Tok::Char(ch), end)),
                    _ => Err(bad()),
                };
            }
            '\\' => {
                let (_, e) = it.next().ok_or_else(unterminated)?;
                let mut hex = |n: usize| -> Result<char, String> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, d) = it.next().ok_or_else(bad)?;
                        v = v * 16 + d.to_digit(16).ok_or_else(bad)?;
                    }
                    char::from_u32(v).ok_or_else(bad)
                };
                out.push(match e {
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\x0b',
                    '\\' => '\\',
                    '"' if q == '"' => '"',
                    '\'' if q == '\'' => '\'',
                    'x' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    d @ '0'..='7' => {
                        let mut v = d.to_digit(8).unwrap();
                        for _ in 0..2 {
                            let (_, d) = it.next().ok_or_else(bad)?;
                            v = v * 8 + d.to_digit(8).ok_or_else(bad)?;
                        }
                        char::from_u32(v).filter(|_| v < 256).ok_or_else(bad)?
                    }
                    _ => return Err(bad()),
                });
            }
            c => out.push(c),
        }
    }
}

pub(super) fn parse_number(s: &str) -> Option<Value> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let radix = |p: &str, r: u32| {
        let lower = body.to_ascii_lowercase();
        lower
            .strip_prefix(p)
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| body.parse::<i64>().ok())
        .or_else(|| {
            // Go reads a leading 0 as octal.
            let octal = body.len() > 1 && body.starts_with('0');
            octal
                .then(|| i64::from_str_radix(&body[1..], 8).ok())
                .flatten()
        });
    if let Some(i) = int {
        return Some(Value::from(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok().filter(|f: &f64| f.is_finite())?;
    serde_json::Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}
