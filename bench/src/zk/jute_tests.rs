//! Golden-byte tests: each expected frame is written out field by field from
//! `zookeeper.jute`, independently of the encoder.

use super::*;

fn be32(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn be64(v: i64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn jstr(s: &[u8]) -> Vec<u8> {
    let mut v = be32(s.len() as i32);
    v.extend_from_slice(s);
    v
}

fn frame(parts: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = be32(body.len() as i32);
    out.extend(body);
    out
}

#[test]
fn connect_request_golden() {
    let want = frame(&[
        be32(0),
        be64(0),
        be32(30_000),
        be64(0),
        jstr(&[0; 16]),
        vec![0],
    ]);
    assert_eq!(connect_request(30_000).as_ref(), want.as_slice());
    // 4 + 8 + 4 + 8 + (4 + 16) + 1 = 45 bytes of body.
    assert_eq!(want.len(), 4 + 45);
}

#[test]
fn create_golden() {
    let got = Request::Create {
        path: "/a",
        data: b"xy",
    }
    .encode(7);
    let want = frame(&[
        be32(7),
        be32(1),
        jstr(b"/a"),
        jstr(b"xy"),
        be32(1),
        be32(31),
        jstr(b"world"),
        jstr(b"anyone"),
        be32(0),
    ]);
    assert_eq!(got.as_ref(), want.as_slice());
}

#[test]
fn set_data_golden() {
    let got = Request::SetData {
        path: "/k",
        data: b"v",
    }
    .encode(9);
    let want = frame(&[be32(9), be32(5), jstr(b"/k"), jstr(b"v"), be32(-1)]);
    assert_eq!(got.as_ref(), want.as_slice());
}

#[test]
fn get_data_exists_sync_ping_golden() {
    let got = Request::GetData {
        path: "/k",
        watch: true,
    }
    .encode(1);
    assert_eq!(
        got.as_ref(),
        frame(&[be32(1), be32(4), jstr(b"/k"), vec![1]]).as_slice()
    );
    let got = Request::Exists {
        path: "/k",
        watch: false,
    }
    .encode(2);
    assert_eq!(
        got.as_ref(),
        frame(&[be32(2), be32(3), jstr(b"/k"), vec![0]]).as_slice()
    );
    let got = Request::Sync { path: "/" }.encode(3);
    assert_eq!(
        got.as_ref(),
        frame(&[be32(3), be32(9), jstr(b"/")]).as_slice()
    );
    // Pings always carry the reserved xid −2, whatever the caller passes.
    let got = Request::Ping.encode(99);
    assert_eq!(got.as_ref(), frame(&[be32(-2), be32(11)]).as_slice());
    let got = Request::CloseSession.encode(4);
    assert_eq!(got.as_ref(), frame(&[be32(4), be32(-11)]).as_slice());
}

#[test]
fn connect_response_decodes() {
    let body = [
        be32(0),
        be32(20_000),
        be64(0x0123_4567_89ab_cdef),
        jstr(&[5; 16]),
        vec![0],
    ]
    .concat();
    let got = decode_connect_response(&body).expect("valid response");
    assert_eq!(
        got,
        ConnectResponse {
            timeout_ms: 20_000,
            session_id: 0x0123_4567_89ab_cdef
        }
    );
    assert!(matches!(
        decode_connect_response(&body[..10]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn reply_header_and_get_data_decode() {
    let stat = vec![0u8; STAT_LEN];
    let body = [be32(42), be64(1000), be32(0), jstr(b"hello"), stat].concat();
    let (hdr, rest) = decode_reply_header(&body).expect("header");
    assert_eq!(
        hdr,
        ReplyHeader {
            xid: 42,
            zxid: 1000,
            err: 0
        }
    );
    assert_eq!(decode_get_data(rest).expect("data"), b"hello");
    // A reply cut inside the Stat is rejected, not silently accepted.
    assert!(decode_get_data(&rest[..rest.len() - 1]).is_err());
}

#[test]
fn null_buffer_decodes_as_empty() {
    let body = [be32(-1), vec![0u8; STAT_LEN]].concat();
    assert_eq!(decode_get_data(&body).expect("data"), Vec::<u8>::new());
    let body = [be32(-7), vec![0u8; STAT_LEN]].concat();
    assert_eq!(decode_get_data(&body), Err(DecodeError::BadLength(-7)));
}

#[test]
fn watcher_event_decodes() {
    let body = [be32(3), be32(3), jstr(b"/w/1")].concat();
    let ev = decode_watcher_event(&body).expect("event");
    assert_eq!(
        ev,
        WatcherEvent {
            kind: 3,
            state: 3,
            path: "/w/1".into()
        }
    );
    let bad = [be32(3), be32(3), jstr(&[0xff, 0xfe])].concat();
    assert_eq!(decode_watcher_event(&bad), Err(DecodeError::NotUtf8));
}

#[test]
fn frame_len_rules() {
    assert_eq!(frame_len(&[0, 0, 0]), Ok(None));
    assert_eq!(frame_len(&[0, 0, 1, 0, 9]), Ok(Some(256)));
    assert_eq!(frame_len(&be32(-1)), Err(DecodeError::BadLength(-1)));
    assert_eq!(
        frame_len(&be32(1 << 30)),
        Err(DecodeError::BadLength(1 << 30))
    );
}
