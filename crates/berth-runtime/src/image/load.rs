//! Reading `docker save` archives: the legacy layout (`manifest.json`, `<id>.json`,
//! `<dir>/layer.tar`) and the OCI layout Docker 25+ writes (`index.json`, `oci-layout`,
//! `blobs/sha256/...`, with a `manifest.json` pointing into the blobs), or a bare OCI layout.

use super::layer::Layers;
use super::untar::{self, Mode};
use super::{config, reference::Reference};
use crate::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// One image of the archive, as `manifest.json` lists it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub config: String,
    #[serde(default, deserialize_with = "config::null_default")]
    pub repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "config::null_default")]
    pub layers: Vec<String>,
}

/// An image of the archive, checked and with its layers in the store, not yet registered.
pub struct Ready {
    pub raw_config: Vec<u8>,
    pub tags: Vec<String>,
    pub size: u64,
}

/// Unpacks the archive into `tmp`, then checks every image and extracts its layers. On error
/// the layers this call created are removed again: a bad archive leaves nothing behind.
pub fn prepare(src: &mut dyn std::io::Read, tmp: &Path, layers: &Layers) -> Result<Vec<Ready>> {
    let mut plain = untar::decompressed(Box::new(src))?;
    untar::unpack(&mut plain, tmp, Mode::Plain)?;
    let entries = entries(tmp)?;
    let mut created: Vec<String> = Vec::new();
    let r = entries
        .iter()
        .map(|e| prepare_one(tmp, e, layers, &mut created))
        .collect::<Result<Vec<Ready>>>();
    if r.is_err() {
        for d in &created {
            layers.remove(d);
        }
    }
    r
}

fn prepare_one(dir: &Path, e: &Entry, layers: &Layers, created: &mut Vec<String>) -> Result<Ready> {
    let raw_config = read(dir, &e.config)?;
    let doc: Value = serde_json::from_slice(&raw_config)
        .map_err(|err| bad(format!("config {} is not JSON: {err}", e.config)))?;
    let diff_ids = config::diff_ids(&doc)?;
    if diff_ids.len() != e.layers.len() {
        return Err(bad(format!(
            "image config {} has {} layers, the manifest lists {}",
            e.config,
            diff_ids.len(),
            e.layers.len()
        )));
    }
    let tags = e
        .repo_tags
        .iter()
        .map(|t| Reference::parse(t).map(|r| r.familiar()))
        .collect::<Result<Vec<_>>>()?;
    let mut size = 0;
    for (path, want) in e.layers.iter().zip(&diff_ids) {
        if layers.exists(want) {
            size += layers.size(want);
            continue;
        }
        let mut f = open(dir, path)?;
        let added = layers.add(&mut f)?;
        if added.new {
            created.push(added.diff_id.clone());
        }
        if &added.diff_id != want {
            return Err(bad(format!(
                "layer {path} has diff id {}, the image config says {want}",
                added.diff_id
            )));
        }
        size += added.size;
    }
    Ok(Ready {
        raw_config,
        tags,
        size,
    })
}

/// The images of an unpacked archive: `manifest.json`, or else an OCI `index.json`.
fn entries(dir: &Path) -> Result<Vec<Entry>> {
    if dir.join("manifest.json").is_file() {
        let raw = read(dir, "manifest.json")?;
        return serde_json::from_slice(&raw).map_err(|e| bad(format!("manifest.json: {e}")));
    }
    if dir.join("index.json").is_file() {
        let mut out = Vec::new();
        oci_entries(dir, "index.json", None, &mut out, 0)?;
        return Ok(out);
    }
    Err(bad(
        "no manifest.json or index.json in it: not an archive made by `docker save`".into(),
    ))
}

/// Walks an OCI index (and nested indexes) down to image manifests. Tags come from the
/// annotations containerd and Docker write.
fn oci_entries(
    dir: &Path,
    index: &str,
    name: Option<String>,
    out: &mut Vec<Entry>,
    depth: u32,
) -> Result<()> {
    if depth > 4 {
        return Err(bad("OCI indexes nested too deep".into()));
    }
    let idx: Value =
        serde_json::from_slice(&read(dir, index)?).map_err(|e| bad(format!("{index}: {e}")))?;
    let manifests = idx["manifests"].as_array().cloned().unwrap_or_default();
    let mine = |m: &&Value| {
        let p = &m["platform"];
        p.is_null()
            || (p["os"].as_str() == Some("linux")
                && p["architecture"].as_str() == Some(config::architecture()))
    };
    for m in manifests.iter().filter(mine) {
        let digest = m["digest"]
            .as_str()
            .ok_or_else(|| bad(format!("{index}: manifest without digest")))?;
        let ann = &m["annotations"];
        let tag = ann["io.containerd.image.name"]
            .as_str()
            .or(ann["org.opencontainers.image.ref.name"]
                .as_str()
                .filter(|r| r.contains([':', '/'])))
            .map(str::to_string)
            .or_else(|| name.clone());
        let media = m["mediaType"].as_str().unwrap_or("");
        if media.contains("index") || media.contains("manifest.list") {
            oci_entries(dir, &blob_path(digest)?, tag, out, depth + 1)?;
            // the first image of a multi-platform index that runs here is enough
            continue;
        }
        let man: Value = serde_json::from_slice(&read(dir, &blob_path(digest)?)?)
            .map_err(|e| bad(format!("manifest {digest}: {e}")))?;
        let config = man["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad(format!("manifest {digest} has no config")))?;
        let layers = man["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|l| {
                l["digest"]
                    .as_str()
                    .ok_or_else(|| bad(format!("manifest {digest}: layer without digest")))
                    .and_then(blob_path)
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Entry {
            config: blob_path(config)?,
            repo_tags: tag.into_iter().collect(),
            layers,
        });
    }
    Ok(())
}

fn blob_path(digest: &str) -> Result<String> {
    match digest.split_once(':') {
        Some((alg, hex)) if !alg.is_empty() && super::reference::is_hex(hex) => {
            Ok(format!("blobs/{alg}/{hex}"))
        }
        _ => Err(bad(format!("bad digest {digest:?}"))),
    }
}

/// The file `rel` of the unpacked archive; links inside the archive (legacy `docker save`
/// links repeated layers) are followed, but only within it.
fn resolve(dir: &Path, rel: &str) -> Result<PathBuf> {
    let clean =
        untar::relative(Path::new(rel))?.ok_or_else(|| bad(format!("empty path {rel:?}")))?;
    let base = dir
        .canonicalize()
        .map_err(|e| Error::internal(format!("{}: {e}", dir.display())))?;
    let real = dir
        .join(&clean)
        .canonicalize()
        .map_err(|_| bad(format!("{rel} is missing from the archive")))?;
    if !real.starts_with(&base) || !real.is_file() {
        return Err(bad(format!("{rel} is not a file of the archive")));
    }
    Ok(real)
}

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>> {
    let p = resolve(dir, rel)?;
    fs::read(&p).map_err(|e| Error::internal(format!("reading {}: {e}", p.display())))
}

fn open(dir: &Path, rel: &str) -> Result<fs::File> {
    let p = resolve(dir, rel)?;
    fs::File::open(&p).map_err(|e| Error::internal(format!("reading {}: {e}", p.display())))
}

fn bad(msg: String) -> Error {
    Error::invalid(format!("invalid image archive: {msg}"))
}

/// Docker's output lines for a loaded image: one per tag, or its id when it has none.
pub fn lines(id: &str, tags: &[String], moved_from: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (tag, old) in moved_from {
        out.push(format!(
            "The image {tag} already exists, renaming the old one with ID {old} to empty string"
        ));
    }
    for t in tags {
        out.push(format!("Loaded image: {t}"));
    }
    if tags.is_empty() {
        out.push(format!("Loaded image ID: {id}"));
    }
    out
}
