//! A small etcd v3 client over the JSON gateway, one hyper connection pool per client.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, body::Incoming, header};
use hyper_util::{
    client::legacy::{Client as HttpClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinHandle};

use super::json::{self, PutRequest, RangeRequest, WatchCreate, WatchLine};
use crate::{
    error::{BenchError, Result},
    target::{Client, Notification},
};

/// One etcd client bound to one member's client URL.
pub struct EtcdClient {
    http: HttpClient<HttpConnector, Full<Bytes>>,
    base: String,
    watches: Mutex<Vec<JoinHandle<()>>>,
}

impl EtcdClient {
    /// A client for `http://<addr>`; connections open lazily.
    pub fn new(addr: &str) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new()).build(conn);
        Self {
            http,
            base: format!("http://{addr}"),
            watches: Mutex::new(Vec::new()),
        }
    }

    async fn post(
        &self,
        op: &'static str,
        body: &impl Serialize,
    ) -> Result<hyper::Response<Incoming>> {
        let bytes = serde_json::to_vec(body).map_err(|e| etcd_err(op, e))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{op}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| etcd_err(op, e))?;
        let resp = self.http.request(req).await.map_err(|e| etcd_err(op, e))?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let text = resp
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            return Err(etcd_err(
                op,
                format!("{status}: {}", String::from_utf8_lossy(&text)),
            ));
        }
        Ok(resp)
    }

    async fn call(&self, op: &'static str, body: &impl Serialize) -> Result<Bytes> {
        let resp = self.post(op, body).await?;
        Ok(resp
            .into_body()
            .collect()
            .await
            .map_err(|e| etcd_err(op, e))?
            .to_bytes())
    }
}

impl Drop for EtcdClient {
    fn drop(&mut self) {
        for t in self
            .watches
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

fn etcd_err(op: &'static str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Etcd {
        op,
        detail: e.to_string(),
    }
}

const PUT: &str = "/v3/kv/put";
const RANGE: &str = "/v3/kv/range";
const WATCH: &str = "/v3/watch";

#[async_trait]
impl Client for EtcdClient {
    async fn ensure(&self, key: &str, value: &[u8]) -> Result<()> {
        // etcd has no parents and no "create only"; a put leaves the key present either way.
        self.write(key, value).await
    }

    async fn write(&self, key: &str, value: &[u8]) -> Result<()> {
        self.call(PUT, &PutRequest::new(key.as_bytes(), value))
            .await
            .map(drop)
    }

    async fn read_linearizable(&self, key: &str) -> Result<Vec<u8>> {
        let body = self.call(RANGE, &RangeRequest::new(key.as_bytes())).await?;
        let r: json::RangeResponse =
            serde_json::from_slice(&body).map_err(|e| etcd_err(RANGE, e))?;
        match r.kvs.first() {
            Some(kv) => json::unb64(&kv.value).map_err(|e| etcd_err(RANGE, e)),
            None => Ok(Vec::new()),
        }
    }

    async fn watch(&self, key: &str, sink: mpsc::UnboundedSender<Notification>) -> Result<()> {
        let resp = self.post(WATCH, &WatchCreate::new(key.as_bytes())).await?;
        let mut stream = LineStream {
            body: resp.into_body(),
            buf: BytesMut::new(),
        };
        // Return only once etcd confirmed the watch, so the writer cannot outrun it.
        loop {
            let line = stream
                .next_line()
                .await?
                .ok_or(BenchError::Closed("etcd watch"))?;
            if parse_line(&line)?.created {
                break;
            }
        }
        let key = key.to_owned();
        let task = tokio::spawn(async move {
            while let Ok(Some(line)) = stream.next_line().await {
                let at = tokio::time::Instant::now();
                let Ok(result) = parse_line(&line) else {
                    return;
                };
                for _ in result.events.iter().filter(|e| e.kind.is_none()) {
                    if sink
                        .send(Notification {
                            key: key.clone(),
                            at,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        self.watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Result<json::WatchResult> {
    let l: WatchLine = serde_json::from_slice(line).map_err(|e| etcd_err(WATCH, e))?;
    match (l.result, l.error) {
        (Some(r), None) => Ok(r),
        (_, Some(e)) => Err(etcd_err(WATCH, e)),
        (None, None) => Err(etcd_err(WATCH, "empty stream message")),
    }
}

/// Splits a streamed body into newline-delimited messages.
struct LineStream {
    body: Incoming,
    buf: BytesMut,
}

impl LineStream {
    async fn next_line(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1).freeze();
                let line = line.slice(..pos);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(etcd_err(WATCH, e)),
                Some(Ok(frame)) => {
                    // Trailers carry no messages; only data frames matter.
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
