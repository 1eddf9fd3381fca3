//! The Rust client: failover between servers, the session keeper, typed errors.

use std::time::Duration;

use vigil_coord::Error;
use vigil_coord::api::Consistency;
use vigil_coord::api::wire::{CreateJson, OpJson, OpResultJson};
use vigil_coord::client::{Client, ClientError, CreateOptions, SessionState};

use crate::support::{client, client_config, start};

async fn dead_address() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    addr
}

#[tokio::test]
async fn fails_over_to_the_next_server() {
    let s = start().await;
    let c =
        Client::new(client_config(&[dead_address().await, s.addr.to_string()])).expect("client");
    let session = c
        .session(10_000)
        .await
        .expect("session through the second server");
    session
        .create("/f", b"x", CreateOptions::PERSISTENT)
        .await
        .expect("create");
    assert_eq!(c.get("/f").await.expect("get").data, b"x");
    // No server at all: a transport error, not a hang.
    let mut cfg = client_config(&[dead_address().await]);
    cfg.attempts = 2;
    let none = Client::new(cfg).expect("client");
    assert!(matches!(
        none.stat("/").await,
        Err(ClientError::Transport(_))
    ));
}

#[tokio::test]
async fn typed_operations_round_trip() {
    let s = start().await;
    let c = client(&s);
    let session = c.session(10_000).await.expect("session");
    session.ensure_path("/a/b/c").await.expect("ensure");
    session
        .ensure_path("/a/b/c")
        .await
        .expect("ensure is idempotent");
    let (path, stat) = session
        .create(
            "/a/n-",
            "é".as_bytes(),
            CreateOptions {
                sequential: true,
                ..CreateOptions::PERSISTENT
            },
        )
        .await
        .expect("create");
    assert_eq!(path, "/a/n-0000000001");
    let stat2 = session
        .set(&path, b"v", Some(stat.version))
        .await
        .expect("set");
    assert_eq!(stat2.version, 1);
    let err = session
        .set(&path, b"w", Some(0))
        .await
        .expect_err("bad version");
    assert!(err.is(Error::BadVersion), "{err}");
    assert_eq!(
        c.get_with(&path, Consistency::Stale)
            .await
            .expect("get")
            .data,
        b"v"
    );
    let (children, _) = c.children("/a").await.expect("children");
    assert_eq!(children, ["b", "n-0000000001"]);
    let results = session
        .multi(vec![
            OpJson::Check {
                path: path.clone(),
                version: Some(1),
            },
            OpJson::Create {
                path: "/a/m".into(),
                create: CreateJson::default(),
            },
        ])
        .await
        .expect("multi");
    assert!(matches!(results[1], OpResultJson::Created { .. }));
    session.delete_recursive("/a").await.expect("rmr");
    assert_eq!(c.stat("/a").await.expect("stat"), None);
    assert!(c.get("/a").await.expect_err("gone").is(Error::NoNode));
    session.sync().await.expect("sync");
    session.close().await.expect("close");
    session.close().await.expect("closing twice is fine");
}

#[tokio::test]
async fn keeper_holds_the_session_and_reports_its_loss() {
    let s = start().await;
    let c = client(&s);
    // 300 ms sessions, heartbeats every 100 ms: alive well past the timeout.
    let session = c.session(300).await.expect("session");
    session
        .create(
            "/eph",
            b"",
            CreateOptions {
                ephemeral: true,
                ..CreateOptions::PERSISTENT
            },
        )
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(c.stat("/eph").await.expect("stat").is_some());
    assert_eq!(*session.state().borrow(), SessionState::Alive);
    // Someone else closes it: the keeper's next heartbeat learns it.
    c.close_session(session.id()).await.expect("close");
    let mut state = session.state();
    tokio::time::timeout(
        Duration::from_secs(2),
        state.wait_for(|s| *s == SessionState::Expired),
    )
    .await
    .expect("reported in time")
    .expect("keeper alive until it reports");
    assert!(c.stat("/eph").await.expect("stat").is_none());
    let err = session
        .create("/x", b"", CreateOptions::PERSISTENT)
        .await
        .expect_err("expired");
    assert!(err.is(Error::SessionExpired));
}

#[tokio::test]
async fn abandoned_session_expires_on_the_server() {
    let s = start().await;
    let c = client(&s);
    let session = c.session(300).await.expect("session");
    session
        .create(
            "/gone",
            b"",
            CreateOptions {
                ephemeral: true,
                ..CreateOptions::PERSISTENT
            },
        )
        .await
        .expect("create");
    session.abandon();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(c.stat("/gone").await.expect("stat").is_none());
    assert!(
        c.heartbeat(session.id())
            .await
            .expect_err("expired")
            .is(Error::SessionExpired)
    );
}

/// A proxy that loses the response of the first `PUT` it relays (the write is applied, the
/// client sees its connection dropped); everything else passes through.
async fn lossy_proxy(
    upstream: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let armed = Arc::new(AtomicBool::new(true));
    let still_armed = Arc::clone(&armed);
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let armed = Arc::clone(&armed);
            tokio::spawn(async move {
                let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
                let mut killing = false;
                loop {
                    tokio::select! {
                        n = down.read(&mut a) => {
                            let Ok(n @ 1..) = n else { return };
                            if a.starts_with(b"PUT ") && armed.swap(false, Ordering::SeqCst) {
                                killing = true;
                            }
                            if up.write_all(&a[..n]).await.is_err() { return; }
                        }
                        n = up.read(&mut b) => {
                            let Ok(n @ 1..) = n else { return };
                            if killing { return; }
                            if down.write_all(&b[..n]).await.is_err() { return; }
                        }
                    }
                }
            });
        }
    });
    (addr, still_armed)
}

#[tokio::test]
async fn write_retried_after_a_lost_response_applies_once() {
    let s = start().await;
    let (proxy, armed) = lossy_proxy(s.addr).await;
    let proxied = Client::new(client_config(&[proxy])).expect("client");
    let session = proxied.session(10_000).await.expect("session");
    let direct = client(&s);
    let setup = direct.session(10_000).await.expect("session");
    setup.ensure_path("/once").await.expect("ensure");
    let (path, _) = session
        .create(
            "/once/n-",
            b"",
            CreateOptions {
                sequential: true,
                ..CreateOptions::PERSISTENT
            },
        )
        .await
        .expect("create succeeds on the retry");
    assert_eq!(path, "/once/n-0000000000");
    let (children, _) = direct.children("/once").await.expect("children");
    assert_eq!(children, ["n-0000000000"], "applied exactly once");
    assert!(
        !armed.load(std::sync::atomic::Ordering::SeqCst),
        "the first response was lost"
    );
}
