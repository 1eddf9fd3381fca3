//! The incoming side: accepts peer connections and hands each request to a [`PeerHandler`].
//!
//! Each connection has a reader loop and a writer task. Every request runs in its own task, so a
//! slow one (a forwarded write waiting for commit, a snapshot install) does not hold up the
//! heartbeats behind it; responses go back tagged with their request's id. Frames are read
//! through a buffer, and the writer sends every response ready at once in one write, so a busy
//! connection costs a few syscalls per round rather than two reads and a write per message.
//! Stopping the server (its shutdown future completing) aborts every connection and request
//! task.

use std::future::Future;
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::frame;
use super::message::{Envelope, PeerRequest, PeerResponse};
use super::tls::{self, PeerTls};

/// Longest a peer may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Responses queued per connection before its request tasks wait for the socket.
const RESPONSE_QUEUE: usize = 256;

/// Bytes of queued responses after which the writer stops adding more to one write.
const COALESCE_BYTES: usize = 64 << 10;

/// What serves peer requests (the node).
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, request: PeerRequest) -> impl Future<Output = PeerResponse> + Send;
}

/// Accepts peers on `listener` (requiring mutual TLS if `tls` is set) until `shutdown`
/// completes.
pub async fn serve<H: PeerHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    tls: Option<PeerTls>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "peer connected");
                    connections.spawn(connection(stream, Arc::clone(&handler), tls.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection<H: PeerHandler>(stream: TcpStream, handler: Arc<H>, tls: Option<PeerTls>) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls::accept(stream, tls.as_ref())).await {
            Ok(Ok(halves)) => halves,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "peer TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::warn!("peer TLS handshake timed out");
                return;
            }
        };
    let mut reader = BufReader::with_capacity(frame::READ_BUFFER, reader);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(RESPONSE_QUEUE);
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            // Responses that are ready meanwhile go out in the same write.
            let out = match rx.try_recv() {
                Err(_) => first,
                Ok(second) => {
                    batch.clear();
                    batch.extend_from_slice(&first);
                    batch.extend_from_slice(&second);
                    while batch.len() < COALESCE_BYTES {
                        let Ok(next) = rx.try_recv() else { break };
                        batch.extend_from_slice(&next);
                    }
                    std::mem::take(&mut batch)
                }
            };
            if let Err(e) = frame::write(&mut writer, &out).await {
                tracing::debug!(error = %e, "writing to peer failed");
                break;
            }
            if out.capacity() <= COALESCE_BYTES * 2 {
                batch = out;
            }
        }
    });
    loop {
        let envelope = match frame::read_bytes(&mut reader).await {
            Ok(Some(bytes)) => match decode_request(&bytes) {
                Ok(envelope) => Ok(Some(envelope)),
                Err(refusal) => {
                    // A request this version does not know (a newer peer) or cannot decode,
                    // whose id could still be read: refused by answer, the connection kept.
                    let Some(frame) = refusal else { break };
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                    continue;
                }
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match envelope {
            Ok(Some(Envelope { id, body })) => {
                let handler = Arc::clone(&handler);
                let tx = tx.clone();
                tasks.spawn(async move {
                    let response = handler.handle(body).await;
                    let frame = match frame::encode(&Envelope { id, body: response }) {
                        Ok(frame) => frame,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot encode a peer response");
                            match frame::encode(&Envelope {
                                id,
                                body: PeerResponse::Refused(e.to_string()),
                            }) {
                                Ok(frame) => frame,
                                Err(_) => return,
                            }
                        }
                    };
                    let _ = tx.send(frame).await;
                });
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "reading from peer failed");
                break;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    // Let in-flight requests answer before the writer goes away with `tasks`.
    drop(tx);
    while tasks.join_next().await.is_some() {}
}

/// Decodes a request frame. When it cannot, the `Err` holds the encoded `Refused` answer for
/// the request's id if the id itself could be read (postcard writes the envelope's id first),
/// or `None` if not even that: then the stream is not ours to answer and the connection goes.
fn decode_request(bytes: &[u8]) -> Result<Envelope<PeerRequest>, Option<Vec<u8>>> {
    match postcard::from_bytes::<Envelope<PeerRequest>>(bytes) {
        Ok(envelope) => Ok(envelope),
        Err(e) => {
            let Ok((id, _)) = postcard::take_from_bytes::<u64>(bytes) else {
                tracing::debug!(error = %e, "undecodable peer frame; closing the connection");
                return Err(None);
            };
            tracing::warn!(id, error = %e, "refusing a peer request this version cannot decode");
            let refusal = Envelope {
                id,
                body: PeerResponse::Refused(format!("request not understood: {e}")),
            };
            Err(frame::encode(&refusal).ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_of_an_unknown_kind_is_refused_by_id_and_garbage_closes() {
        // What a newer peer could send: the envelope's id, then a request variant this
        // version does not have (postcard: the variant index as a varint).
        let mut unknown = postcard::to_allocvec(&42u64).expect("encode id");
        unknown.extend_from_slice(&[0x7f, 1, 2, 3]);
        let Err(Some(frame)) = decode_request(&unknown) else {
            panic!("an unknown request with a readable id must be refused by answer");
        };
        let refusal: Envelope<PeerResponse> =
            postcard::from_bytes(&frame[4..]).expect("a decodable answer");
        assert_eq!(refusal.id, 42);
        assert!(
            matches!(&refusal.body, PeerResponse::Refused(why) if why.contains("not understood")),
            "{:?}",
            refusal.body
        );
        // Not even an id: nothing to answer.
        assert!(matches!(decode_request(&[]), Err(None)));
        // A known request still decodes.
        let probe = postcard::to_allocvec(&Envelope {
            id: 7,
            body: PeerRequest::Probe,
        })
        .expect("encode");
        assert!(matches!(
            decode_request(&probe),
            Ok(Envelope {
                id: 7,
                body: PeerRequest::Probe
            })
        ));
    }
}
