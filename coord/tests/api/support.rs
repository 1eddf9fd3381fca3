//! A server on loopback and a raw HTTP/1.1 helper for tests that need exact bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use vigil_coord::api::{ApiConfig, LocalBackend, router, short_sessions};
use vigil_coord::client::{Client, ClientConfig};

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) backend: LocalBackend,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn config() -> ApiConfig {
    ApiConfig {
        sessions: short_sessions(),
        watch_heartbeat: Duration::from_millis(200),
        ..ApiConfig::default()
    }
}

pub(crate) async fn start() -> Server {
    start_with(config()).await
}

pub(crate) async fn start_with(config: ApiConfig) -> Server {
    let backend = LocalBackend::start(Duration::from_millis(20));
    let app = router(Arc::new(backend.clone()), config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        addr,
        backend,
        task,
    }
}

pub(crate) fn client(server: &Server) -> Client {
    Client::new(client_config(&[server.addr.to_string()])).expect("client")
}

pub(crate) fn client_config(servers: &[String]) -> ClientConfig {
    let mut c = ClientConfig::new(servers.iter().cloned());
    c.request_timeout = Duration::from_secs(2);
    c.watch_idle_timeout = Duration::from_secs(2);
    c.retry_backoff = Duration::from_millis(20);
    c
}

/// One request on a fresh connection; the status and the body as JSON (`Null` if empty).
pub(crate) async fn raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req = format!("{req}{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    // The server may answer (413) before reading the whole body and close; ignore that.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
    };
    (status, json)
}

/// Opens a session over raw HTTP; its id.
pub(crate) async fn raw_session(addr: SocketAddr) -> u64 {
    let (status, body) = raw(
        addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"timeout_ms":30000}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["session"].as_u64().expect("session id")
}

/// Write headers for `session` and `request_id`.
pub(crate) fn w(session: &str, request_id: &str) -> [(&'static str, String); 2] {
    [
        ("x-vigil-session", session.to_owned()),
        ("x-vigil-request-id", request_id.to_owned()),
    ]
}

/// `raw` with owned write headers.
pub(crate) async fn raw_write(
    addr: SocketAddr,
    method: &str,
    target: &str,
    session: u64,
    request_id: u64,
    body: &str,
) -> (u16, Value) {
    let h = w(&session.to_string(), &request_id.to_string());
    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw(addr, method, target, &headers, body.as_bytes()).await
}
