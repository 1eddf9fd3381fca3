//! [`Stream`]: a long-lived response (the watch stream) on a connection of its own, driven by
//! the task that reads it.
//!
//! Through the pooled client, every line of a watch stream costs two task wake-ups: hyper's
//! connection task reads the socket and hands the bytes over a channel to the task reading
//! the body. A stream never shares its connection anyway (its response does not end), so
//! here the reader polls the connection itself: bytes read from the socket are in the body
//! before the same poll returns. With a thousand watchers on one client that halves the
//! wake-ups per event.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Frame, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ClientError;

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A response whose body is read through [`Stream::frame`].
pub(crate) struct Stream {
    /// Kept so the connection is not closed for lack of a requester while the body is read.
    _sender: http1::SendRequest<Full<Bytes>>,
    conn: Connection,
    /// The connection future completed (closed or failed); only the body is polled since.
    conn_done: bool,
    body: Incoming,
}

/// Opens a connection to `server` and sends `GET path_and_query` on it; the response status
/// and, for a 2xx, the stream of its body. The whole exchange is bounded by `timeout`.
pub(crate) async fn open(
    server: &str,
    path_and_query: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Result<Stream, (axum::http::StatusCode, Bytes)>, ClientError> {
    let opened = tokio::time::timeout(timeout, async {
        let tcp = TcpStream::connect(server)
            .await
            .map_err(|e| ClientError::Transport(format!("{server}: {e}")))?;
        // Each line is one small write from the server; the client only acknowledges.
        tcp.set_nodelay(true)
            .map_err(|e| ClientError::Transport(format!("{server}: {e}")))?;
        let (mut sender, mut conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| ClientError::Transport(format!("{server}: {e}")))?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .header(header::HOST, server);
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| ClientError::Invalid(format!("token: {e}")))?;
            req = req.header(header::AUTHORIZATION, value);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let mut conn_done = false;
        let response = {
            let sending = sender.send_request(req);
            tokio::pin!(sending);
            // The connection has to be driven for the request to go out and the head to come in.
            poll_fn(|cx| {
                if let Poll::Ready(r) = sending.as_mut().poll(cx) {
                    return Poll::Ready(r.map_err(|e| ClientError::Transport(e.to_string())));
                }
                if !conn_done && let Poll::Ready(r) = Pin::new(&mut conn).poll(cx) {
                    conn_done = true;
                    if let Err(e) = r {
                        return Poll::Ready(Err(ClientError::Transport(e.to_string())));
                    }
                    // Closed cleanly: the pending request then fails on its own.
                    return sending
                        .as_mut()
                        .poll(cx)
                        .map_err(|e| ClientError::Transport(e.to_string()));
                }
                Poll::Pending
            })
            .await?
        };
        let status = response.status();
        let mut stream = Stream {
            _sender: sender,
            conn,
            conn_done,
            body: response.into_body(),
        };
        if !status.is_success() {
            let bytes = stream.collect().await?;
            return Ok(Err((status, bytes)));
        }
        Ok(Ok(stream))
    })
    .await;
    match opened {
        Ok(r) => r,
        Err(_) => Err(ClientError::Transport(format!("{server}: timed out"))),
    }
}

impl Stream {
    /// The next frame of the body, `None` at its end. Reads the socket in this task.
    pub(crate) async fn frame(&mut self) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        poll_fn(|cx| {
            loop {
                if let Poll::Ready(f) = Pin::new(&mut self.body).poll_frame(cx) {
                    return Poll::Ready(f);
                }
                if self.conn_done {
                    return Poll::Pending;
                }
                match Pin::new(&mut self.conn).poll(cx) {
                    // Whatever it read is in the body now: look again before sleeping.
                    Poll::Pending => {
                        return Pin::new(&mut self.body).poll_frame(cx);
                    }
                    // Closed or failed: the body reports its end or the error next.
                    Poll::Ready(_) => self.conn_done = true,
                }
            }
        })
        .await
    }

    async fn collect(&mut self) -> Result<Bytes, ClientError> {
        let mut out = Vec::new();
        while let Some(frame) = self.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    }
}
