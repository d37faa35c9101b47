//! Finding a plugin by name, as Docker's `pkg/plugins` local registry does: a socket
//! `<name>.sock` or `<name>/<name>.sock` in the socket directories, then per spec directory
//! `<name>.spec`, `<name>/<name>.spec`, `<name>.json`, `<name>/<name>.json`. A missing plugin
//! is looked for again after 1, 2, 4 and 8 s (Docker's window: about 15 s), scaled by
//! [`Retry::unit`] so tests are fast.

use super::error::PluginError;
use serde::Deserialize;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Docker's socket directory.
pub const SOCKET_DIR: &str = "/run/docker/plugins";
/// Docker's spec directories, in lookup order.
pub const SPEC_DIRS: [&str; 2] = ["/etc/docker/plugins", "/usr/lib/docker/plugins"];
/// Spec files larger than this are refused (a spec is a URL, a `.json` a few paths).
const MAX_SPEC: u64 = 64 * 1024;

/// Docker's retry schedule (`pkg/plugins/client.go`: `backoff`, `abort`): sleeps of 1, 2, 4,
/// 8… units (at most `limit`), giving up when the next sleep would end `limit` units after
/// the start. With Docker's values (1 s, 30) a missing plugin fails after about 15 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub unit: Duration,
    pub limit: u32,
}

impl Retry {
    pub const DOCKER: Retry = Retry {
        unit: Duration::from_secs(1),
        limit: 30,
    };
    /// No retries at all.
    pub const NONE: Retry = Retry {
        unit: Duration::ZERO,
        limit: 0,
    };

    /// The sleep before retry number `retries` (0-based).
    pub fn backoff(&self, retries: u32) -> Duration {
        let mut b: u32 = 1;
        let mut r = retries;
        while b < self.limit && r > 0 {
            b = b.saturating_mul(2);
            r -= 1;
        }
        self.unit * b.min(self.limit.max(1))
    }

    /// Whether to give up instead of sleeping `off` more.
    pub fn abort(&self, start: Instant, off: Duration) -> bool {
        off + start.elapsed() >= self.unit * self.limit
    }
}

/// Where plugins are looked for, and how long.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub socket_dirs: Vec<PathBuf>,
    pub spec_dirs: Vec<PathBuf>,
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs {
            socket_dirs: vec![PathBuf::from(SOCKET_DIR)],
            spec_dirs: SPEC_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

impl Dirs {
    /// `berthd --plugins-dir DIR…`: every directory is searched for sockets and then for
    /// spec files, in the order given.
    pub fn from_dirs(dirs: &[PathBuf]) -> Dirs {
        Dirs {
            socket_dirs: dirs.to_vec(),
            spec_dirs: dirs.to_vec(),
        }
    }
}

/// A `.json` spec's `TLSConfig` (field names as Docker's `tlsconfig.Options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TlsFiles {
    #[serde(default, rename = "CAFile")]
    pub ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A located plugin: its name, address (`unix:///…`, `tcp://…`, `http(s)://…`) and TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub addr: String,
    /// `None` only for a `.json` spec without `TLSConfig` (Go then verifies against the
    /// system roots); sockets and `.spec` files get `InsecureSkipVerify`.
    pub tls: Option<TlsFiles>,
    /// The file the plugin was found by.
    pub path: PathBuf,
}

fn insecure() -> Option<TlsFiles> {
    Some(TlsFiles {
        insecure_skip_verify: true,
        ..TlsFiles::default()
    })
}

/// Plugin names are file names: no path separators, not empty, not `.`/`..`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn candidates(dir: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{name}{ext}")),
        dir.join(name).join(format!("{name}{ext}")),
    ]
}

/// One lookup, no retries: `Ok(None)` when nothing names the plugin.
pub fn locate(dirs: &Dirs, name: &str) -> Result<Option<Spec>, PluginError> {
    if !valid_name(name) {
        return Ok(None);
    }
    for dir in &dirs.socket_dirs {
        for p in candidates(dir, name, ".sock") {
            if std::fs::metadata(&p).is_ok_and(|m| m.file_type().is_socket()) {
                return Ok(Some(Spec {
                    name: name.to_string(),
                    addr: format!("unix://{}", p.display()),
                    tls: insecure(),
                    path: p,
                }));
            }
        }
    }
    for dir in &dirs.spec_dirs {
        let [spec, spec_sub] = candidates(dir, name, ".spec");
        let [json, json_sub] = candidates(dir, name, ".json");
        for p in [spec, spec_sub, json, json_sub] {
            if std::fs::metadata(&p).is_ok() {
                return read_spec(name, &p).map(Some);
            }
        }
    }
    Ok(None)
}

fn read_bounded(path: &Path) -> Result<String, PluginError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| PluginError::Lookup(e.to_string()))?;
    let mut s = String::new();
    f.take(MAX_SPEC)
        .read_to_string(&mut s)
        .map_err(|e| PluginError::Lookup(e.to_string()))?;
    Ok(s)
}

/// Reads a `.spec` (a URL) or `.json` (`{"Name","Addr","TLSConfig"}`) file.
pub fn read_spec(name: &str, path: &Path) -> Result<Spec, PluginError> {
    let content = read_bounded(path)?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let (addr, tls) = if is_json {
        #[derive(Deserialize)]
        struct JsonSpec {
            #[serde(default, rename = "Addr")]
            addr: String,
            #[serde(default, rename = "TLSConfig")]
            tls: Option<TlsFiles>,
        }
        let j: JsonSpec = serde_json::from_str(&content)
            .map_err(|e| PluginError::Lookup(format!("{}: {e}", path.display())))?;
        let tls = j.tls.map(|mut t| {
            // Docker: an empty CAFile forces InsecureSkipVerify.
            if t.ca_file.is_empty() {
                t.insecure_skip_verify = true;
            }
            t
        });
        (j.addr, tls)
    } else {
        (content.trim().to_string(), insecure())
    };
    if scheme(&addr).is_none() {
        return Err(PluginError::Lookup("Unknown protocol".into()));
    }
    Ok(Spec {
        name: name.to_string(),
        addr,
        tls,
        path: path.to_path_buf(),
    })
}

/// The URL scheme, as Go's `url.Parse` accepts it: a letter, then letters, digits, `+-.`.
pub(crate) fn scheme(addr: &str) -> Option<&str> {
    let (s, _) = addr.split_once("://")?;
    let mut c = s.chars();
    let ok = c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch));
    ok.then_some(s)
}

/// Docker's `loadWithRetry`: looks again on Docker's schedule while nothing names the plugin
/// (or its spec is unreadable), then fails with the last error.
pub async fn lookup(dirs: &Dirs, retry: Retry, name: &str) -> Result<Spec, PluginError> {
    let start = Instant::now();
    let mut retries = 0;
    loop {
        let err = match locate(dirs, name) {
            Ok(Some(spec)) => return Ok(spec),
            Ok(None) => PluginError::NotFound(name.to_string()),
            Err(e) => e,
        };
        let off = retry.backoff(retries);
        if retry.abort(start, off) {
            return Err(err);
        }
        retries += 1;
        tracing::warn!("Unable to locate plugin: {name}, retrying in {off:?}");
        tokio::time::sleep(off).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_backoff() {
        let r = Retry::DOCKER;
        let secs: Vec<u64> = (0..7).map(|i| r.backoff(i).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        // after 1+2+4+8 = 15 s the next sleep (16 s) would end past 30 s
        let start = Instant::now() - Duration::from_secs(15);
        assert!(r.abort(start, r.backoff(4)));
        let start = Instant::now() - Duration::from_secs(7);
        assert!(!r.abort(start, r.backoff(3)));
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("unix:///run/x.sock"), Some("unix"));
        assert_eq!(scheme("tcp://127.0.0.1:80"), Some("tcp"));
        assert_eq!(scheme("/run/x.sock"), None);
        assert_eq!(scheme("1a://x"), None);
    }

    fn sock(path: &Path) -> std::os::unix::net::UnixListener {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::net::UnixListener::bind(path).unwrap()
    }

    #[test]
    fn lookup_order_and_forms() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        let etc = t.path().join("etc");
        let lib = t.path().join("lib");
        for d in [&run, &etc, &lib] {
            std::fs::create_dir_all(d).unwrap();
        }
        let dirs = Dirs {
            socket_dirs: vec![run.clone()],
            spec_dirs: vec![etc.clone(), lib.clone()],
        };
        assert_eq!(locate(&dirs, "a").unwrap(), None);

        // a spec in the second directory, then a json in the first wins over it
        std::fs::write(lib.join("a.spec"), "  tcp://127.0.0.1:9\n").unwrap();
        let s = locate(&dirs, "a").unwrap().unwrap();
        assert_eq!(s.addr, "tcp://127.0.0.1:9");
        assert!(s.tls.unwrap().insecure_skip_verify);
        std::fs::create_dir_all(etc.join("a")).unwrap();
        std::fs::write(
            etc.join("a/a.json"),
            r#"{"Name":"ignored","Addr":"https://127.0.0.1:23750","TLSConfig":{"CAFile":"/ca.pem","CertFile":"/c","KeyFile":"/k"}}"#,
        )
        .unwrap();
        let s = locate(&dirs, "a").unwrap().unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(s.addr, "https://127.0.0.1:23750");
        let tls = s.tls.unwrap();
        assert_eq!(tls.ca_file, "/ca.pem");
        assert!(!tls.insecure_skip_verify);

        // .spec beats .json in the same directory
        std::fs::write(etc.join("a.spec"), "http://127.0.0.1:1").unwrap();
        assert_eq!(
            locate(&dirs, "a").unwrap().unwrap().addr,
            "http://127.0.0.1:1"
        );

        // a socket beats every spec; a plain file named .sock is not a socket
        std::fs::write(run.join("a.sock"), "").unwrap();
        assert_eq!(
            locate(&dirs, "a").unwrap().unwrap().addr,
            "http://127.0.0.1:1"
        );
        let _l = sock(&run.join("a/a.sock"));
        let s = locate(&dirs, "a").unwrap().unwrap();
        assert_eq!(s.addr, format!("unix://{}", run.join("a/a.sock").display()));

        // json without TLSConfig keeps None; with an empty CAFile it is insecure
        std::fs::write(etc.join("b.json"), r#"{"Addr":"https://h:1"}"#).unwrap();
        assert_eq!(locate(&dirs, "b").unwrap().unwrap().tls, None);
        std::fs::write(
            etc.join("c.json"),
            r#"{"Addr":"https://h:1","TLSConfig":{"CertFile":"/c"}}"#,
        )
        .unwrap();
        assert!(
            locate(&dirs, "c")
                .unwrap()
                .unwrap()
                .tls
                .unwrap()
                .insecure_skip_verify
        );

        // no scheme: Docker's "Unknown protocol"
        std::fs::write(etc.join("d.spec"), "/run/d.sock").unwrap();
        assert_eq!(
            locate(&dirs, "d").unwrap_err().to_string(),
            "legacy plugin: Unknown protocol"
        );
        // names are file names
        assert_eq!(locate(&dirs, "../etc/d").unwrap(), None);
    }

    #[tokio::test]
    async fn missing_plugin_fails_after_the_window() {
        let t = tempfile::tempdir().unwrap();
        let dirs = Dirs::from_dirs(&[t.path().to_path_buf()]);
        let retry = Retry {
            unit: Duration::from_millis(10),
            limit: 30,
        };
        let start = Instant::now();
        let e = lookup(&dirs, retry, "nosuch").await.unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.to_string(), "plugin \"nosuch\" not found");
        // 1+2+4+8 units: about 150 ms, not 300
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_millis(290), "{took:?}");
    }

    #[tokio::test]
    async fn a_plugin_that_appears_during_the_window_is_found() {
        let t = tempfile::tempdir().unwrap();
        let dirs = Dirs::from_dirs(&[t.path().to_path_buf()]);
        let retry = Retry {
            unit: Duration::from_millis(20),
            limit: 30,
        };
        let p = t.path().join("late.spec");
        let w = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::fs::write(p, "unix:///x.sock").unwrap();
        });
        let s = lookup(&dirs, retry, "late").await.unwrap();
        assert_eq!(s.addr, "unix:///x.sock");
        w.await.unwrap();
    }
}
