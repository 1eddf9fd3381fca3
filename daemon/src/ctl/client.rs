//! A minimal HTTP/1.1 client for the control API: one connection per command, built on hyper's
//! connection-level API (already in the tree through axum), no pool, no TLS — the API is local.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, InvalidHeaderValue, USER_AGENT,
};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

use crate::api::auth::ApiToken;
use crate::api::types::{ErrorBody, StatusResponse};
use crate::exit;
use crate::lb::LbStatus;
use crate::reload::ReloadReport;

/// Answers larger than this are not from vigild (or something is badly wrong).
const MAX_RESPONSE_LEN: usize = 4 * 1024 * 1024;

/// Talks to one vigild.
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepts connections at the address.
    #[error(
        "cannot reach vigild at {addr}: {source} (is vigild running? set the address with --api or VIGIL_API)"
    )]
    Unreachable {
        /// Where we tried.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Connected, but no complete answer in time.
    #[error("vigild at {addr} did not answer within {} s", timeout.as_secs_f32())]
    Timeout {
        /// Where we tried.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The token is missing or wrong.
    #[error(
        "vigild at {addr} refused the request: {message} (give the token file with --token-file or VIGIL_TOKEN_FILE)"
    )]
    Unauthorized {
        /// The daemon.
        addr: SocketAddr,
        /// The daemon's explanation.
        message: String,
    },
    /// Any other error status.
    #[error("vigild at {addr} answered {status}: {message}")]
    Status {
        /// The daemon.
        addr: SocketAddr,
        /// The HTTP status.
        status: StatusCode,
        /// The daemon's explanation.
        message: String,
    },
    /// The answer is not the vigil API: broken connection, bad HTTP, unexpected JSON.
    #[error("unexpected answer from {addr}: {detail}")]
    Protocol {
        /// The peer.
        addr: SocketAddr,
        /// What went wrong.
        detail: String,
    },
}

impl ClientError {
    /// The sysexits code `vigilctl` exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => exit::UNAVAILABLE,
            Self::Unauthorized { .. } => exit::NOPERM,
            Self::Status { status, .. } if status.is_server_error() => exit::UNAVAILABLE,
            Self::Status { .. } | Self::Protocol { .. } => exit::PROTOCOL,
        }
    }
}

impl Client {
    /// A client for the API at `addr`; fails when the token cannot be sent as a header value.
    pub fn new(
        addr: SocketAddr,
        token: Option<&ApiToken>,
        timeout: Duration,
    ) -> Result<Self, InvalidHeaderValue> {
        let authorization = token
            .map(|token| {
                let mut value = HeaderValue::from_bytes(&[b"Bearer ", token.as_bytes()].concat())?;
                // Keeps the token out of any debug output of the request.
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(Self {
            addr,
            authorization,
            timeout,
        })
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        let (status, body) = self.request(Method::GET, "/v1/status").await?;
        match status {
            StatusCode::OK => self.decode(&body),
            _ => Err(self.error(status, &body)),
        }
    }

    /// `GET /v1/lvs`: virtual servers, real servers and their checks.
    pub async fn lvs(&self) -> Result<LbStatus, ClientError> {
        let (status, body) = self.request(Method::GET, "/v1/lvs").await?;
        match status {
            StatusCode::OK => self.decode(&body),
            _ => Err(self.error(status, &body)),
        }
    }

    /// `GET /metrics`: the Prometheus exposition text, as the daemon sent it.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let (status, body) = self.request(Method::GET, "/metrics").await?;
        match status {
            StatusCode::OK => String::from_utf8(body.to_vec()).map_err(|e| self.protocol(&e)),
            _ => Err(self.error(status, &body)),
        }
    }

    /// `POST /v1/reload`: the report of an applied (200) or rejected (422) reload.
    pub async fn reload(&self) -> Result<ReloadReport, ClientError> {
        let (status, body) = self.request(Method::POST, "/v1/reload").await?;
        match status {
            StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY => self.decode(&body),
            _ => Err(self.error(status, &body)),
        }
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(method, path, None).await
    }

    /// One request with an optional JSON `body`; the status and body of the answer, whatever
    /// the status (for endpoints whose error bodies carry more than a message).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: self.addr,
                timeout: self.timeout,
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream =
            TcpStream::connect(self.addr)
                .await
                .map_err(|source| ClientError::Unreachable {
                    addr: self.addr,
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.protocol(&e))?;
        // Drives the socket; ends by itself once `sender` is dropped and the exchange is done.
        let driver = tokio::spawn(connection);

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(USER_AGENT, concat!("vigilctl/", env!("CARGO_PKG_VERSION")));
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.protocol(&e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.protocol(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|e| self.protocol(&*e))?
            .to_bytes();
        drop(sender);
        driver.abort();
        Ok((status, body))
    }

    /// Decodes a JSON answer.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| self.protocol(&e))
    }

    /// The error for a non-success answer.
    pub fn error(&self, status: StatusCode, body: &[u8]) -> ClientError {
        let message = serde_json::from_slice::<ErrorBody>(body).map_or_else(
            |_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            |e| e.message,
        );
        if status == StatusCode::UNAUTHORIZED {
            ClientError::Unauthorized {
                addr: self.addr,
                message,
            }
        } else {
            ClientError::Status {
                addr: self.addr,
                status,
                message,
            }
        }
    }

    fn protocol(&self, error: &dyn std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            addr: self.addr,
            detail: error.to_string(),
        }
    }
}
