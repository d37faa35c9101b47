//! An in-process fake plugin on a real unix socket: a minimal HTTP/1.1 server that records
//! every request (method, headers, body) and answers what the test's handler says,
//! including garbage, hangs and dropped connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixListener;

#[derive(Debug, Clone)]
pub struct Call {
    /// Without the leading `/`: `NetworkDriver.Join`.
    pub method: String,
    pub verb: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub enum Answer {
    Json(u16, String),
    /// Bytes written as they are, then the connection is closed.
    Raw(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
    /// Closes the connection without answering.
    Close,
}

pub fn ok(body: &str) -> Answer {
    Answer::Json(200, body.to_string())
}

pub type Handler = Arc<dyn Fn(&Call) -> Answer + Send + Sync>;

pub struct Fake {
    pub path: PathBuf,
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A well-behaved plugin implementing both interfaces (moby's test plugin, §5.4).
pub fn standard(c: &Call) -> Answer {
    match c.method.as_str() {
        "Plugin.Activate" => ok(r#"{"Implements":["NetworkDriver","IpamDriver"]}"#),
        "NetworkDriver.GetCapabilities" => ok(r#"{"Scope":"local"}"#),
        "NetworkDriver.CreateEndpoint" => ok(r#"{"Interface":{"MacAddress":"a0:b1:c2:d3:e4:f5"}}"#),
        "NetworkDriver.Join" => ok(
            r#"{"InterfaceName":{"SrcName":"cnt0","DstPrefix":"veth"},"Gateway":"10.9.0.1","StaticRoutes":[{"Destination":"169.254.1.1/32","RouteType":1},{"Destination":"10.8.0.0/16","RouteType":0,"NextHop":"10.9.0.254"}]}"#,
        ),
        "NetworkDriver.EndpointOperInfo" => ok(r#"{"Value":{"a":"b"}}"#),
        "IpamDriver.GetCapabilities" => ok(r#"{"RequiresMACAddress":true}"#),
        "IpamDriver.GetDefaultAddressSpaces" => {
            ok(r#"{"LocalDefaultAddressSpace":"localAS","GlobalDefaultAddressSpace":"globalAS"}"#)
        }
        "IpamDriver.RequestPool" => {
            ok(r#"{"PoolID":"localAS/172.28.0.0/16","Pool":"172.28.0.0/16","Data":{}}"#)
        }
        "IpamDriver.RequestAddress" => ok(r#"{"Address":"172.28.255.254/16"}"#),
        _ => ok("null"),
    }
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Call> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 16 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let verb = first.next()?.to_string();
    let method = first.next()?.trim_start_matches('/').to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Call {
        method,
        verb,
        headers,
        body,
    })
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    h: Handler,
    log: Arc<Mutex<Vec<Call>>>,
) {
    let Some(call) = read_request(&mut s).await else {
        return;
    };
    let answer = h(&call);
    log.lock().unwrap().push(call);
    match answer {
        Answer::Json(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.docker.plugins.v1.1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        }
        Answer::Raw(b) => {
            let _ = s.write_all(&b).await;
        }
        Answer::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Answer::Close => {}
    }
    let _ = s.shutdown().await;
}

impl Fake {
    /// The same plugin on 127.0.0.1; its port.
    pub async fn start_tcp(h: impl Fn(&Call) -> Answer + Send + Sync + 'static) -> (Fake, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let log = calls.clone();
        let h: Handler = Arc::new(h);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, h.clone(), log.clone()));
            }
        });
        let path = PathBuf::new();
        (Fake { path, calls, task }, port)
    }

    pub fn start(path: &Path, h: impl Fn(&Call) -> Answer + Send + Sync + 'static) -> Fake {
        Fake::start_shared(path, Arc::new(h), Arc::default())
    }

    /// Starts on `path` with a shared call log (a restarted plugin keeps one log).
    pub fn start_shared(path: &Path, h: Handler, calls: Arc<Mutex<Vec<Call>>>) -> Fake {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).unwrap();
        let log = calls.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, h.clone(), log.clone()));
            }
        });
        Fake {
            path: path.to_path_buf(),
            calls,
            task,
        }
    }

    pub fn log(&self) -> Arc<Mutex<Vec<Call>>> {
        self.calls.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn methods(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.method).collect()
    }

    pub fn last(&self, method: &str) -> Call {
        self.calls()
            .into_iter()
            .rev()
            .find(|c| c.method == method)
            .unwrap_or_else(|| panic!("no {method} call"))
    }

    /// Stops listening and removes the socket (the plugin went away).
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
