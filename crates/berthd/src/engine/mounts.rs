//! A container's mount points: parsed at create from `HostConfig.Binds` (`-v`),
//! `HostConfig.Mounts` (`--mount`), `Config.Volumes` and the image's volumes, kept in the
//! record, resolved to host paths at start (for the OCI bundle) and for `docker cp`, and
//! shown by inspect as Docker's `Mounts`.

use super::volumes::CreateRequest;
use super::{Engine, Result};
use berth_net::NetError;
use berth_runtime::container::archive::{Layout, LayoutMount};
use berth_runtime::container::MountSpec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One mount point of a container, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// The volume's name.
    #[serde(default)]
    pub name: String,
    /// A bind's host path.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    /// As inspect shows it (`ro`, `z`, `rw,rshared`, ...).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub nocopy: bool,
    #[serde(default)]
    pub subpath: String,
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
    /// From `HostConfig.Tmpfs`: mounted, but not among inspect's `Mounts` (as Docker).
    #[serde(default)]
    pub hidden: bool,
}

/// What a create asks for, before volumes exist: named volumes to make and anonymous ones.
#[derive(Debug, Default)]
pub struct Parsed {
    pub points: Vec<MountPoint>,
    /// Labels to give a volume `--mount` creates (`VolumeOptions.Labels`).
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn spec_error(spec: &str) -> NetError {
    NetError::invalid(format!("invalid volume specification: '{spec}'"))
}

fn absolute(kind: &str, dst: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(NetError::invalid(format!(
            "invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    Ok(())
}

/// One `-v` / `Binds` entry: `[src:]dst[:mode]`.
pub fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(spec_error(spec)),
    };
    if dst.is_empty() || (parts.len() > 1 && src.is_empty()) {
        return Err(spec_error(spec));
    }
    let bind = src.starts_with('/');
    absolute(if bind { "bind" } else { "volume" }, dst)?;
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" | "z" | "Z" => {}
            "nocopy" if !bind => nocopy = true,
            p if PROPAGATIONS.contains(&p) && bind => propagation = p.to_string(),
            _ => return Err(NetError::invalid(format!("invalid mode: {mode}"))),
        }
    }
    let mut m = MountPoint {
        destination: clean_dst(dst),
        mode: mode.to_string(),
        rw,
        nocopy,
        ..Default::default()
    };
    if bind {
        m.kind = "bind".into();
        m.source = src.to_string();
        m.propagation = if propagation.is_empty() {
            "rprivate".into()
        } else {
            propagation
        };
    } else {
        m.kind = "volume".into();
        m.name = src.to_string();
        m.anonymous = src.is_empty();
        if !m.anonymous && m.mode.is_empty() {
            m.mode = "z".into();
        }
    }
    Ok(m)
}

fn clean_dst(d: &str) -> String {
    let c = berth_runtime::container::archive::clean(Path::new(d));
    Path::new("/").join(c).display().to_string()
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One `HostConfig.Mounts` entry (`--mount`).
pub fn parse_mount(
    v: &Value,
    labels: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<MountPoint> {
    let kind = str_of(v, "Type");
    let dst = str_of(v, "Target");
    let src = str_of(v, "Source");
    let ro = v.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
    if dst.is_empty() {
        return Err(NetError::invalid(format!(
            "invalid mount config for type \"{kind}\": field Target must not be empty"
        )));
    }
    let mut m = MountPoint {
        kind: kind.to_string(),
        destination: clean_dst(dst),
        rw: !ro,
        ..Default::default()
    };
    match kind {
        "bind" => {
            absolute(kind, dst)?;
            if src.is_empty() {
                return Err(NetError::invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !Path::new(src).exists() {
                return Err(NetError::invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                )));
            }
            m.source = src.to_string();
            let p = v
                .pointer("/BindOptions/Propagation")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !p.is_empty() && !PROPAGATIONS.contains(&p) {
                return Err(NetError::invalid(format!(
                    "invalid mount config for type \"bind\": invalid propagation mode: {p}"
                )));
            }
            m.propagation = if p.is_empty() {
                "rprivate".into()
            } else {
                p.into()
            };
        }
        "volume" => {
            absolute(kind, dst)?;
            m.name = src.to_string();
            m.anonymous = src.is_empty();
            if !m.anonymous {
                m.mode = "z".into();
            }
            m.nocopy = v
                .pointer("/VolumeOptions/NoCopy")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            m.subpath = v
                .pointer("/VolumeOptions/Subpath")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(l) = v
                .pointer("/VolumeOptions/Labels")
                .and_then(Value::as_object)
            {
                let l: BTreeMap<String, String> = l
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                if !src.is_empty() {
                    labels.insert(src.to_string(), l);
                }
            }
        }
        "tmpfs" => {
            absolute(kind, dst)?;
            if !src.is_empty() {
                return Err(NetError::invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified",
                ));
            }
            if let Some(n) = v.pointer("/TmpfsOptions/SizeBytes").and_then(Value::as_i64) {
                m.tmpfs_options.push(format!("size={n}"));
            }
            if let Some(n) = v.pointer("/TmpfsOptions/Mode").and_then(Value::as_u64) {
                m.tmpfs_options.push(format!("mode={:o}", n & 0o7777));
            }
        }
        "" => {
            return Err(NetError::invalid(
                "invalid mount config: mount type unknown",
            ))
        }
        other => {
            return Err(NetError::invalid(format!(
                "invalid mount config for type \"{other}\": mount type unknown"
            )))
        }
    }
    Ok(m)
}

/// Every mount point of a container being created, duplicates refused; `Config.Volumes` and
/// the image's volumes not covered by another mount become anonymous volumes.
pub fn parse(
    hc: &berth_api::HostConfig,
    config_volumes: Option<&Value>,
    image_volumes: &[String],
) -> Result<Parsed> {
    let mut out = Parsed::default();
    for b in hc
        .extra
        .get("Binds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = b
            .as_str()
            .ok_or_else(|| NetError::invalid("Binds must be strings"))?;
        out.points.push(parse_bind(s)?);
    }
    for m in hc
        .extra
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.points.push(parse_mount(m, &mut out.labels)?);
    }
    if let Some(t) = hc.extra.get("Tmpfs").and_then(Value::as_object) {
        for (dst, opts) in t {
            absolute("tmpfs", dst)?;
            out.points.push(MountPoint {
                kind: "tmpfs".into(),
                destination: clean_dst(dst),
                rw: true,
                hidden: true,
                tmpfs_options: opts
                    .as_str()
                    .unwrap_or("")
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
                ..Default::default()
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out.points {
        if !seen.insert(m.destination.clone()) {
            return Err(NetError::invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
    }
    let declared = config_volumes
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    for d in declared.iter().chain(image_volumes) {
        absolute("volume", d)?;
        let dst = clean_dst(d);
        if seen.insert(dst.clone()) {
            out.points.push(MountPoint {
                kind: "volume".into(),
                destination: dst,
                rw: true,
                anonymous: true,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

impl Engine {
    /// `HostConfig.VolumesFrom` (`name[:ro|:rw]`): the other containers' mount points, where
    /// this container has none of its own at the path. They stay the other container's: `rm -v`
    /// of this one leaves them.
    pub(super) fn volumes_from(&self, hc: &berth_api::HostConfig, p: &mut Parsed) -> Result<()> {
        let list = hc.extra.get("VolumesFrom").and_then(Value::as_array);
        for v in list.into_iter().flatten() {
            let spec = v
                .as_str()
                .ok_or_else(|| NetError::invalid("VolumesFrom must be strings"))?;
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if ["ro", "rw", "z", "Z"].contains(&m) => (n, Some(m)),
                Some(_) => return Err(NetError::invalid(format!("invalid mode: {spec}"))),
                None => (spec, None),
            };
            let src = self.find(name)?;
            for m in src.snapshot().mounts.iter().filter(|m| !m.hidden) {
                if p.points.iter().any(|x| x.destination == m.destination) {
                    continue;
                }
                let mut m = m.clone();
                m.anonymous = false;
                match mode {
                    Some("ro") => m.rw = false,
                    Some("rw") => m.rw = true,
                    _ => {}
                }
                p.points.push(m);
            }
        }
        Ok(())
    }

    /// Makes the volumes the mount points name (missing named ones, and a fresh one for each
    /// anonymous point). On failure, the volumes made here are removed again.
    pub(super) fn make_volumes(&self, p: &mut Parsed) -> Result<()> {
        let mut made: Vec<String> = Vec::new();
        let r = (|| {
            for m in p.points.iter_mut().filter(|m| m.kind == "volume") {
                let existed = !m.name.is_empty() && self.inspect_volume(&m.name).is_ok();
                let rec = self.create_volume_rec(
                    CreateRequest {
                        name: m.name.clone(),
                        labels: p.labels.get(&m.name).cloned(),
                        ..Default::default()
                    },
                    m.anonymous,
                )?;
                if !existed {
                    made.push(rec.name.clone());
                }
                m.name = rec.name;
            }
            Ok(())
        })();
        if r.is_err() {
            for n in made {
                let _ = self.remove_volume(&n, true);
            }
        }
        r
    }

    /// The mounts for the OCI bundle; bind sources that do not exist are made, as `-v` does.
    pub(super) fn mount_specs(&self, points: &[MountPoint]) -> Result<Vec<MountSpec>> {
        points
            .iter()
            .map(|m| {
                let source = self.host_source(m)?;
                if m.kind == "bind" && !source.exists() {
                    std::fs::create_dir_all(&source).map_err(|e| {
                        NetError::invalid(format!(
                            "error while creating mount source path '{}': {e}",
                            source.display()
                        ))
                    })?;
                }
                Ok(MountSpec {
                    source,
                    destination: m.destination.clone(),
                    tmpfs: m.kind == "tmpfs",
                    readonly: !m.rw,
                    propagation: m.propagation.clone(),
                    copy_up: m.kind == "volume" && !m.nocopy && m.subpath.is_empty(),
                    tmpfs_options: m.tmpfs_options.clone(),
                })
            })
            .collect()
    }

    fn host_source(&self, m: &MountPoint) -> Result<PathBuf> {
        Ok(match m.kind.as_str() {
            "bind" => PathBuf::from(&m.source),
            "volume" => {
                let base = self.volume_path(&m.name);
                if m.subpath.is_empty() {
                    base
                } else {
                    let rel = berth_runtime::container::archive::clean(Path::new(&m.subpath));
                    let p = berth_runtime::container::archive::resolve_in(
                        &base,
                        &rel.display().to_string(),
                    )?;
                    p.filter(|p| p.is_dir()).ok_or_else(|| {
                        NetError::invalid(format!(
                            "cannot access path {}: no such directory in volume {}",
                            m.subpath, m.name
                        ))
                    })?
                }
            }
            _ => PathBuf::new(),
        })
    }

    /// Where `docker cp` finds the container's files besides the root filesystem.
    pub(super) fn layout(&self, rootfs: PathBuf, points: &[MountPoint]) -> Layout {
        Layout {
            rootfs,
            mounts: points
                .iter()
                .filter(|m| m.kind != "tmpfs")
                .filter_map(|m| {
                    Some(LayoutMount {
                        destination: m.destination.clone(),
                        source: self.host_source(m).ok()?,
                        readonly: !m.rw,
                    })
                })
                .collect(),
        }
    }

    /// Inspect's `Mounts`.
    pub fn mounts_shown(&self, points: &[MountPoint]) -> Vec<Value> {
        points
            .iter()
            .filter(|m| !m.hidden)
            .map(|m| match m.kind.as_str() {
                "volume" => json!({
                    "Type": "volume",
                    "Name": m.name,
                    "Source": self.volume_path(&m.name).display().to_string(),
                    "Destination": m.destination,
                    "Driver": "local",
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": "",
                }),
                _ => json!({
                    "Type": m.kind,
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_as_docker_reads_them() {
        let m = parse_bind("/tmp/x:/mnt:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.rw,
                m.mode.as_str(),
                m.propagation.as_str()
            ),
            ("bind", "/tmp/x", false, "ro", "rprivate")
        );
        let m = parse_bind("/tmp/x:/mnt:rw,rshared").unwrap();
        assert_eq!((m.rw, m.propagation.as_str()), (true, "rshared"));
        let m = parse_bind("data:/d").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.mode.as_str()),
            ("volume", "data", "z")
        );
        let m = parse_bind("/anon").unwrap();
        assert!(m.anonymous && m.name.is_empty() && m.mode.is_empty());
        assert!(parse_bind("a:b:c:d")
            .unwrap_err()
            .message
            .contains("invalid volume specification"));
        assert!(parse_bind("data:rel")
            .unwrap_err()
            .message
            .contains("must be absolute"));
        assert!(parse_bind("/x:/y:bogus")
            .unwrap_err()
            .message
            .contains("invalid mode"));
        // propagation is for binds only
        assert!(parse_bind("data:/y:rshared").is_err());
    }

    #[test]
    fn mounts_and_declared_volumes() {
        let hc: berth_api::HostConfig = serde_json::from_value(json!({
            "Binds": ["v1:/a"],
            "Mounts": [
                {"Type": "volume", "Source": "v2", "Target": "/b",
                 "VolumeOptions": {"Labels": {"k": "v"}}},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024}},
            ],
        }))
        .unwrap();
        let p = parse(&hc, Some(&json!({"/a": {}, "/c": {}})), &["/d".into()]).unwrap();
        let dsts: Vec<&str> = p.points.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dsts, ["/a", "/b", "/t", "/c", "/d"]);
        assert!(p.points[3].anonymous && p.points[4].anonymous);
        assert_eq!(p.labels["v2"]["k"], "v");
        assert_eq!(p.points[2].tmpfs_options, ["size=1024"]);

        let dup: berth_api::HostConfig =
            serde_json::from_value(json!({"Binds": ["v1:/a", "/x:/a/"]})).unwrap();
        assert!(parse(&dup, None, &[])
            .unwrap_err()
            .message
            .contains("Duplicate mount point"));
        let bad: berth_api::HostConfig = serde_json::from_value(
            json!({"Mounts": [{"Type": "bind", "Source": "/no/such/dir/xyz", "Target": "/m"}]}),
        )
        .unwrap();
        assert!(parse(&bad, None, &[])
            .unwrap_err()
            .message
            .contains("bind source path does not exist"));
    }
}
