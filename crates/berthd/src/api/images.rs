//! /images routes: list, inspect, remove, tag, `load` (a `docker save` archive) and
//! `create` (`docker import` of a filesystem tarball; pulling is answered with an error, as no
//! registry is reachable). Archive bodies are streamed straight into the image store.

use super::body::{filters, flag, Q};
use super::{json, ApiError, Shared};
use crate::engine::blocking;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_runtime::image::{config::container_config, Image, ImageDetails, ImageStore};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::sync::Arc;

/// `GET /images/json`
pub async fn list(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let f = filters(&q)?;
    let store = s.engine.images.clone();
    let images = blocking(move || store.list_filtered(&f)).await?;
    let out: Vec<Value> = images.iter().map(summary).collect();
    Ok(json(StatusCode::OK, &out))
}

/// Docker 20.10's ImageSummary; untagged images show as `<none>:<none>`.
fn summary(i: &Image) -> Value {
    let (tags, digests) = if i.repo_tags.is_empty() {
        (json!(["<none>:<none>"]), json!(["<none>@<none>"]))
    } else {
        (json!(i.repo_tags), json!([]))
    };
    json!({
        "Containers": -1,
        "Created": i.created_unix(),
        "Id": i.id,
        "Labels": labels(i),
        "ParentId": "",
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": -1,
        "Size": i.size,
        "VirtualSize": i.size,
    })
}

fn labels(i: &Image) -> Value {
    if i.config.labels.is_empty() {
        Value::Null
    } else {
        json!(i.config.labels)
    }
}

/// Dispatches `GET /images/{name}/json` (names may hold slashes).
pub async fn get(State(s): State<Shared>, Path(rest): Path<String>) -> Result<Response, ApiError> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(not_found());
    };
    let store = s.engine.images.clone();
    let name = name.to_string();
    let d = blocking(move || store.inspect(&name)).await?;
    Ok(json(StatusCode::OK, &inspect_json(&d)))
}

fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "page not found".into())
}

/// Docker's ImageInspect, built from the stored config document.
fn inspect_json(d: &ImageDetails) -> Value {
    let doc = &d.document;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let img = &d.image;
    let mut data = Map::new();
    let mut dirs: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    if !dirs.is_empty() {
        let upper = dirs.remove(0);
        if !dirs.is_empty() {
            data.insert("LowerDir".into(), json!(dirs.join(":")));
        }
        data.insert("UpperDir".into(), json!(upper));
    }
    let mut out = Map::new();
    out.insert("Id".into(), json!(img.id));
    out.insert("RepoTags".into(), json!(img.repo_tags));
    out.insert("RepoDigests".into(), json!([]));
    out.insert("Parent".into(), json!(text("parent")));
    out.insert("Comment".into(), json!(text("comment")));
    out.insert("Created".into(), json!(text("created")));
    out.insert("Container".into(), json!(text("container")));
    out.insert(
        "ContainerConfig".into(),
        container_config(&doc["container_config"]),
    );
    out.insert("DockerVersion".into(), json!(text("docker_version")));
    out.insert("Author".into(), json!(text("author")));
    out.insert("Config".into(), container_config(&doc["config"]));
    out.insert("Architecture".into(), json!(text("architecture")));
    if !text("variant").is_empty() {
        out.insert("Variant".into(), json!(text("variant")));
    }
    out.insert("Os".into(), json!(text("os")));
    if !text("os.version").is_empty() {
        out.insert("OsVersion".into(), json!(text("os.version")));
    }
    out.insert("Size".into(), json!(img.size));
    out.insert("VirtualSize".into(), json!(img.size));
    out.insert(
        "GraphDriver".into(),
        json!({"Data": data, "Name": "overlay2"}),
    );
    out.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": d.diff_ids}),
    );
    let tagged = d
        .last_tag_time
        .clone()
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    out.insert("Metadata".into(), json!({"LastTagTime": tagged}));
    Value::Object(out)
}

/// `DELETE /images/{name}?force=&noprune=`
pub async fn remove(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let force = flag(&q, "force");
    let engine = s.engine.clone();
    let removed = blocking(move || {
        engine
            .images
            .remove(&name, force, &|id| engine.image_user(id))
    })
    .await?;
    let out: Vec<Value> = removed
        .into_iter()
        .map(|(k, v)| Value::Object(Map::from_iter([(k, Value::String(v))])))
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// `POST /images/{name}/tag?repo=&tag=`
pub async fn post(
    State(s): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/push") {
        return Err(super::unsupported::push(&s, name));
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(not_found());
    };
    let repo = q.get("repo").cloned().unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "repository name must have at least one component".into(),
        ));
    }
    let target = berth_runtime::image::reference::with_tag(
        &repo,
        q.get("tag").map(String::as_str).unwrap_or(""),
    )?;
    let (store, name) = (s.engine.images.clone(), name.to_string());
    blocking(move || store.tag(&name, &target)).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `POST /images/load`: the reply is a JSON message stream with Docker's lines.
pub async fn load(State(s): State<Shared>, body: Body) -> Result<Response, ApiError> {
    let store = s.engine.images.clone();
    let lines = feed(body, move |r| store.load(r)).await?;
    let mut out = Vec::new();
    for l in lines {
        serde_json::to_writer(&mut out, &json!({ "stream": format!("{l}\n") }))
            .expect("serializable");
        out.extend_from_slice(b"\r\n");
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// `POST /images/create`: `fromSrc=-` imports the body (`docker import`); `fromImage` would
/// pull, which berth cannot, except that an image already here is "up to date".
pub async fn create(
    State(s): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response, ApiError> {
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let store = s.engine.images.clone();
    if !get("fromImage").is_empty() {
        return pull(store, &get("fromImage"), &get("tag")).await;
    }
    match get("fromSrc").as_str() {
        "-" => {}
        "" => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "fromImage or fromSrc is required".into(),
            ))
        }
        src => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "berth cannot download {src}: send the archive in the request body (fromSrc=-)"
                ),
            ))
        }
    }
    let (repo, tag, message) = (get("repo"), get("tag"), get("message"));
    let changes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "changes")
        .map(|(_, v)| v.clone())
        .collect();
    // checked on the reader's side, so that a bad request still has its body drained
    let img = feed(body, move |r| {
        let reference = match repo.is_empty() {
            true => None,
            false => Some(berth_runtime::image::reference::with_tag(&repo, &tag)?),
        };
        store.import_with_message(r, reference.as_deref(), &changes, &message)
    })
    .await?;
    Ok(json(StatusCode::OK, &json!({ "status": img.id })))
}

async fn pull(store: Arc<ImageStore>, image: &str, tag: &str) -> Result<Response, ApiError> {
    let reference = berth_runtime::image::reference::with_tag(image, tag)?;
    let r2 = reference.clone();
    match blocking(move || store.resolve(&r2)).await {
        Ok(_) => {
            let (name, tag) = reference.rsplit_once(':').unwrap_or((&reference, "latest"));
            // Docker Hub's official images are `library/...` in pull messages
            let name = if name.contains('/') { name.to_string() } else { format!("library/{name}") };
            let mut out = Vec::new();
            for m in [
                json!({"status": format!("Pulling from {name}"), "id": tag}),
                json!({"status": format!("Status: Image is up to date for {reference}")}),
            ] {
                serde_json::to_writer(&mut out, &m).expect("serializable");
                out.extend_from_slice(b"\r\n");
            }
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], out).into_response())
        }
        Err(_) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "pull access denied for {reference}: berth reaches no registry; add images with `berth load` (docker save archives) or `berth import` (filesystem tarballs)"
            ),
        )),
    }
}

/// Streams a request body into `f` running on a blocking thread, without holding it all in
/// memory: chunks go through a small channel to a `Read` adapter.
pub(super) async fn feed<T: Send + 'static>(
    body: Body,
    f: impl FnOnce(&mut dyn Read) -> berth_runtime::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let task = tokio::task::spawn_blocking(move || {
        let mut r = ChannelReader {
            rx,
            cur: Bytes::new(),
        };
        f(&mut r)
    });
    let mut stream = body.into_data_stream();
    let mut reading = true;
    while let Some(chunk) = stream.next().await {
        if !reading {
            // the store gave up (it failed): the client still gets its answer only once it
            // has sent everything, so the rest is read and dropped
            continue;
        }
        let item = chunk.map_err(std::io::Error::other);
        let failed = item.is_err();
        if failed {
            let _ = tx.send(item).await;
            break;
        }
        reading = tx.send(item).await.is_ok();
    }
    drop(tx);
    match task.await {
        Ok(r) => Ok(r?),
        Err(e) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::image::ImageConfig;

    fn image(tags: &[&str]) -> Image {
        Image {
            id: format!("sha256:{}", "ab".repeat(32)),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            created: "2024-05-06T07:08:09.5Z".into(),
            config: ImageConfig::default(),
            layers: vec!["/l/base".into(), "/l/top".into()],
            size: 42,
        }
    }

    #[test]
    fn summaries_have_docker_shape() {
        let v = summary(&image(&[]));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Containers",
                "Created",
                "Id",
                "Labels",
                "ParentId",
                "RepoDigests",
                "RepoTags",
                "SharedSize",
                "Size",
                "VirtualSize"
            ]
        );
        assert_eq!(v["RepoTags"], json!(["<none>:<none>"]));
        assert_eq!(v["Created"], json!(1714979289));
        assert_eq!(summary(&image(&["a:1"]))["RepoTags"], json!(["a:1"]));
    }

    #[test]
    fn inspect_has_docker_shape() {
        let d = ImageDetails {
            image: image(&["a:1"]),
            document: json!({"created": "2024-05-06T07:08:09.5Z", "architecture": "amd64", "os": "linux",
                "config": {"Cmd": ["sh"]}}),
            diff_ids: vec!["sha256:1".into(), "sha256:2".into()],
            last_tag_time: None,
        };
        let v = inspect_json(&d);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            &keys[..6],
            [
                "Id",
                "RepoTags",
                "RepoDigests",
                "Parent",
                "Comment",
                "Created"
            ]
        );
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(v["Config"]["Env"], Value::Null);
        assert_eq!(
            v["GraphDriver"],
            json!({"Data": {"LowerDir": "/l/base", "UpperDir": "/l/top"}, "Name": "overlay2"})
        );
        assert_eq!(v["RootFS"]["Layers"], json!(["sha256:1", "sha256:2"]));
        assert_eq!(v["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bodies_stream_into_blocking_readers() {
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..100u8).map(|i| Ok(Bytes::from(vec![i; 1000]))).collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let got = feed(body, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)
                .map_err(|e| berth_runtime::Error::internal(e.to_string()))?;
            Ok(v)
        })
        .await
        .map_err(|e| e.1)
        .unwrap();
        assert_eq!(got.len(), 100_000);
        assert_eq!(got[99_999], 99);

        // a reader that gives up early does not hang the sender
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..1000).map(|_| Ok(Bytes::from(vec![0; 1000]))).collect();
        let r: Result<(), _> = feed(Body::from_stream(futures::stream::iter(chunks)), |_| {
            Err(berth_runtime::Error::invalid("nope"))
        })
        .await;
        assert_eq!(r.err().map(|e| e.0), Some(StatusCode::BAD_REQUEST));
    }
}
