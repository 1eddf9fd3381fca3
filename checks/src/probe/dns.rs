//! DNS checks: one query over UDP that must come back answered (RFC 1035 §4.1).

use super::{AttemptResult, ProbeError, net};
use crate::spec::{CheckSpec, DnsCheck};

pub(super) async fn check(spec: &CheckSpec, dns: &DnsCheck, id: u16) -> AttemptResult {
    let query = build_query(id, &dns.name, dns.qtype)
        .ok_or_else(|| ProbeError::Protocol(format!("invalid query name {:?}", dns.name)))?;
    let sock = net::connect_udp(spec.target, &spec.source).await?;
    sock.send(&query).await?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await?;
        match judge_reply(&buf[..n], id) {
            // A stray datagram (old reply, spoof attempt) is ignored, not a verdict.
            Reply::Foreign => {}
            Reply::Answered(count) => return Ok((format!("{count} answers"), None)),
            Reply::Failed(why) => return Err(ProbeError::Protocol(why)),
        }
    }
}

/// Encodes a standard recursive query for `name`/`qtype`, class IN.
fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return None;
    }
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]); // IN
    Some(q)
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Foreign,
    Answered(u16),
    Failed(String),
}

fn judge_reply(msg: &[u8], id: u16) -> Reply {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() || msg[2] & 0x80 == 0 {
        return Reply::Foreign;
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Reply::Failed(format!("rcode {rcode}"));
    }
    match u16::from_be_bytes([msg[6], msg[7]]) {
        0 => Reply::Failed("no answer".into()),
        n => Reply::Answered(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = build_query(0x1234, "www.example.com.", 1).unwrap();
        let mut want = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(q, want);
        assert!(build_query(1, "a..b", 1).is_none());
        assert!(build_query(1, &"x".repeat(64), 1).is_none());
        assert_eq!(build_query(1, ".", 2).unwrap()[12..], [0, 0, 2, 0, 1]);
    }

    #[test]
    fn replies_are_judged_by_id_rcode_and_answers() {
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        assert_eq!(judge_reply(&r, 0x1234), Reply::Answered(2));
        assert_eq!(judge_reply(&r, 0x1235), Reply::Foreign);
        assert_eq!(judge_reply(&r[..11], 0x1234), Reply::Foreign);
        r[3] = 0x83; // NXDOMAIN
        assert_eq!(judge_reply(&r, 0x1234), Reply::Failed("rcode 3".into()));
        r[3] = 0x80;
        r[7] = 0;
        assert_eq!(judge_reply(&r, 0x1234), Reply::Failed("no answer".into()));
        r[2] = 0x01; // a query, not a response
        assert_eq!(judge_reply(&r, 0x1234), Reply::Foreign);
    }
}
