//! `docker import --change`: the Dockerfile instructions that only touch an image's config.

use crate::{Error, Result};
use serde_json::{json, Map, Value};

/// Applies each change line to `config` (a `container.Config` object), in order.
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for line in changes.iter().flat_map(|c| c.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instr, rest) = match line.split_once(char::is_whitespace) {
            Some((i, r)) => (i, r.trim()),
            None => (line, ""),
        };
        apply_one(config, &instr.to_lowercase(), rest)?;
    }
    Ok(())
}

fn apply_one(config: &mut Map<String, Value>, instr: &str, args: &str) -> Result<()> {
    let missing = || {
        Error::invalid(format!(
            "{} requires at least one argument",
            instr.to_uppercase()
        ))
    };
    match instr {
        "cmd" => {
            config.insert("Cmd".into(), json!(command(args)));
        }
        "entrypoint" => {
            config.insert("Entrypoint".into(), json!(command(args)));
            // as in a Dockerfile, a new entrypoint drops the inherited command
            config.insert("Cmd".into(), Value::Null);
        }
        "env" => {
            for (k, v) in pairs(args, "ENV")? {
                set_env(config, &k, &v);
            }
        }
        "label" => {
            let labels = object_field(config, "Labels");
            for (k, v) in pairs(args, "LABEL")? {
                labels.insert(k, json!(v));
            }
        }
        "workdir" => {
            if args.is_empty() {
                return Err(missing());
            }
            let cur = config
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("");
            let dir = if args.starts_with('/') {
                args.to_string()
            } else {
                format!("{}/{args}", if cur.is_empty() { "" } else { cur })
            };
            config.insert("WorkingDir".into(), json!(clean_path(&dir)));
        }
        "user" => {
            if args.is_empty() {
                return Err(missing());
            }
            config.insert("User".into(), json!(args));
        }
        "expose" => {
            let ports = words(args)?;
            if ports.is_empty() {
                return Err(missing());
            }
            let exposed = object_field(config, "ExposedPorts");
            for p in ports {
                for port in expand_port(&p)? {
                    exposed.insert(port, json!({}));
                }
            }
        }
        "volume" => {
            let vols = match serde_json::from_str::<Vec<String>>(args) {
                Ok(v) => v,
                Err(_) => words(args)?,
            };
            if vols.is_empty() {
                return Err(missing());
            }
            let volumes = object_field(config, "Volumes");
            for v in vols {
                volumes.insert(v, json!({}));
            }
        }
        "stopsignal" => {
            if args.is_empty() {
                return Err(missing());
            }
            config.insert("StopSignal".into(), json!(args));
        }
        "onbuild" => {
            if args.is_empty() {
                return Err(missing());
            }
            let list = config.entry("OnBuild").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            list.as_array_mut().expect("array").push(json!(args));
        }
        other => {
            return Err(Error::invalid(format!(
                "{other} is not a valid change command"
            )))
        }
    }
    Ok(())
}

/// JSON (exec) form `["a","b"]` as is; anything else is shell form, run by `/bin/sh -c`.
fn command(args: &str) -> Vec<String> {
    if args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), args.into()]
}

/// `K=V K2="v 2"`, or the legacy `K V W` (one key, the rest is its value).
fn pairs(args: &str, instr: &str) -> Result<Vec<(String, String)>> {
    let ws = words(args)?;
    if ws.is_empty() {
        return Err(Error::invalid(format!(
            "{instr} requires at least one argument"
        )));
    }
    if !ws[0].contains('=') {
        let (key, value) = args
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::invalid(format!("{instr} must have two arguments")))?;
        return Ok(vec![(key.to_string(), unquote(value.trim())?)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(Error::invalid(format!("{instr} names can not be blank"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(Error::invalid(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            ))),
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes as the Dockerfile
/// parser does.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(Error::invalid(
            "unexpected end of statement while looking for matching quote",
        ));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn unquote(s: &str) -> Result<String> {
    Ok(words(s)?.join(" "))
}

fn set_env(config: &mut Map<String, Value>, key: &str, value: &str) {
    let env = config.entry("Env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    let list = env.as_array_mut().expect("array");
    let entry = json!(format!("{key}={value}"));
    let prefix = format!("{key}=");
    match list
        .iter()
        .position(|e| e.as_str().is_some_and(|e| e.starts_with(&prefix)))
    {
        Some(i) => list[i] = entry,
        None => list.push(entry),
    }
}

fn object_field<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = config.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("object")
}

/// `80` → `80/tcp`; `8000-8001/udp` → each port of the range.
fn expand_port(p: &str) -> Result<Vec<String>> {
    let (ports, proto) = match p.split_once('/') {
        Some((n, pr)) => (n, pr.to_lowercase()),
        None => (p, "tcp".to_string()),
    };
    let bad = || Error::invalid(format!("Invalid containerPort: {p}"));
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::invalid(format!("invalid proto: {proto}")));
    }
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = ports.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

/// Lexical `path.Clean` for absolute paths.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<Value> {
        let mut m = Map::new();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&mut m, &changes)?;
        Ok(Value::Object(m))
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        assert_eq!(run(&["CMD [\"sh\"]"]).unwrap()["Cmd"], json!(["sh"]));
        assert_eq!(
            run(&["CMD sh -c x"]).unwrap()["Cmd"],
            json!(["/bin/sh", "-c", "sh -c x"])
        );
        assert_eq!(
            run(&["cmd [\"a\", \"b c\"]"]).unwrap()["Cmd"],
            json!(["a", "b c"])
        );
        let v = run(&["CMD [\"x\"]", "ENTRYPOINT [\"/bin/top\", \"-b\"]"]).unwrap();
        assert_eq!(v["Entrypoint"], json!(["/bin/top", "-b"]));
        assert_eq!(v["Cmd"], Value::Null);
    }

    #[test]
    fn env_label_workdir_expose_user() {
        let v = run(&[
            "ENV A=1 B=\"two words\"",
            "ENV C three words",
            "ENV A=9",
            "LABEL com.x=y \"k 2\"=v",
            "WORKDIR /srv",
            "WORKDIR app/../data",
            "EXPOSE 80/tcp 81 53/udp 9000-9001",
            "USER nobody",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(v["Env"], json!(["A=9", "B=two words", "C=three words"]));
        assert_eq!(v["Labels"], json!({"com.x": "y", "k 2": "v"}));
        assert_eq!(v["WorkingDir"], json!("/srv/data"));
        assert_eq!(
            v["ExposedPorts"],
            json!({"80/tcp": {}, "81/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}})
        );
        assert_eq!(v["User"], json!("nobody"));
        assert_eq!(v["Volumes"], json!({"/data": {}}));
        assert_eq!(v["StopSignal"], json!("SIGINT"));
    }

    #[test]
    fn bad_changes_are_refused() {
        assert_eq!(
            run(&["RUN echo hi"]).unwrap_err().message,
            "run is not a valid change command"
        );
        assert_eq!(
            run(&["FROM x"]).unwrap_err().message,
            "from is not a valid change command"
        );
        assert!(run(&["EXPOSE http"]).is_err());
        assert!(run(&["ENV"]).is_err());
        assert!(run(&["LABEL a=\"b"]).is_err());
    }
}
