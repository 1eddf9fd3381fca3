//! Watch streams: ordering, one-shot semantics, resume with replay or resync, heartbeats.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_coord::WatchKind;
use vigil_coord::client::{CreateOptions, WatchNotice, Watcher};
use vigil_coord::watch::EventKind;

use crate::support::{client, config, start, start_with};

async fn next(w: &mut Watcher) -> WatchNotice {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("notice in time")
        .expect("no error")
        .expect("stream not finished")
}

fn event(n: WatchNotice) -> (u64, String, EventKind) {
    match n {
        WatchNotice::Event(e) => (e.zxid, e.path, e.kind),
        WatchNotice::ResyncNeeded => panic!("unexpected resync"),
    }
}

#[tokio::test]
async fn recursive_stream_is_in_zxid_order() {
    let s = start().await;
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    let mut w = c
        .watch("/w", WatchKind::PersistentRecursive)
        .await
        .expect("watch");
    session
        .create("/w", b"", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    for i in 0..5 {
        session
            .create(&format!("/w/{i}"), b"", CreateOptions::PERSISTENT)
            .await
            .expect("create");
    }
    session.set("/w/3", b"x", None).await.expect("set");
    session.delete("/w/0", None).await.expect("delete");
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(event(next(&mut w).await));
    }
    assert!(got.windows(2).all(|p| p[0].0 < p[1].0), "{got:?}");
    let kinds: Vec<(&str, EventKind)> = got.iter().map(|(_, p, k)| (p.as_str(), *k)).collect();
    assert_eq!(kinds[0], ("/w", EventKind::NodeCreated));
    assert_eq!(kinds[6], ("/w/3", EventKind::NodeDataChanged));
    assert_eq!(kinds[7], ("/w/0", EventKind::NodeDeleted));
    assert_eq!(w.last_zxid(), Some(got[7].0));
}

#[tokio::test]
async fn one_shot_watch_fires_once() {
    let s = start().await;
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    session
        .create("/d", b"", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    let mut w = c.watch("/d", WatchKind::Data).await.expect("watch");
    session.set("/d", b"1", None).await.expect("set");
    session.set("/d", b"2", None).await.expect("set");
    let (_, path, kind) = event(next(&mut w).await);
    assert_eq!((path.as_str(), kind), ("/d", EventKind::NodeDataChanged));
    assert_eq!(w.next().await.expect("ok"), None);
}

#[tokio::test]
async fn resume_replays_missed_events() {
    let s = start().await;
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    session
        .create("/r", b"", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    let w = c.watch("/r", WatchKind::Persistent).await.expect("watch");
    let last = w.last_zxid().expect("registered zxid");
    drop(w);
    for i in 0..3u8 {
        session.set("/r", &[i], None).await.expect("set");
    }
    session
        .set("/elsewhere-no", b"", None)
        .await
        .expect_err("no node");
    let mut w = c
        .watch_from("/r", WatchKind::Persistent, last)
        .await
        .expect("resume");
    let mut zxids = Vec::new();
    for _ in 0..3 {
        let (z, path, kind) = event(next(&mut w).await);
        assert_eq!((path.as_str(), kind), ("/r", EventKind::NodeDataChanged));
        zxids.push(z);
    }
    assert!(zxids[0] > last && zxids.windows(2).all(|p| p[0] < p[1]));
    // Live events follow the replay.
    session.set("/r", b"live", None).await.expect("set");
    let (z, _, _) = event(next(&mut w).await);
    assert!(z > zxids[2]);
}

#[tokio::test]
async fn resume_beyond_the_ring_says_resync_needed() {
    let s = start_with(vigil_coord::api::ApiConfig {
        watch_ring: 2,
        ..config()
    })
    .await;
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    session
        .create("/r", b"", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    let last = c
        .watch("/r", WatchKind::Persistent)
        .await
        .expect("watch")
        .last_zxid()
        .expect("zxid");
    for i in 0..5u8 {
        session.set("/r", &[i], None).await.expect("set");
    }
    let mut w = c
        .watch_from("/r", WatchKind::Persistent, last)
        .await
        .expect("resume");
    assert_eq!(next(&mut w).await, WatchNotice::ResyncNeeded);
    session.set("/r", b"after", None).await.expect("set");
    let (_, path, _) = event(next(&mut w).await);
    assert_eq!(path, "/r");
}

#[tokio::test]
async fn stream_acknowledges_then_sends_heartbeats() {
    let s = start().await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    tcp.write_all(b"GET /v1/watch?path=/hb&kind=persistent HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("write");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("application/x-ndjson"), "{text}");
    let registered = text.find(r#"{"type":"registered","zxid":0,"replayed":0}"#);
    let heartbeat = text.find(r#"{"type":"heartbeat"}"#);
    assert!(registered.is_some() && heartbeat > registered, "{text}");
    assert!(text.matches("heartbeat").count() >= 2, "{text}");
}

/// A pass-through proxy whose live connections can all be cut at once.
async fn cuttable_proxy(
    upstream: std::net::SocketAddr,
) -> (
    String,
    tokio::sync::broadcast::Sender<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (cut, _) = tokio::sync::broadcast::channel::<()>(1);
    let cut2 = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let mut stop = cut2.subscribe();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                    _ = stop.recv() => {}
                }
            });
        }
    });
    (addr, cut, accepted)
}

#[tokio::test]
async fn watcher_resumes_by_itself_after_a_broken_connection() {
    let s = start().await;
    let (proxy, cut, accepted) = cuttable_proxy(s.addr).await;
    let via_proxy =
        vigil_coord::client::Client::new(crate::support::client_config(&[proxy])).expect("client");
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    session
        .create("/k", b"", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    let mut w = via_proxy
        .watch("/k", WatchKind::Persistent)
        .await
        .expect("watch");
    session.set("/k", b"1", None).await.expect("set");
    let (z1, _, _) = event(next(&mut w).await);
    cut.send(()).expect("connections to cut");
    // Let the proxy drop the sockets before the next writes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Missed while the stream is down.
    let z2 = session.set("/k", b"2", None).await.expect("set").mzxid;
    let z3 = session.set("/k", b"3", None).await.expect("set").mzxid;
    let (first, _, _) = event(next(&mut w).await);
    let (second, _, _) = event(next(&mut w).await);
    assert_eq!((first, second), (z2, z3));
    assert!(z1 < z2);
    // The resumed registration is "as of" the whole entry of z3 (`zxid::through`).
    assert_eq!(
        w.last_zxid(),
        Some(vigil_coord::zxid::through(vigil_coord::zxid::index_of(z3)))
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the events came over a resumed stream"
    );
}

/// A backend that only produces the applied-entry stream the test feeds it, as the replicated
/// node will (including snapshot installs).
struct ScriptedBackend {
    events: tokio::sync::broadcast::Sender<vigil_coord::api::BackendEvent>,
}

#[async_trait::async_trait]
impl vigil_coord::api::Backend for ScriptedBackend {
    async fn write(
        &self,
        _: vigil_coord::Command,
    ) -> Result<vigil_coord::Response, vigil_coord::api::ApiError> {
        Err(vigil_coord::api::ApiError::Unavailable("scripted".into()))
    }
    async fn get(
        &self,
        _: vigil_coord::api::Consistency,
        p: &str,
    ) -> Result<(Vec<u8>, vigil_coord::Stat), vigil_coord::api::ApiError> {
        Err(vigil_coord::api::ApiError::at(
            vigil_coord::Error::NoNode,
            p,
        ))
    }
    async fn exists(
        &self,
        _: vigil_coord::api::Consistency,
        _: &str,
    ) -> Result<Option<vigil_coord::Stat>, vigil_coord::api::ApiError> {
        Ok(None)
    }
    async fn children(
        &self,
        _: vigil_coord::api::Consistency,
        p: &str,
    ) -> Result<(Vec<String>, vigil_coord::Stat), vigil_coord::api::ApiError> {
        Err(vigil_coord::api::ApiError::at(
            vigil_coord::Error::NoNode,
            p,
        ))
    }
    async fn subtree(
        &self,
        _: vigil_coord::api::Consistency,
        _: &str,
        _: usize,
    ) -> Result<Option<Vec<String>>, vigil_coord::api::ApiError> {
        Ok(None)
    }
    async fn heartbeat(&self, _: vigil_coord::SessionId) -> Result<(), vigil_coord::api::ApiError> {
        Ok(())
    }
    fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<vigil_coord::api::BackendEvent> {
        self.events.subscribe()
    }
    fn applied_index(&self) -> u64 {
        0
    }
    async fn status(&self) -> Result<vigil_coord::api::ClusterStatus, vigil_coord::api::ApiError> {
        Err(vigil_coord::api::ApiError::Unavailable("scripted".into()))
    }
    async fn change_membership(
        &self,
        _: vigil_coord::api::MembershipChange,
    ) -> Result<vigil_coord::api::ClusterStatus, vigil_coord::api::ApiError> {
        Err(vigil_coord::api::ApiError::Unavailable("scripted".into()))
    }
}

#[tokio::test]
async fn snapshot_install_tells_every_stream_to_resync() {
    use vigil_coord::api::BackendEvent;
    let (events, _) = tokio::sync::broadcast::channel(16);
    let app = vigil_coord::api::router(
        std::sync::Arc::new(ScriptedBackend {
            events: events.clone(),
        }),
        config(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let c =
        vigil_coord::client::Client::new(crate::support::client_config(&[addr])).expect("client");
    let mut w = c.watch("/a", WatchKind::Persistent).await.expect("watch");
    assert_eq!(w.last_zxid(), Some(0));
    // The event stream's contract: the events of the entry at index i have zxids from
    // `zxid::of(i, 0)` up to `zxid::through(i)`.
    let changed = vigil_coord::WatchEvent {
        zxid: vigil_coord::zxid::of(5, 0),
        path: "/a".into(),
        kind: EventKind::NodeDataChanged,
    };
    events
        .send(BackendEvent::Applied {
            index: 5,
            events: vec![changed.clone()],
        })
        .expect("hub subscribed");
    assert_eq!(next(&mut w).await, WatchNotice::Event(changed));
    events
        .send(BackendEvent::SnapshotInstalled { index: 9 })
        .expect("hub subscribed");
    assert_eq!(next(&mut w).await, WatchNotice::ResyncNeeded);
    // The ring was emptied: resuming from before the snapshot cannot be replayed.
    let mut again = c
        .watch_from("/a", WatchKind::Persistent, vigil_coord::zxid::of(5, 0))
        .await
        .expect("resume");
    assert_eq!(next(&mut again).await, WatchNotice::ResyncNeeded);
    server.abort();
}
