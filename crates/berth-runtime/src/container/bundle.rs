//! The OCI bundle berth writes for runc: Docker's defaults (capabilities, masked paths,
//! mounts) on top of oci-spec's baseline, joined to the network namespace berth prepared.

use crate::{Error, Result};
use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceType, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Docker's default capability set: enough for `ping` (NET_RAW) and ordinary daemons, without
/// the administrative ones.
const DOCKER_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The process half of a container or an exec.
#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    /// `USER[:GROUP]`, names or numbers (Docker's `--user`); empty: root.
    pub user: String,
}

/// Everything the bundle needs besides the process.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    pub rootfs: PathBuf,
    pub hostname: String,
    /// `None`: share the host's network stack (`--net=host`).
    pub netns: Option<PathBuf>,
    /// Files berth owns and bind-mounts: (host path, container path), e.g. /etc/hosts.
    pub binds: Vec<(PathBuf, String)>,
    /// The user's binds, volumes and tmpfs mounts.
    pub mounts: Vec<super::MountSpec>,
}

fn oci(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("OCI spec: {e}"))
}

/// The process's user, resolved in the container's root filesystem; `HOME` from its entry
/// unless the environment sets one (Docker's behaviour).
fn user(u: &str, rootfs: &Path, env: &mut Vec<String>) -> Result<oci_spec::runtime::User> {
    let r = super::passwd::resolve(rootfs, u)?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", r.home));
    }
    let mut b = UserBuilder::default().uid(r.uid).gid(r.gid);
    if !r.additional_gids.is_empty() {
        b = b.additional_gids(r.additional_gids);
    }
    b.build().map_err(oci)
}

/// The process of `config.json` (or of an exec); `rootfs`: the container's, mounted.
pub fn process(p: &ProcessSpec, rootfs: &Path) -> Result<oci_spec::runtime::Process> {
    let caps: HashSet<Capability> = DOCKER_CAPS.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(oci)?;
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if p.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user = user(&p.user, rootfs, &mut env)?;
    ProcessBuilder::default()
        .terminal(p.tty)
        .args(p.args.clone())
        .env(env)
        .cwd(if p.cwd.is_empty() {
            "/".into()
        } else {
            p.cwd.clone()
        })
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .map_err(oci)
}

/// The container's `config.json`.
pub fn spec(b: &BundleSpec, p: &ProcessSpec) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_process(Some(process(p, &b.rootfs)?));
    spec.set_hostname(Some(b.hostname.clone()));
    spec.set_root(Some(
        RootBuilder::default()
            .path(b.rootfs.clone())
            .readonly(false)
            .build()
            .map_err(oci)?,
    ));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (src, dst) in &b.binds {
        mounts.push(
            MountBuilder::default()
                .destination(dst)
                .typ("bind")
                .source(src)
                .options(vec!["rbind".into(), "rprivate".into()])
                .build()
                .map_err(oci)?,
        );
    }
    mounts.extend(super::mounts::oci_mounts(&b.mounts)?);
    spec.set_mounts(Some(mounts));
    let linux = spec.linux_mut().as_mut().expect("default spec has linux");
    if let Some(p) = super::mounts::root_propagation(&b.mounts) {
        linux.set_rootfs_propagation(Some(p.to_string()));
    }
    let mut namespaces: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    if let Some(ns) = &b.netns {
        let mut n = LinuxNamespace::default();
        n.set_typ(LinuxNamespaceType::Network);
        n.set_path(Some(ns.clone()));
        namespaces.push(n);
    }
    linux.set_namespaces(Some(namespaces));
    Ok(spec)
}

/// Sets the cgroup limits (`linux.resources`), keeping what the baseline spec holds there.
pub fn set_resources(spec: &mut Spec, r: &super::resources::Resources) -> Result<()> {
    if r.is_empty() {
        return Ok(());
    }
    let linux = spec.linux_mut().as_mut().expect("default spec has linux");
    let mut v = serde_json::to_value(linux.resources()).map_err(oci)?;
    if !v.is_object() {
        v = serde_json::json!({});
    }
    if let (Some(o), serde_json::Value::Object(add)) = (v.as_object_mut(), r.to_oci()) {
        o.extend(add);
    }
    linux.set_resources(Some(serde_json::from_value(v).map_err(oci)?));
    Ok(())
}

/// Supplementary groups (`--group-add`), numbers or names from the image's `/etc/group`.
pub fn set_groups(spec: &mut Spec, rootfs: &Path, groups: &[String]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let gids = super::passwd::group_ids(rootfs, groups)?;
    if let Some(p) = spec.process_mut() {
        let mut u = p.user().clone();
        let mut all = u.additional_gids().clone().unwrap_or_default();
        all.extend(gids);
        u.set_additional_gids(Some(all));
        p.set_user(u);
    }
    Ok(())
}

/// Writes `config.json` into `dir`.
pub fn write(dir: &Path, spec: &Spec) -> Result<()> {
    let tmp = dir.join("config.json.tmp");
    spec.save(&tmp).map_err(oci)?;
    std::fs::rename(&tmp, dir.join("config.json"))
        .map_err(|e| Error::internal(format!("writing the OCI bundle: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_given_netns_and_keeps_docker_caps() {
        let b = BundleSpec {
            rootfs: "/r".into(),
            hostname: "h1".into(),
            netns: Some("/run/berth/netns/abc".into()),
            binds: vec![("/d/hosts".into(), "/etc/hosts".into())],
            mounts: vec![],
        };
        let p = ProcessSpec {
            args: vec!["sh".into()],
            tty: true,
            ..Default::default()
        };
        let v = serde_json::to_value(spec(&b, &p).unwrap()).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        let net: Vec<_> = ns.iter().filter(|n| n["type"] == "network").collect();
        assert_eq!(net.len(), 1);
        assert_eq!(net[0]["path"], "/run/berth/netns/abc");
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_NET_RAW"));
        assert_eq!(v["process"]["terminal"], true);
        assert!(v["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "TERM=xterm"));
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/etc/hosts" && m["type"] == "bind"));
        assert_eq!(v["hostname"], "h1");
    }

    #[test]
    fn host_mode_has_no_network_namespace() {
        let b = BundleSpec {
            rootfs: "/r".into(),
            hostname: "h".into(),
            netns: None,
            binds: vec![],
            mounts: vec![],
        };
        let v = serde_json::to_value(spec(&b, &ProcessSpec::default()).unwrap()).unwrap();
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
    }

    #[test]
    fn user_names_resolve_in_the_rootfs_and_set_home() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "nobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        .unwrap();
        let mut env = vec![];
        let u = user("nobody", d.path(), &mut env).unwrap();
        assert_eq!((u.uid(), u.gid()), (65534, 65534));
        assert_eq!(env, ["HOME=/home"]);
        let mut env = vec!["HOME=/x".to_string()];
        assert!(user("1000:1000", d.path(), &mut env).is_ok());
        assert_eq!(env, ["HOME=/x"], "a HOME given is kept");
        assert!(user("postgres", d.path(), &mut env).is_err());
    }

    #[test]
    fn groups_by_number_and_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:a,b\n").unwrap();
        let b = BundleSpec {
            rootfs: dir.path().into(),
            hostname: "h".into(),
            netns: None,
            binds: vec![],
            mounts: vec![],
        };
        let mut s = spec(&b, &ProcessSpec::default()).unwrap();
        set_groups(&mut s, dir.path(), &["1000".into(), "staff".into()]).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["process"]["user"]["additionalGids"],
            serde_json::json!([1000, 50])
        );
        let e = set_groups(&mut s, dir.path(), &["nope".into()]).unwrap_err();
        assert!(e.to_string().contains("Unable to find group nope"), "{e}");
    }

    #[test]
    fn resources_join_the_baseline() {
        let b = BundleSpec {
            rootfs: "/r".into(),
            hostname: "h".into(),
            netns: None,
            binds: vec![],
            mounts: vec![],
        };
        let mut s = spec(&b, &ProcessSpec::default()).unwrap();
        let r = crate::container::resources::Resources {
            cpu_shares: Some(512),
            ..Default::default()
        };
        set_resources(&mut s, &r).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["linux"]["resources"]["cpu"]["shares"], 512);
        assert!(v["linux"]["resources"]["devices"].is_array());
    }
}
