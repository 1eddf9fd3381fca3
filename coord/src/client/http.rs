//! The HTTP transport: one hyper connection pool, the server list and the retry rule.
//!
//! A request goes to the current server; on a connection error, a timeout or a 503 (not the
//! leader, no quorum) it moves to the next server and sends the *same* request again — same
//! headers, so a write keeps its request id and is applied at most once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ClientError;
use super::stream::{self, Stream};
use crate::api::ErrorBody;

/// The rule both plain requests and watch streams follow across the servers: start at the
/// current one, move on after a failure (unless another task already did), back off after each
/// full round, give up after `attempts`, naming the last failure.
struct Failover<'t> {
    transport: &'t Transport,
    attempt: usize,
    last: String,
}

impl<'t> Failover<'t> {
    fn new(transport: &'t Transport) -> Self {
        Failover {
            transport,
            attempt: 0,
            last: String::from("no attempt made"),
        }
    }

    /// The next server to try (its index and address), or `None` once attempts ran out.
    async fn next_server(&mut self) -> Option<(usize, &'t str)> {
        let t = self.transport;
        let n = t.config.servers.len();
        if self.attempt >= t.config.attempts.max(1) {
            return None;
        }
        if self.attempt > 0 && self.attempt.is_multiple_of(n) {
            tokio::time::sleep(t.config.retry_backoff).await;
        }
        self.attempt += 1;
        let index = t.current.load(Ordering::Relaxed) % n;
        Some((index, t.config.servers[index].as_str()))
    }

    /// Server `index` could not serve, for `why`.
    fn failed(&mut self, index: usize, why: String) {
        self.last = why;
        let n = self.transport.config.servers.len();
        // Move on, unless another task already did.
        let _ = self.transport.current.compare_exchange(
            index,
            (index + 1) % n,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn into_error(self) -> ClientError {
        ClientError::Transport(self.last)
    }
}

/// How to reach the servers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of every server; tried in order, starting with the last one that worked.
    pub servers: Vec<String>,
    /// Bearer token, if the servers require one.
    pub token: Option<String>,
    /// Time limit for one attempt (until the response headers).
    pub request_timeout: Duration,
    /// Attempts per call across all servers (at least one per server is sensible).
    pub attempts: usize,
    /// Pause between two passes over the whole server list.
    pub retry_backoff: Duration,
    /// A watch stream silent for this long is considered dead and resumed elsewhere; keep it
    /// above the servers' heartbeat interval.
    pub watch_idle_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `servers`.
    pub fn new(servers: impl IntoIterator<Item = impl Into<String>>) -> ClientConfig {
        ClientConfig {
            servers: servers.into_iter().map(Into::into).collect(),
            token: None,
            request_timeout: Duration::from_secs(10),
            attempts: 6,
            retry_backoff: Duration::from_millis(200),
            watch_idle_timeout: Duration::from_secs(15),
        }
    }
}

pub(crate) struct Transport {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    pub(crate) config: ClientConfig,
    current: AtomicUsize,
}

/// A znode path as the tail of a resource URL (`/v1/nodes{tail}`): the root is the bare
/// resource (`/v1/nodes`), since `/v1/nodes/` names no route.
pub(crate) fn path_tail(path: &str) -> String {
    if path == "/" {
        String::new()
    } else {
        encode_path(path)
    }
}

/// Percent-encodes a znode path (or query value) for a URL, keeping `/`.
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

impl Transport {
    pub(crate) fn new(config: ClientConfig) -> Result<Arc<Transport>, ClientError> {
        if config.servers.is_empty() {
            return Err(ClientError::Invalid("no server address".into()));
        }
        // TCP_NODELAY: a request must not wait for the server's delayed ACK of the previous
        // one on a kept-alive connection (Nagle's algorithm).
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Arc::new(Transport {
            http,
            config,
            current: AtomicUsize::new(0),
        }))
    }

    fn request(
        &self,
        server: &str,
        method: &Method,
        path_and_query: &str,
        headers: &[(&'static str, String)],
        body: &Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("http://{server}{path_and_query}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.config.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|e| ClientError::Invalid(format!("header {name}: {e}")))?;
            req = req.header(*name, value);
        }
        req.body(Full::new(body.clone()))
            .map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// Sends with failover, with `attempt_timeout` per attempt (heartbeats must fail over well
    /// within a session timeout, whatever the configured request timeout); returns the first
    /// response that is not 503/504, its body unread.
    pub(crate) async fn send_within(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
        attempt_timeout: Duration,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let mut failover = Failover::new(self);
        while let Some((index, server)) = failover.next_server().await {
            let req = self.request(server, &method, path_and_query, headers, &body)?;
            match tokio::time::timeout(attempt_timeout, self.http.request(req)).await {
                // 503: this server cannot serve (not leader, no quorum); 504: the outcome is
                // unknown. Both are safe to resend: writes carry their request id.
                Ok(Ok(resp))
                    if resp.status() != StatusCode::SERVICE_UNAVAILABLE
                        && resp.status() != StatusCode::GATEWAY_TIMEOUT =>
                {
                    return Ok(resp);
                }
                Ok(Ok(resp)) => {
                    failover.failed(index, format!("{server}: {}", read_error(resp).await));
                }
                Ok(Err(e)) => failover.failed(index, format!("{server}: {e}")),
                Err(_) => failover.failed(index, format!("{server}: timed out")),
            }
        }
        Err(failover.into_error())
    }

    /// Opens a streaming `GET` (a watch) on a connection of its own (see [`super::stream`]),
    /// failing over like [`Transport::send_within`]; a non-2xx answer other than 503/504 is returned
    /// as its error.
    pub(crate) async fn open_stream(&self, path_and_query: &str) -> Result<Stream, ClientError> {
        let mut failover = Failover::new(self);
        while let Some((index, server)) = failover.next_server().await {
            match stream::open(
                server,
                path_and_query,
                self.config.token.as_deref(),
                self.config.request_timeout,
            )
            .await
            {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err((status, bytes)))
                    if status != StatusCode::SERVICE_UNAVAILABLE
                        && status != StatusCode::GATEWAY_TIMEOUT =>
                {
                    return Err(api_error(status, &bytes));
                }
                Ok(Err((status, bytes))) => {
                    failover.failed(index, format!("{server}: {}", api_error(status, &bytes)));
                }
                Err(e) => failover.failed(index, e.to_string()),
            }
        }
        Err(failover.into_error())
    }

    /// A JSON call: 2xx bodies decode as `T` (an empty body as JSON `null`), others as errors.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&'static str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        self.call_within(
            method,
            path_and_query,
            headers,
            body,
            self.config.request_timeout,
        )
        .await
    }

    /// [`Transport::call`] with `attempt_timeout` per attempt.
    pub(crate) async fn call_within<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&'static str, String)],
        body: Option<&impl Serialize>,
        attempt_timeout: Duration,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(b) => {
                Bytes::from(serde_json::to_vec(b).map_err(|e| ClientError::Invalid(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let resp = self
            .send_within(method, path_and_query, headers, body, attempt_timeout)
            .await?;
        let status = resp.status();
        let bytes = collect(resp).await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Protocol(format!("bad response body: {e}")))
    }
}

async fn collect(resp: hyper::Response<Incoming>) -> Result<Bytes, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| ClientError::Transport(e.to_string()))
}

async fn read_error(resp: hyper::Response<Incoming>) -> String {
    let status = resp.status();
    match collect(resp).await {
        Ok(bytes) => api_error(status, &bytes).to_string(),
        Err(e) => e.to_string(),
    }
}

/// The error a non-2xx response stands for.
pub(crate) fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            body: Box::new(body),
        },
        Err(_) => ClientError::Protocol(format!(
            "HTTP {status} without an error body: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_path, path_tail};

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode_path("/a/b-c_d.e~"), "/a/b-c_d.e~");
        assert_eq!(encode_path("/a b/?#%&"), "/a%20b/%3F%23%25%26");
        assert_eq!(encode_path("/é"), "/%C3%A9");
        assert_eq!(path_tail("/"), "");
        assert_eq!(path_tail("/a"), "/a");
    }
}
