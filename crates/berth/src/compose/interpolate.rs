//! Variables: the `.env` file, the process environment over it, and their substitution into
//! every value of a compose file: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, `$$` for a
//! literal `$`. Defaults may hold further `${...}`.

use super::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The variables a project sees: `.env` in the project directory, overridden by the process
/// environment (as docker-compose does).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn new(
        dotenv: BTreeMap<String, String>,
        process: impl Iterator<Item = (String, String)>,
    ) -> Env {
        let mut vars = dotenv;
        vars.extend(process);
        Env { vars }
    }

    /// Reads `<dir>/.env` if it exists, then overlays the process environment.
    pub fn load(dir: &Path) -> Result<Env, String> {
        let path = dir.join(".env");
        let dotenv = match std::fs::read_to_string(&path) {
            Ok(text) => parse_dotenv(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Env::new(dotenv, std::env::vars()))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }
}

/// `.env`: `KEY=value` lines (optionally `export KEY=value`), `#` comments, values in single
/// quotes taken literally, in double quotes with `\n`, `\t`, `\"`, `\\` escapes.
pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: {raw:?} is not KEY=value", i + 1));
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(format!("line {}: {k:?} is not a variable name", i + 1));
        }
        let v = v.trim();
        let value = if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            s.to_string()
        } else if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            unescape(s)
        } else {
            // an unquoted value ends at ` #`
            match v.find(" #") {
                Some(i) => v[..i].trim_end().to_string(),
                None => v.to_string(),
            }
        };
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Substitutes variables into `s`. Unset variables without a default become empty strings and
/// are reported through `unset` (docker-compose's "variable is not set" warning).
pub fn substitute(s: &str, env: &Env, unset: &mut dyn FnMut(&str)) -> Result<String, String> {
    let mut p = Sub {
        s: s.as_bytes(),
        i: 0,
        env,
        unset,
    };
    let out = p.run(false)?;
    Ok(out)
}

struct Sub<'a> {
    s: &'a [u8],
    i: usize,
    env: &'a Env,
    unset: &'a mut dyn FnMut(&str),
}

fn name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Sub<'_> {
    fn invalid(&self) -> String {
        format!(
            "invalid interpolation format: {:?}",
            String::from_utf8_lossy(self.s)
        )
    }

    /// Text up to the end (or, `nested`, up to the `}` closing the enclosing `${`).
    fn run(&mut self, nested: bool) -> Result<String, String> {
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let b = self.s[self.i];
            if nested && b == b'}' {
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            if b != b'$' {
                out.push(b);
                self.i += 1;
                continue;
            }
            self.i += 1;
            match self.s.get(self.i) {
                Some(b'$') => {
                    out.push(b'$');
                    self.i += 1;
                }
                Some(b'{') => {
                    self.i += 1;
                    let v = self.braced()?;
                    out.extend_from_slice(v.as_bytes());
                }
                Some(&c) if name_start(c) => {
                    let start = self.i;
                    while self.i < self.s.len() && name_char(self.s[self.i]) {
                        self.i += 1;
                    }
                    let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    out.extend_from_slice(self.lookup(&name).as_bytes());
                }
                _ => return Err(self.invalid()),
            }
        }
        if nested {
            return Err(self.invalid());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn lookup(&mut self, name: &str) -> String {
        match self.env.get(name) {
            Some(v) => v.to_string(),
            None => {
                (self.unset)(name);
                String::new()
            }
        }
    }

    /// After `${`: `NAME`, then `}` or an operator and its word, then `}`.
    fn braced(&mut self) -> Result<String, String> {
        let start = self.i;
        if !self.s.get(self.i).is_some_and(|&c| name_start(c)) {
            return Err(self.invalid());
        }
        while self.i < self.s.len() && name_char(self.s[self.i]) {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        let colon = self.s.get(self.i) == Some(&b':');
        if colon {
            self.i += 1;
        }
        let op = match self.s.get(self.i) {
            Some(b'}') if !colon => {
                self.i += 1;
                return Ok(self.lookup(&name));
            }
            Some(&op @ (b'-' | b'?' | b'+')) => op,
            _ => return Err(self.invalid()),
        };
        self.i += 1;
        let word = self.run(true)?;
        self.i += 1; // the closing brace
        let value = self.env.get(&name).map(str::to_string);
        // with a colon an empty value counts as unset
        let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
        Ok(match op {
            b'-' => {
                if set {
                    value.unwrap_or_default()
                } else {
                    word
                }
            }
            b'+' => {
                if set {
                    word
                } else {
                    String::new()
                }
            }
            _ => {
                if !set {
                    let why = if word.is_empty() {
                        format!("required variable {name} is missing a value")
                    } else {
                        format!("required variable {name} is missing a value: {word}")
                    };
                    return Err(why);
                }
                value.unwrap_or_default()
            }
        })
    }
}

/// Substitutes into every scalar value of the tree (never keys). `path` names the node in
/// error messages (`services.web.command`). Substituted values are strings, whatever they
/// look like: the file said so by writing a variable.
pub fn tree(
    n: &mut Node,
    path: &str,
    env: &Env,
    unset: &mut dyn FnMut(&str),
) -> Result<(), String> {
    match &mut n.v {
        Value::Scalar(text, plain) => {
            if text.contains('$') {
                let out =
                    substitute(text, env, unset).map_err(|e| format!("{}: {path}: {e}", n.at))?;
                *text = out;
                *plain = false;
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                tree(item, &format!("{path}[{i}]"), env, unset)?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let key = k.text().unwrap_or_default().to_string();
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                tree(v, &p, env, unset)?;
            }
        }
    }
    Ok(())
}
