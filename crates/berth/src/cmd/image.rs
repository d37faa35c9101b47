//! Image commands: `images`, `import`, `load`, `rmi`, `tag` and `image ls|import|load|rm|inspect|tag`,
//! with docker's flags and output.

use crate::client::{query_escape, Client, DaemonError};
use crate::format::{self, human_size};
use anyhow::{anyhow, bail};
use berth_api::units::human_duration;
use clap::{Args, Subcommand};
use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// `docker images` without `--format`.
const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// Column headers of `docker images`, by template field name.
const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Digest", "DIGEST"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

#[derive(Subcommand)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove", visible_alias = "rmi")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// REPOSITORY[:TAG]
    repository: Option<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// file|- (a tarball of a filesystem, plain or gzip)
    file: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

pub async fn run(c: &Client, cmd: ImageCmd) -> anyhow::Result<i32> {
    match cmd {
        ImageCmd::Ls(a) => images(c, a).await,
        ImageCmd::Import(a) => import(c, a).await,
        ImageCmd::Load(a) => load(c, a).await,
        ImageCmd::Rm(a) => rmi(c, a).await,
        ImageCmd::Inspect(a) => inspect(c, a).await,
        ImageCmd::Tag(a) => tag(c, a).await,
    }
}

/// `berth images`
pub async fn images(c: &Client, a: ImagesArgs) -> anyhow::Result<i32> {
    let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for it in &a.filter {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    if let Some(r) = &a.repository {
        f.entry("reference".into()).or_default().push(r.clone());
    }
    let mut path = format!("/images/json?all={}", a.all as u8);
    if !f.is_empty() {
        path.push_str(&format!(
            "&filters={}",
            query_escape(&berth_api::encode_filters(&f))
        ));
    }
    let v = c.get_json(&path).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let rows: Vec<Value> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .flat_map(|i| image_rows(i, a.no_trunc, now))
        .collect();
    let default = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let fmt = if a.quiet {
        "{{.ID}}"
    } else {
        format::resolve_list_format(a.format.as_deref(), default)
    };
    let out = format::render_list(fmt, &format::header_map(IMAGES_HEADERS), &rows)
        .map_err(anyhow::Error::msg)?;
    print!("{out}");
    Ok(0)
}

/// One row per tag, as the docker CLI lists images; `<none>` for untagged ones.
fn image_rows(i: &Value, no_trunc: bool, now: i64) -> Vec<Value> {
    let id = i["Id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id.to_string()
    } else {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex[..hex.len().min(12)].to_string()
    };
    let created = i["Created"].as_i64().unwrap_or(0);
    let size = i["Size"].as_i64().unwrap_or(0);
    let n_a = |k: &str| match i[k].as_i64() {
        Some(n) if n >= 0 => Value::from(human_size(n as f64, 3)),
        _ => Value::from("N/A"),
    };
    let containers = match i["Containers"].as_i64() {
        Some(n) if n >= 0 => n.to_string(),
        _ => "N/A".into(),
    };
    let tags: Vec<(String, String)> = i["RepoTags"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .map(|t| match t.rfind(':') {
            Some(p) if !t[p..].contains('/') => (t[..p].to_string(), t[p + 1..].to_string()),
            _ => (t.to_string(), "<none>".to_string()),
        })
        .collect();
    let tags = if tags.is_empty() {
        vec![("<none>".to_string(), "<none>".to_string())]
    } else {
        tags
    };
    tags.into_iter()
        .map(|(repo, tag)| {
            // alphabetical, as docker's `--format json` prints them
            json!({
                "Containers": containers,
                "CreatedAt": go_time_string(created),
                "CreatedSince": format!("{} ago", human_duration(now - created)),
                "Digest": "<none>",
                "ID": id,
                "Repository": repo,
                "SharedSize": n_a("SharedSize"),
                "Size": human_size(size as f64, 3),
                "Tag": tag,
                "UniqueSize": match (i["Size"].as_i64(), i["SharedSize"].as_i64()) {
                    (Some(s), Some(sh)) if sh >= 0 => Value::from(human_size((s - sh) as f64, 3)),
                    _ => Value::from("N/A"),
                },
                "VirtualSize": human_size(i["VirtualSize"].as_i64().unwrap_or(size) as f64, 4),
            })
        })
        .collect()
}

/// Go's `time.Unix(secs, 0).String()` in UTC: `2024-05-06 07:08:09 +0000 UTC`.
fn go_time_string(secs: i64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
    );
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// Reads `file`, or stdin for `-`/none; refuses an interactive terminal as docker does.
fn read_input(file: Option<&str>, what: &str) -> anyhow::Result<Bytes> {
    let mut buf = Vec::new();
    match file {
        None | Some("-") => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested {what} from stdin, but stdin is empty");
            }
            stdin.lock().read_to_end(&mut buf)?;
        }
        Some(path) => {
            buf = std::fs::read(path).map_err(|e| anyhow!("open {path}: {}", io_text(&e)))?;
        }
    }
    Ok(Bytes::from(buf))
}

/// Go's wording of the common I/O errors.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Prints a JSON message stream as docker's jsonmessage does (`stream` as is, `status` as a
/// line); an `error` message ends it with that error.
fn print_messages(body: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for m in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        let m = m?;
        if let Some(e) = m["error"].as_str().or(m["errorDetail"]["message"].as_str()) {
            out.flush()?;
            return Err(DaemonError {
                status: hyper::StatusCode::OK,
                message: e.to_string(),
            }
            .into());
        }
        if let Some(s) = m["stream"].as_str() {
            write!(out, "{s}")?;
        } else if let Some(s) = m["status"].as_str() {
            match m["id"].as_str() {
                Some(id) => writeln!(out, "{id}: {s}")?,
                None => writeln!(out, "{s}")?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `berth import`
pub async fn import(c: &Client, a: ImportArgs) -> anyhow::Result<i32> {
    if a.file.contains("://") {
        bail!(
            "berth import reads files or stdin only: download {} first",
            a.file
        );
    }
    let body = read_input(Some(&a.file), "import")?;
    let mut path = format!(
        "/images/create?fromSrc=-&repo={}&tag=&message={}",
        query_escape(a.reference.as_deref().unwrap_or("")),
        query_escape(a.message.as_deref().unwrap_or(""))
    );
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", query_escape(p)));
    }
    for ch in &a.change {
        path.push_str(&format!("&changes={}", query_escape(ch)));
    }
    let (_, resp) = c
        .send(Method::POST, &path, Some(("application/x-tar", body)))
        .await?;
    print_messages(&resp)?;
    Ok(0)
}

/// `berth load`
pub async fn load(c: &Client, a: LoadArgs) -> anyhow::Result<i32> {
    let body = read_input(a.input.as_deref(), "load")?;
    let path = format!("/images/load?quiet={}", a.quiet as u8);
    let (_, resp) = c
        .send(Method::POST, &path, Some(("application/x-tar", body)))
        .await?;
    print_messages(&resp)?;
    Ok(0)
}

/// `berth rmi`: every image is tried; errors are printed after, exit status 1.
pub async fn rmi(c: &Client, a: RmiArgs) -> anyhow::Result<i32> {
    let mut errors = Vec::new();
    for img in &a.images {
        let path = format!(
            "/images/{img}?force={}&noprune={}",
            a.force as u8, a.no_prune as u8
        );
        match c.call(Method::DELETE, &path, None).await {
            Ok((_, body)) => {
                let items: Vec<Value> = serde_json::from_slice(&body)?;
                for it in items {
                    if let Some(t) = it["Untagged"].as_str() {
                        println!("Untagged: {t}");
                    }
                    if let Some(d) = it["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errors.push(crate::render_error(&e)),
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// `berth image inspect`
pub async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for img in &a.images {
        match c.get_json(&format!("/images/{img}/json")).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(crate::render_error(&e)),
        }
    }
    Ok(format::print_inspect(a.format.as_deref(), &found, errors))
}

/// `berth tag SOURCE TARGET`
pub async fn tag(c: &Client, a: TagArgs) -> anyhow::Result<i32> {
    let (repo, tag) = match a.target.rfind(':') {
        Some(p) if !a.target[p..].contains('/') => (&a.target[..p], &a.target[p + 1..]),
        _ => (a.target.as_str(), ""),
    };
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        a.source,
        query_escape(repo),
        query_escape(tag)
    );
    c.call(Method::POST, &path, None).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag_and_none_for_untagged() {
        let img = json!({"Id": format!("sha256:{}", "ab".repeat(32)), "Created": 100, "Size": 4_261_375,
            "VirtualSize": 4_261_375, "SharedSize": -1, "Containers": -1,
            "RepoTags": ["busybox:latest", "localhost:5000/bb:1"]});
        let rows = image_rows(&img, false, 100 + 7200);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[1]["Repository"], "localhost:5000/bb");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[0]["ID"], "abababababab");
        assert_eq!(rows[0]["CreatedSince"], "2 hours ago");
        assert_eq!(rows[0]["Size"], "4.26MB");
        assert_eq!(rows[0]["CreatedAt"], "1970-01-01 00:01:40 +0000 UTC");
        let dangling =
            json!({"Id": "sha256:00", "RepoTags": ["<none>:<none>"], "Created": 0, "Size": 0});
        let rows = image_rows(&dangling, true, 0);
        assert_eq!(
            (rows[0]["Repository"].as_str(), rows[0]["Tag"].as_str()),
            (Some("<none>"), Some("<none>"))
        );
        assert_eq!(rows[0]["ID"], "sha256:00");
        let out =
            format::render_list(IMAGES_TABLE, &format::header_map(IMAGES_HEADERS), &rows).unwrap();
        assert!(
            out.starts_with("REPOSITORY   TAG       IMAGE ID    CREATED"),
            "{out}"
        );
    }
}
