//! The peer transport on its own: pipelining, per-call timeouts, reconnect after the peer comes
//! back, and refusal of oversized frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use vigil_coord::raft::network::{
    CallError, MAX_FRAME, PeerClient, PeerHandler, PeerRequest, PeerResponse, serve,
};
use vigil_coord::session::SessionId;

use super::harness::bounded;

/// Answers a heartbeat for session `n` after `n` ms, and a read-index request with 7.
struct Slow;

impl PeerHandler for Slow {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        match request {
            PeerRequest::Heartbeat(SessionId(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                PeerResponse::Heartbeat(Ok(()))
            }
            PeerRequest::ReadIndex => PeerResponse::ReadIndex(Ok(7)),
            other => PeerResponse::Refused(format!("{other:?}")),
        }
    }
}

fn start(listener: TcpListener) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::new(Slow), None, async {
        let _ = stopped.await;
    }));
    stop
}

#[tokio::test]
async fn calls_are_pipelined_bounded_and_survive_a_peer_restart() {
    bounded("transport test", Duration::from_secs(20), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = start(listener);
        let client = Arc::new(PeerClient::new(addr.to_string(), None));

        // A slow call does not hold up a fast one on the same connection.
        let slow = {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let t = Instant::now();
                let r = client
                    .call(
                        PeerRequest::Heartbeat(SessionId(400)),
                        Duration::from_secs(2),
                    )
                    .await;
                (r, t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let fast = client
            .call(PeerRequest::ReadIndex, Duration::from_secs(2))
            .await
            .expect("fast call");
        assert!(matches!(fast, PeerResponse::ReadIndex(Ok(7))), "{fast:?}");
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        let (slow, took) = slow.await.expect("join");
        assert!(
            matches!(slow, Ok(PeerResponse::Heartbeat(Ok(())))),
            "{slow:?}"
        );
        assert!(took >= Duration::from_millis(400));

        // A call that outlives its deadline fails as a timeout.
        let late = client
            .call(
                PeerRequest::Heartbeat(SessionId(500)),
                Duration::from_millis(100),
            )
            .await;
        assert!(matches!(late, Err(CallError::Timeout { .. })), "{late:?}");

        // The peer goes away: calls fail; it comes back on the same address: calls succeed.
        let _ = stop.send(());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let down = client
            .call(PeerRequest::ReadIndex, Duration::from_millis(500))
            .await;
        assert!(down.is_err(), "{down:?}");
        let listener = TcpListener::bind(addr).await.expect("rebind");
        let _stop = start(listener);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match client
                .call(PeerRequest::ReadIndex, Duration::from_millis(500))
                .await
            {
                Ok(r) => {
                    assert!(matches!(r, PeerResponse::ReadIndex(Ok(7))), "{r:?}");
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "no reconnect: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    bounded("frame limit test", Duration::from_secs(10), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _stop = start(listener);
        let mut raw = TcpStream::connect(addr).await.expect("connect");
        let len = u32::try_from(MAX_FRAME + 1).expect("fits");
        raw.write_all(&len.to_be_bytes()).await.expect("write");
        // The server hangs up instead of allocating; reading sees end of stream.
        let mut buf = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut raw, &mut buf)
            .await
            .unwrap_or(0);
        assert_eq!(n, 0);
    })
    .await;
}
