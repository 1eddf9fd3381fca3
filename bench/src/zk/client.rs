//! A minimal pipelining ZooKeeper client over one TCP connection.
//!
//! ZooKeeper answers the requests of one session in the order they were sent, so the
//! pending calls are a FIFO queue rather than an xid map; the xid is still checked to catch
//! a desynchronised stream. The writer lock covers both "push pending" and "write frame" so
//! the queue order always equals the wire order.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::jute::{self, Request, err, xid};
use crate::{
    error::{BenchError, Result},
    target::{Client, Notification},
};

/// Session timeout we ask for; pings go out at a third of it.
const SESSION_TIMEOUT_MS: i32 = 30_000;

type Reply = std::result::Result<(jute::ReplyHeader, Vec<u8>), BenchError>;

/// Calls awaiting their reply, in wire order.
type Pending = VecDeque<(i32, oneshot::Sender<Reply>)>;

struct Shared {
    writer: tokio::sync::Mutex<(OwnedWriteHalf, i32)>,
    /// `None` once the reader has stopped: later calls must fail, not wait forever.
    pending: Mutex<Option<Pending>>,
    watches: Mutex<HashMap<String, mpsc::UnboundedSender<Notification>>>,
}

/// One ZooKeeper session.
pub struct ZkClient {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl ZkClient {
    /// Connects and establishes a new session.
    pub async fn connect(addr: &str) -> Result<Self> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::io(format!("connect {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::io("TCP_NODELAY", e))?;
        stream
            .write_all(&jute::connect_request(SESSION_TIMEOUT_MS))
            .await
            .map_err(|e| BenchError::io("send ConnectRequest", e))?;
        let (mut rd, wr) = stream.into_split();
        let body = read_frame(&mut rd)
            .await?
            .ok_or(BenchError::Closed("zookeeper handshake"))?;
        let resp = jute::decode_connect_response(&body)?;
        if resp.timeout_ms <= 0 {
            return Err(BenchError::Closed("zookeeper session refused"));
        }
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new((wr, 1)),
            pending: Mutex::new(Some(VecDeque::new())),
            watches: Mutex::new(HashMap::new()),
        });
        let ping_every = Duration::from_millis(u64::try_from(resp.timeout_ms / 3).unwrap_or(1000));
        let reader = tokio::spawn(read_loop(rd, Arc::clone(&shared)));
        let pinger = tokio::spawn(ping_loop(Arc::clone(&shared), ping_every));
        Ok(Self {
            shared,
            tasks: vec![reader, pinger],
        })
    }

    async fn call(&self, op: &'static str, path: &str, req: Request<'_>) -> Result<Vec<u8>> {
        let (hdr, body) = call(&self.shared, &req).await?;
        if hdr.err != err::OK {
            return Err(BenchError::ZkError {
                op,
                path: path.to_owned(),
                code: hdr.err,
            });
        }
        Ok(body)
    }
}

impl Drop for ZkClient {
    fn drop(&mut self) {
        // Aborting closes the socket; the server expires the session. Closing politely would
        // need an await, and the benchmark never reuses sessions.
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl Client for ZkClient {
    async fn ensure(&self, key: &str, value: &[u8]) -> Result<()> {
        match self
            .call(
                "create",
                key,
                Request::Create {
                    path: key,
                    data: value,
                },
            )
            .await
        {
            Err(BenchError::ZkError {
                code: err::NODE_EXISTS,
                ..
            })
            | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn write(&self, key: &str, value: &[u8]) -> Result<()> {
        self.call(
            "setData",
            key,
            Request::SetData {
                path: key,
                data: value,
            },
        )
        .await
        .map(drop)
    }

    async fn read_linearizable(&self, key: &str) -> Result<Vec<u8>> {
        // sync+getData is ZooKeeper's documented way to read the latest committed value;
        // pipelining both keeps it one round trip, and FIFO order makes the read follow the sync.
        // `join!` polls in argument order and the writer lock is FIFO, so the sync is sent first.
        let (sync_req, get_req) = (
            Request::Sync { path: key },
            Request::GetData {
                path: key,
                watch: false,
            },
        );
        let (sync, get) = tokio::join!(call(&self.shared, &sync_req), call(&self.shared, &get_req));
        let (shdr, _) = sync?;
        if shdr.err != err::OK {
            return Err(BenchError::ZkError {
                op: "sync",
                path: key.to_owned(),
                code: shdr.err,
            });
        }
        let (ghdr, body) = get?;
        if ghdr.err != err::OK {
            return Err(BenchError::ZkError {
                op: "getData",
                path: key.to_owned(),
                code: ghdr.err,
            });
        }
        Ok(jute::decode_get_data(&body)?)
    }

    async fn watch(&self, key: &str, sink: mpsc::UnboundedSender<Notification>) -> Result<()> {
        self.shared
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), sink);
        self.call(
            "getData",
            key,
            Request::GetData {
                path: key,
                watch: true,
            },
        )
        .await
        .map(drop)
    }

    async fn close(&self) -> Result<()> {
        let bye = call(&self.shared, &Request::CloseSession);
        match tokio::time::timeout(Duration::from_secs(2), bye).await {
            Ok(Ok(_) | Err(BenchError::Closed(_))) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BenchError::Timeout("zookeeper closeSession".into())),
        }
    }
}

async fn call(shared: &Shared, req: &Request<'_>) -> Result<(jute::ReplyHeader, Vec<u8>)> {
    let (tx, rx) = oneshot::channel();
    {
        let mut w = shared.writer.lock().await;
        let id = w.1;
        w.1 = w.1.wrapping_add(1).max(1);
        match shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(q) => q.push_back((id, tx)),
            None => return Err(BenchError::Closed("zookeeper session")),
        }
        let frame = req.encode(id);
        if let Err(e) = w.0.write_all(&frame).await {
            return Err(BenchError::io("zookeeper send", e));
        }
    }
    rx.await
        .map_err(|_| BenchError::Closed("zookeeper session"))?
}

async fn read_frame(rd: &mut OwnedReadHalf) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(BenchError::io("zookeeper receive", e)),
    }
    let n = jute::frame_len(&len)?.unwrap_or(0);
    let mut body = vec![0u8; n];
    rd.read_exact(&mut body)
        .await
        .map_err(|e| BenchError::io("zookeeper receive", e))?;
    Ok(Some(body))
}

/// Routes replies to callers until the stream ends or breaks. Callers then see `Closed`;
/// why the server hung up is in the member's log, not on the wire.
async fn read_loop(mut rd: OwnedReadHalf, shared: Arc<Shared>) {
    loop {
        let Ok(Some(body)) = read_frame(&mut rd).await else {
            break;
        };
        let Ok((hdr, rest)) = jute::decode_reply_header(&body) else {
            break;
        };
        match hdr.xid {
            xid::PING => {}
            xid::NOTIFICATION => {
                if on_notification(&shared, rest).is_err() {
                    break;
                }
            }
            id => {
                let next = shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_mut()
                    .and_then(VecDeque::pop_front);
                match next {
                    Some((want, tx)) if want == id => {
                        // The caller may have given up (dropped); nothing to do then.
                        let _ = tx.send(Ok((hdr, rest.to_vec())));
                    }
                    // A reply for a request we did not send next: the stream is unusable.
                    _ => break,
                }
            }
        }
    }
    // Dropping the senders wakes every waiting caller with `Closed`.
    shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
}

fn on_notification(shared: &Arc<Shared>, body: &[u8]) -> Result<()> {
    let at = tokio::time::Instant::now();
    let ev = jute::decode_watcher_event(body)?;
    let sink = shared
        .watches
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&ev.path)
        .cloned();
    let Some(sink) = sink else { return Ok(()) };
    // Watches are one-shot: re-arm, and only then report, so a writer waiting for the
    // report never races a not-yet-armed watch. The latency is taken at arrival.
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let rearm = call(
            &shared,
            &Request::GetData {
                path: &ev.path,
                watch: true,
            },
        )
        .await;
        if matches!(rearm, Ok((h, _)) if h.err == err::OK) {
            let _ = sink.send(Notification { key: ev.path, at });
        }
    });
    Ok(())
}

async fn ping_loop(shared: Arc<Shared>, every: Duration) {
    let frame: BytesMut = Request::Ping.encode(xid::PING);
    loop {
        tokio::time::sleep(every).await;
        let mut w = shared.writer.lock().await;
        if w.0.write_all(&frame).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
