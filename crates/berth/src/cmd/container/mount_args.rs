//! `--mount` and `--tmpfs` flags into `HostConfig.Mounts` and `HostConfig.Tmpfs`, as the docker
//! CLI's `opts.MountOpt` reads them.

use serde_json::{json, Map, Value};

fn bool_value(k: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(o) => Err(format!(
            "invalid argument \"{o}\" for \"--mount\" flag: invalid value for {k}: {o}"
        )),
    }
}

/// One `--mount type=bind,source=/x,target=/y,readonly` flag.
pub fn parse_mount(spec: &str) -> Result<Value, String> {
    let mut m = Map::new();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut labels = Map::new();
    let mut tmpfs = Map::new();
    m.insert("Type".into(), json!("volume"));
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_string).ok_or_else(|| {
                format!("invalid argument \"{spec}\" for \"--mount\" flag: invalid field '{field}' must be a key=value pair")
            })
        };
        match k.as_str() {
            "type" => {
                m.insert("Type".into(), json!(need(v)?.to_ascii_lowercase()));
            }
            "source" | "src" => {
                m.insert("Source".into(), json!(need(v)?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need(v)?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(bool_value(&k, v)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need(v)?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(bool_value(&k, v)?));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(need(v)?));
            }
            "volume-label" => {
                let kv = need(v)?;
                let (lk, lv) = kv.split_once('=').unwrap_or((&kv, ""));
                labels.insert(lk.into(), json!(lv));
            }
            "tmpfs-size" => {
                let n = need(v)?;
                let bytes = size_bytes(&n)
                    .ok_or_else(|| format!("invalid argument \"{spec}\" for \"--mount\" flag: invalid value for tmpfs-size: {n}"))?;
                tmpfs.insert("SizeBytes".into(), json!(bytes));
            }
            "tmpfs-mode" => {
                let n = need(v)?;
                let mode = u32::from_str_radix(&n, 8)
                    .map_err(|_| format!("invalid argument \"{spec}\" for \"--mount\" flag: invalid value for tmpfs-mode: {n}"))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => {
                return Err(format!(
                    "invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'"
                ))
            }
        }
    }
    if !m.contains_key("Target") {
        return Err(format!(
            "invalid argument \"{spec}\" for \"--mount\" flag: target is required"
        ));
    }
    if !labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(labels));
    }
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

/// `64m`, `1g`, `1024` → bytes (binary units, as docker's RAMInBytes).
pub fn size_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as i64)
}

pub fn parse_mounts(specs: &[String]) -> Result<Value, String> {
    if specs.is_empty() {
        return Ok(Value::Null);
    }
    specs
        .iter()
        .map(|s| parse_mount(s))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::from)
}

/// `--tmpfs /run:size=64m` → `{"/run": "size=64m"}`.
pub fn parse_tmpfs(specs: &[String]) -> Value {
    if specs.is_empty() {
        return Value::Null;
    }
    let m: Map<String, Value> = specs
        .iter()
        .map(|s| match s.split_once(':') {
            Some((p, o)) => (p.to_string(), json!(o)),
            None => (s.clone(), json!("")),
        })
        .collect();
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags_as_docker_reads_them() {
        let v =
            parse_mount("type=bind,src=/tmp,dst=/mnt,readonly,bind-propagation=rshared").unwrap();
        assert_eq!(
            v,
            json!({"Type": "bind", "Source": "/tmp", "Target": "/mnt", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rshared"}})
        );
        let v = parse_mount("source=data,target=/d,volume-label=a=b,volume-nocopy").unwrap();
        assert_eq!(v["Type"], "volume");
        assert_eq!(
            v["VolumeOptions"],
            json!({"NoCopy": true, "Labels": {"a": "b"}})
        );
        let v = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            v["TmpfsOptions"],
            json!({"SizeBytes": 1048576, "Mode": 0o1770})
        );
        assert!(parse_mount("type=bind,src=/x")
            .unwrap_err()
            .contains("target is required"));
        assert!(parse_mount("type=bind,bogus=1,target=/x").is_err());
        assert_eq!(
            parse_tmpfs(&["/run:size=64m".into()]),
            json!({"/run": "size=64m"})
        );
    }
}
