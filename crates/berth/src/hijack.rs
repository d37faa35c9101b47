//! Attach and exec streams: an HTTP request that the daemon answers with `101 UPGRADED` and
//! then turns into a raw two-way byte stream on the same connection (engine-api.md §3.3).
//!
//! Output is raw bytes with a TTY and stdcopy frames without one. Input, when attached, is
//! copied until stdin ends; then only the write side is shut, and output keeps flowing until
//! the daemon closes: closing both ways early truncates the container's output.

pub mod keys;
pub mod stdcopy;
pub mod term;

use crate::client::{Client, DaemonError};
use anyhow::{anyhow, bail, Context};
use hyper::StatusCode;
use serde_json::Value;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// What `stream` ended with, besides errors.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The daemon closed the stream: the process ended or the container detached us.
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// Docker's message for a detach (`term.EscapeError`), printed by `attach` and `exec`.
pub const DETACHED: &str = "read escape sequence";

/// An upgraded connection, plus any stream bytes that arrived with the response head.
pub struct Conn {
    stream: UnixStream,
    early: Vec<u8>,
}

/// How to wire the local terminal to the stream.
pub struct Wiring {
    /// The container side has a TTY: raw output, no framing.
    pub tty: bool,
    /// Copy our stdin to the stream.
    pub stdin: bool,
    /// Keys that detach; used only with a TTY and stdin, as docker does.
    pub detach_keys: Vec<u8>,
}

/// Opens `POST /v1.41{path}` asking for the connection upgrade. Returns once the daemon
/// has answered 101 (or 200, its answer without `Upgrade`); other answers become the
/// `DaemonError` they carry.
pub async fn open(c: &Client, path: &str, body: Option<&Value>) -> anyhow::Result<Conn> {
    let mut stream = UnixStream::connect(c.socket()).await.with_context(|| {
        format!(
            "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
            c.display()
        )
    })?;
    let body = match body {
        Some(v) => serde_json::to_vec(v)?,
        None => Vec::new(),
    };
    stream.write_all(&request(path, &body)).await?;
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the daemon closed the connection before answering");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(h) = parse_head(&buf)? {
            break h;
        }
        if buf.len() > 64 * 1024 {
            bail!("response head too large");
        }
    };
    let rest = buf.split_off(head.len);
    if head.status == 101 || head.status == 200 {
        return Ok(Conn {
            stream,
            early: rest,
        });
    }
    let body = read_body(&mut stream, &head, rest).await?;
    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Err(DaemonError::from_reply(status, &body).into())
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /v{}{path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli/{}\r\n",
        berth_api::API_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!(
        "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[derive(Debug, PartialEq)]
struct Head {
    status: u16,
    /// header names lower-cased
    headers: Vec<(String, String)>,
    /// bytes up to and including the blank line
    len: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `Ok(None)` while the head is incomplete.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| anyhow!("malformed response from the daemon: {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Some(Head {
        status,
        headers,
        len: end + 4,
    }))
}

/// The body of an error answer: by Content-Length, chunked, or up to EOF.
async fn read_body(s: &mut UnixStream, head: &Head, mut got: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    if let Some(n) = head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        while got.len() < n {
            let mut chunk = vec![0u8; n - got.len()];
            let r = s.read(&mut chunk).await?;
            if r == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..r]);
        }
        got.truncate(n);
        return Ok(got);
    }
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    loop {
        if chunked {
            if let Some(body) = dechunk(&got) {
                return Ok(body);
            }
        }
        let mut chunk = [0u8; 4096];
        let r = s.read(&mut chunk).await?;
        if r == 0 {
            return Ok(if chunked { dechunk_partial(&got) } else { got });
        }
        got.extend_from_slice(&chunk[..r]);
    }
}

/// The payload of a complete chunked body, `None` until the last chunk is in.
fn dechunk(buf: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&buf[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            return Some(out);
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        out.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// Whatever whole chunks arrived before the daemon hung up.
fn dechunk_partial(buf: &[u8]) -> Vec<u8> {
    let mut end = buf.len();
    while end > 0 {
        let mut candidate = buf[..end].to_vec();
        candidate.extend_from_slice(b"0\r\n\r\n");
        if let Some(b) = dechunk(&candidate) {
            return b;
        }
        end -= 1;
    }
    Vec::new()
}

/// Copies between the connection and our stdio until the stream ends or the user detaches.
pub async fn stream(conn: Conn, w: Wiring) -> anyhow::Result<End> {
    let raw = if w.tty && w.stdin && term::isatty(0) {
        Some(term::RawGuard::enable(0).context("unable to set IO streams as raw terminal")?)
    } else {
        None
    };
    let input = w.stdin.then(stdin_reader);
    let watch = (w.tty && w.stdin).then(|| keys::Escape::new(w.detach_keys));
    let result = pump(conn, input, watch, Output::new(w.tty, Stdio)).await;
    drop(raw);
    result
}

/// The two directions of a session. Output ends the session when the daemon closes; the end
/// of input only half-closes the connection (and a detach ends everything at once).
async fn pump<S: Sink>(
    conn: Conn,
    input: Option<mpsc::Receiver<Vec<u8>>>,
    watch: Option<keys::Escape>,
    mut out: Output<S>,
) -> anyhow::Result<End> {
    let Conn { stream, early } = conn;
    let (mut rd, mut wr) = stream.into_split();
    let output = async move {
        out.write(&early)?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            out.write(&buf[..n])?;
        }
    };
    let input = async move {
        if let Some(rx) = input {
            if let Some(end) = copy_input(&mut wr, rx, watch).await {
                return end;
            }
        }
        // tells the daemon our input is over; its output keeps coming
        let _ = wr.shutdown().await;
        End::Closed
    };
    tokio::pin!(output, input);
    tokio::select! {
        // output first: what already arrived is shown even when the user detaches
        biased;
        r = &mut output => r.map(|()| End::Closed),
        i = &mut input => match i {
            End::Detached => Ok(End::Detached),
            End::Closed => (&mut output).await.map(|()| End::Closed),
        },
    }
}

/// Input to the connection. `Some(Detached)` when the detach keys were typed; `None` at the
/// end of input (or when the daemon stopped reading).
async fn copy_input(
    wr: &mut tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut watch: Option<keys::Escape>,
) -> Option<End> {
    while let Some(chunk) = rx.recv().await {
        let (data, detached) = match watch.as_mut() {
            Some(e) => e.feed(&chunk),
            None => (chunk, false),
        };
        if !data.is_empty() && wr.write_all(&data).await.is_err() {
            return None;
        }
        if detached {
            return Some(End::Detached);
        }
    }
    if let Some(held) = watch.as_mut().map(keys::Escape::finish) {
        let _ = wr.write_all(&held).await;
    }
    None
}

/// Reads stdin on its own thread: a blocking read cannot be cancelled, and the thread
/// simply dies with the process when the stream ends first.
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: reads into a buffer we own; fd 0 stays open for the process's life.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 || tx.blocking_send(buf[..n as usize].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Where demultiplexed output goes.
pub trait Sink {
    fn write(&mut self, to: stdcopy::Stream, data: &[u8]) -> anyhow::Result<()>;
}

/// Our stdout and stderr, flushed at every write so interactive output shows up as it comes.
pub struct Stdio;

impl Sink for Stdio {
    fn write(&mut self, to: stdcopy::Stream, data: &[u8]) -> anyhow::Result<()> {
        match to {
            stdcopy::Stream::Stdout => write_flush(&mut std::io::stdout().lock(), data),
            stdcopy::Stream::Stderr => write_flush(&mut std::io::stderr().lock(), data),
        }
    }
}

fn write_flush(w: &mut impl Write, data: &[u8]) -> anyhow::Result<()> {
    w.write_all(data)?;
    w.flush()?;
    Ok(())
}

/// Stream bytes to a sink: verbatim to stdout with a TTY, demultiplexed without.
pub struct Output<S> {
    demux: Option<stdcopy::Demux>,
    sink: S,
}

impl<S: Sink> Output<S> {
    pub fn new(tty: bool, sink: S) -> Output<S> {
        Output {
            demux: (!tty).then(stdcopy::Demux::new),
            sink,
        }
    }

    pub fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(d) = self.demux.as_mut() else {
            return self.sink.write(stdcopy::Stream::Stdout, data);
        };
        let (frames, err) = d.push(data);
        for (to, payload) in frames {
            self.sink.write(to, &payload)?;
        }
        err.map_or(Ok(()), |e| Err(anyhow!(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let r = String::from_utf8(request(
            "/exec/abc/start",
            br#"{"Detach":false,"Tty":false}"#,
        ))
        .unwrap();
        assert!(r.starts_with("POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: berth\r\n"));
        assert!(r.contains("\r\nContent-Type: application/json\r\n"));
        assert!(
            r.contains("\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 28\r\n\r\n{")
        );
        let r = String::from_utf8(request("/containers/x/attach?stream=1", b"")).unwrap();
        assert!(!r.contains("Content-Type"));
        assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn head_parsing() {
        let raw = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\0\0\0\0\0\0\x02hi";
        assert_eq!(parse_head(&raw[..30]).unwrap(), None);
        let h = parse_head(raw).unwrap().unwrap();
        assert_eq!(h.status, 101);
        assert_eq!(h.header("upgrade"), Some("tcp"));
        assert_eq!(&raw[h.len..], b"\x01\0\0\0\0\0\0\x02hi");
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.header("content-length")), (404, Some("5")));
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies() {
        let body = b"1a\r\n{\"message\":\"No such exec i\r\nf\r\nnstance: abc\"}\n\r\n0\r\n\r\n";
        assert_eq!(
            dechunk(body).unwrap(),
            b"{\"message\":\"No such exec instance: abc\"}\n".to_vec()
        );
        assert_eq!(dechunk(&body[..20]), None);
        assert_eq!(
            dechunk_partial(&body[..40]),
            b"{\"message\":\"No such exec i".to_vec()
        );
    }

    type Got = std::sync::Arc<std::sync::Mutex<Vec<(stdcopy::Stream, Vec<u8>)>>>;

    struct Collect(Got);

    impl Sink for Collect {
        fn write(&mut self, to: stdcopy::Stream, data: &[u8]) -> anyhow::Result<()> {
            self.0.lock().unwrap().push((to, data.to_vec()));
            Ok(())
        }
    }

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn input(chunks: &[&[u8]]) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for c in chunks {
            tx.try_send(c.to_vec()).unwrap();
        }
        rx
    }

    /// The daemon side of exec: echoes all input back as stdout, but only once the client has
    /// half-closed, then says goodbye on stderr and closes.
    async fn echo_after_eof(mut s: UnixStream) {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        s.write_all(&frame(1, &got)).await.unwrap();
        s.write_all(&frame(2, b"bye\n")).await.unwrap();
    }

    #[tokio::test]
    async fn output_keeps_flowing_after_input_ends() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = tokio::spawn(echo_after_eof(theirs));
        let got = Got::default();
        let conn = Conn {
            stream: ours,
            early: frame(1, b"early\n"),
        };
        let rx = input(&[b"hello ", b"world\n"]);
        let end = pump(
            conn,
            Some(rx),
            None,
            Output::new(false, Collect(got.clone())),
        )
        .await
        .unwrap();
        server.await.unwrap();
        assert_eq!(end, End::Closed);
        use stdcopy::Stream::*;
        assert_eq!(
            *got.lock().unwrap(),
            vec![
                (Stdout, b"early\n".to_vec()),
                (Stdout, b"hello world\n".to_vec()),
                (Stderr, b"bye\n".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn without_stdin_the_write_side_closes_at_once() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = tokio::spawn(echo_after_eof(theirs));
        let got = Got::default();
        let conn = Conn {
            stream: ours,
            early: vec![],
        };
        let end = pump(conn, None, None, Output::new(false, Collect(got.clone())))
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(end, End::Closed);
        assert_eq!(got.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn detach_keys_end_the_session_and_are_not_sent() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let got = Got::default();
        let conn = Conn {
            stream: ours,
            early: b"$ ".to_vec(),
        };
        let (tx, rx) = mpsc::channel(4);
        tx.send(b"ls\x10".to_vec()).await.unwrap();
        tx.send(b"\x11ignored".to_vec()).await.unwrap();
        let watch = keys::Escape::new(keys::DEFAULT_DETACH_KEYS.to_vec());
        let end = pump(
            conn,
            Some(rx),
            Some(watch),
            Output::new(true, Collect(got.clone())),
        )
        .await
        .unwrap();
        assert_eq!(end, End::Detached);
        let mut sent = Vec::new();
        theirs.read_to_end(&mut sent).await.unwrap();
        assert_eq!(sent, b"ls");
        // TTY output is raw: no framing
        assert_eq!(
            *got.lock().unwrap(),
            vec![(stdcopy::Stream::Stdout, b"$ ".to_vec())]
        );
        drop(tx);
    }

    #[tokio::test]
    async fn stream_error_in_band_is_reported() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        tokio::spawn(async move {
            theirs.write_all(&frame(3, b"exec failed")).await.unwrap();
        });
        let conn = Conn {
            stream: ours,
            early: vec![],
        };
        let err = pump(
            conn,
            None,
            None,
            Output::new(false, Collect(Got::default())),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "error from daemon in stream: exec failed");
    }

    #[tokio::test]
    async fn error_answer_becomes_daemon_error() {
        let dir = std::env::temp_dir().join(format!("berth-hijack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let _ = std::fs::remove_file(&sock);
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = "{\"message\":\"No such container: nope\"}\n";
            let resp = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            req
        });
        let c = Client::new(&format!("unix://{}", sock.display())).unwrap();
        let err = open(&c, "/containers/nope/attach?stream=1", None)
            .await
            .err()
            .unwrap();
        let d = err.downcast_ref::<DaemonError>().unwrap();
        assert_eq!(d.status, StatusCode::NOT_FOUND);
        assert_eq!(
            d.to_string(),
            "Error response from daemon: No such container: nope"
        );
        let req = server.await.unwrap();
        assert!(req.starts_with("POST /v1.41/containers/nope/attach?stream=1 HTTP/1.1\r\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
