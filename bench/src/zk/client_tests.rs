//! The client against a scripted fake server on 127.0.0.1:0, byte by byte.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use super::ZkClient;
use crate::{error::BenchError, target::Client};

async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.expect("frame body");
    body
}

async fn send(s: &mut TcpStream, parts: &[&[u8]]) {
    let body = parts.concat();
    s.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .expect("send length");
    s.write_all(&body).await.expect("send body");
}

fn jstr(b: &[u8]) -> Vec<u8> {
    [&(b.len() as i32).to_be_bytes()[..], b].concat()
}

fn reply_header(xid: i32, err: i32) -> Vec<u8> {
    [
        &xid.to_be_bytes()[..],
        &5i64.to_be_bytes(),
        &err.to_be_bytes(),
    ]
    .concat()
}

/// Accepts one client and answers its handshake with `timeout_ms`.
async fn serve(timeout_ms: i32) -> (String, tokio::task::JoinHandle<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("addr").to_string();
    let h = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let req = read_frame(&mut s).await;
        assert_eq!(
            req[12..16],
            30_000i32.to_be_bytes(),
            "requested session timeout"
        );
        let resp = [
            &0i32.to_be_bytes()[..],
            &timeout_ms.to_be_bytes(),
            &77i64.to_be_bytes(),
            &jstr(&[0; 16]),
        ]
        .concat();
        send(&mut s, &[&resp]).await;
        s
    });
    (addr, h)
}

fn xid_and_type(frame: &[u8]) -> (i32, i32) {
    let x = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let t = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    (x, t)
}

#[tokio::test]
async fn linearizable_read_is_sync_then_get_and_skips_foreign_events() {
    let (addr, h) = serve(30_000).await;
    let client = ZkClient::connect(&addr).await.expect("connect");
    let mut s = h.await.expect("server");
    let server = tokio::spawn(async move {
        let sync = read_frame(&mut s).await;
        let get = read_frame(&mut s).await;
        let (sx, st) = xid_and_type(&sync);
        let (gx, gt) = xid_and_type(&get);
        assert_eq!((st, gt), (9, 4), "sync must precede getData on the wire");
        assert_eq!(get[get.len() - 1], 0, "no watch left by a plain read");
        // A notification for a path nobody watches arrives in between and must be ignored.
        let ev = [
            &3i32.to_be_bytes()[..],
            &3i32.to_be_bytes(),
            &jstr(b"/other"),
        ]
        .concat();
        send(&mut s, &[&reply_header(-1, 0), &ev]).await;
        send(&mut s, &[&reply_header(sx, 0), &jstr(b"/k")]).await;
        send(&mut s, &[&reply_header(gx, 0), &jstr(b"val"), &[0u8; 68]]).await;
        // Then a setData that fails with NoNode.
        let set = read_frame(&mut s).await;
        let (x, t) = xid_and_type(&set);
        assert_eq!(t, 5);
        send(&mut s, &[&reply_header(x, -101)]).await;
        s
    });
    assert_eq!(client.read_linearizable("/k").await.expect("read"), b"val");
    let err = client
        .write("/k", b"v")
        .await
        .expect_err("NoNode must surface");
    assert!(
        matches!(
            err,
            BenchError::ZkError {
                code: -101,
                op: "setData",
                ..
            }
        ),
        "{err}"
    );
    let s = server.await.expect("server script");
    drop(s);
    // Server gone: the next call fails instead of hanging.
    assert!(client.read_linearizable("/k").await.is_err());
}

#[tokio::test]
async fn watch_rearms_before_reporting() {
    let (addr, h) = serve(30_000).await;
    let client = ZkClient::connect(&addr).await.expect("connect");
    let mut s = h.await.expect("server");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let arm = read_frame(&mut s).await;
        let (x, t) = xid_and_type(&arm);
        assert_eq!((t, arm[arm.len() - 1]), (4, 1), "getData with watch");
        send(&mut s, &[&reply_header(x, 0), &jstr(b"0"), &[0u8; 68]]).await;
        let ev = [&3i32.to_be_bytes()[..], &3i32.to_be_bytes(), &jstr(b"/w")].concat();
        send(&mut s, &[&reply_header(-1, 0), &ev]).await;
        let rearm = read_frame(&mut s).await;
        let (x, t) = xid_and_type(&rearm);
        assert_eq!(
            (t, rearm[rearm.len() - 1]),
            (4, 1),
            "re-armed with getData+watch"
        );
        assert_eq!(&rearm[8..14], &jstr(b"/w")[..]);
        send(&mut s, &[&reply_header(x, 0), &jstr(b"1"), &[0u8; 68]]).await;
        let bye = read_frame(&mut s).await;
        let (x, t) = xid_and_type(&bye);
        assert_eq!((t, bye.len()), (-11, 8), "closeSession has no body");
        send(&mut s, &[&reply_header(x, 0)]).await;
        s
    });
    client.watch("/w", tx).await.expect("watch");
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("notification in time")
        .expect("channel open");
    assert_eq!(n.key, "/w");
    client.close().await.expect("polite close");
    drop(server.await.expect("server script"));
}

#[tokio::test]
async fn refused_session_is_an_error() {
    let (addr, h) = serve(0).await;
    let res = ZkClient::connect(&addr).await;
    drop(h.await);
    assert!(matches!(res, Err(BenchError::Closed(_))));
}
