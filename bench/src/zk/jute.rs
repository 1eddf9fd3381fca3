//! The subset of ZooKeeper's jute wire format the benchmark speaks.
//!
//! Every frame is a 4-byte big-endian length followed by a jute record. Requests after the
//! handshake start with `RequestHeader { int xid; int type }`, replies with
//! `ReplyHeader { int xid; long zxid; int err }`. Strings and buffers are an `int` length
//! (−1 for null) followed by the bytes; booleans are one byte. Field order follows
//! `zookeeper.jute` in the ZooKeeper sources.

use bytes::{Buf, BufMut, BytesMut};

/// Operation codes (`ZooDefs.OpCode`).
pub mod op {
    /// `create`.
    pub const CREATE: i32 = 1;
    /// `exists`.
    pub const EXISTS: i32 = 3;
    /// `getData`.
    pub const GET_DATA: i32 = 4;
    /// `setData`.
    pub const SET_DATA: i32 = 5;
    /// `sync`.
    pub const SYNC: i32 = 9;
    /// `ping`.
    pub const PING: i32 = 11;
    /// `closeSession`.
    pub const CLOSE_SESSION: i32 = -11;
}

/// Reserved xids in replies.
pub mod xid {
    /// A watch notification (`WatcherEvent` body).
    pub const NOTIFICATION: i32 = -1;
    /// A ping reply.
    pub const PING: i32 = -2;
}

/// Error codes (`KeeperException.Code`) the benchmark reacts to.
pub mod err {
    /// Success.
    pub const OK: i32 = 0;
    /// The node does not exist.
    pub const NO_NODE: i32 = -101;
    /// The node already exists.
    pub const NODE_EXISTS: i32 = -110;
}

/// `Stat` is eight longs and five ints wide.
pub const STAT_LEN: usize = 68;

/// A reply that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record ended before a field did.
    #[error("truncated jute record: needed {needed} more bytes")]
    Truncated {
        /// Bytes missing.
        needed: usize,
    },
    /// A length field was negative where null is not allowed, or absurd.
    #[error("invalid jute length {0}")]
    BadLength(i32),
    /// A string was not UTF-8.
    #[error("jute string is not UTF-8")]
    NotUtf8,
}

/// `ConnectRequest` with a fresh session (no previous session id or zxid).
pub fn connect_request(timeout_ms: i32) -> BytesMut {
    let mut b = BytesMut::with_capacity(48);
    b.put_i32(0); // length, patched in `finish`
    b.put_i32(0); // protocolVersion
    b.put_i64(0); // lastZxidSeen
    b.put_i32(timeout_ms);
    b.put_i64(0); // sessionId
    put_buffer(&mut b, &[0u8; 16]); // passwd
    b.put_u8(0); // readOnly = false
    finish(b)
}

/// The parts of `ConnectResponse` the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Negotiated session timeout; 0 means the server refused the session.
    pub timeout_ms: i32,
    /// Session id assigned by the server.
    pub session_id: i64,
}

/// Decodes a `ConnectResponse` body (without the length prefix).
pub fn decode_connect_response(mut body: &[u8]) -> Result<ConnectResponse, DecodeError> {
    need(body, 16)?;
    let _protocol = body.get_i32();
    let timeout_ms = body.get_i32();
    let session_id = body.get_i64();
    // The password and the optional readOnly flag follow; the client never resumes sessions.
    Ok(ConnectResponse {
        timeout_ms,
        session_id,
    })
}

/// A request the benchmark sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// Persistent node with `OPEN_ACL_UNSAFE`.
    Create {
        /// Node path.
        path: &'a str,
        /// Node data.
        data: &'a [u8],
    },
    /// Unconditional `setData` (version −1).
    SetData {
        /// Node path.
        path: &'a str,
        /// New data.
        data: &'a [u8],
    },
    /// `getData`, optionally leaving a data watch.
    GetData {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// `exists`, optionally leaving a watch.
    Exists {
        /// Node path.
        path: &'a str,
        /// Leave a watch.
        watch: bool,
    },
    /// `sync`: the next read on this session sees everything committed before it.
    Sync {
        /// Node path.
        path: &'a str,
    },
    /// Keep-alive.
    Ping,
    /// Orderly session close.
    CloseSession,
}

impl Request<'_> {
    /// Encodes the request as one length-prefixed frame with the given xid.
    pub fn encode(&self, xid: i32) -> BytesMut {
        let mut b = BytesMut::with_capacity(64);
        b.put_i32(0); // length, patched in `finish`
        match self {
            Request::Create { path, data } => {
                header(&mut b, xid, op::CREATE);
                put_string(&mut b, path);
                put_buffer(&mut b, data);
                // vector<ACL> with the single entry OPEN_ACL_UNSAFE: perms ALL, world:anyone.
                b.put_i32(1);
                b.put_i32(31);
                put_string(&mut b, "world");
                put_string(&mut b, "anyone");
                b.put_i32(0); // flags: persistent
            }
            Request::SetData { path, data } => {
                header(&mut b, xid, op::SET_DATA);
                put_string(&mut b, path);
                put_buffer(&mut b, data);
                b.put_i32(-1);
            }
            Request::GetData { path, watch } => {
                header(&mut b, xid, op::GET_DATA);
                put_string(&mut b, path);
                b.put_u8(u8::from(*watch));
            }
            Request::Exists { path, watch } => {
                header(&mut b, xid, op::EXISTS);
                put_string(&mut b, path);
                b.put_u8(u8::from(*watch));
            }
            Request::Sync { path } => {
                header(&mut b, xid, op::SYNC);
                put_string(&mut b, path);
            }
            Request::Ping => header(&mut b, xid::PING, op::PING),
            Request::CloseSession => header(&mut b, xid, op::CLOSE_SESSION),
        }
        finish(b)
    }
}

/// `ReplyHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The xid of the request, or one of the reserved [`xid`] values.
    pub xid: i32,
    /// Last zxid the server has seen.
    pub zxid: i64,
    /// Error code; see [`err`].
    pub err: i32,
}

/// Splits a reply body into its header and the rest.
pub fn decode_reply_header(mut body: &[u8]) -> Result<(ReplyHeader, &[u8]), DecodeError> {
    need(body, 16)?;
    let hdr = ReplyHeader {
        xid: body.get_i32(),
        zxid: body.get_i64(),
        err: body.get_i32(),
    };
    Ok((hdr, body))
}

/// `WatcherEvent`, the body of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    /// Event type (3 = NodeDataChanged).
    pub kind: i32,
    /// Keeper state (3 = SyncConnected).
    pub state: i32,
    /// Node the event is about.
    pub path: String,
}

/// Decodes a notification body (after the reply header).
pub fn decode_watcher_event(mut body: &[u8]) -> Result<WatcherEvent, DecodeError> {
    need(body, 8)?;
    let kind = body.get_i32();
    let state = body.get_i32();
    let path = get_string(&mut body)?;
    Ok(WatcherEvent { kind, state, path })
}

/// Decodes the data of a `GetDataResponse` (the `Stat` after it is skipped).
pub fn decode_get_data(mut body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let data = get_buffer(&mut body)?;
    need(body, STAT_LEN)?;
    Ok(data)
}

/// Reads one frame length prefix; `None` until four bytes are available.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    // ZooKeeper's own jute.maxbuffer default is 1 MiB; anything above 64 MiB is corruption.
    if !(0..=64 << 20).contains(&len) {
        return Err(DecodeError::BadLength(len));
    }
    Ok(Some(len as usize))
}

fn header(b: &mut BytesMut, xid: i32, kind: i32) {
    b.put_i32(xid);
    b.put_i32(kind);
}

fn finish(mut b: BytesMut) -> BytesMut {
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn put_string(b: &mut BytesMut, s: &str) {
    put_buffer(b, s.as_bytes());
}

fn put_buffer(b: &mut BytesMut, data: &[u8]) {
    b.put_i32(data.len() as i32);
    b.put_slice(data);
}

fn need(body: &[u8], n: usize) -> Result<(), DecodeError> {
    if body.len() < n {
        return Err(DecodeError::Truncated {
            needed: n - body.len(),
        });
    }
    Ok(())
}

fn get_buffer(body: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
    need(body, 4)?;
    let len = body.get_i32();
    if len == -1 {
        return Ok(Vec::new());
    }
    let n = usize::try_from(len).map_err(|_| DecodeError::BadLength(len))?;
    need(body, n)?;
    let out = body[..n].to_vec();
    body.advance(n);
    Ok(out)
}

fn get_string(body: &mut &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(get_buffer(body)?).map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
#[path = "jute_tests.rs"]
mod tests;
