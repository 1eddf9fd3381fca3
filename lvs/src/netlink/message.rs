//! Generic-netlink framing: the request a client sends and the replies it reads back.
//!
//! ```text
//! nlmsghdr (16 bytes, host order)                      genlmsghdr (4 bytes)
//! +----------+----------+-----------+--------+--------+-----+---------+----------+------------+
//! | len u32  | type u16 | flags u16 | seq u32| pid u32| cmd | version | reserved | attributes |
//! +----------+----------+-----------+--------+--------+-----+---------+----------+------------+
//! ```
//!
//! `type` is the generic-netlink family id (resolved at run time through nlctrl) or one of the
//! control types `NLMSG_ERROR` / `NLMSG_DONE`.

use super::DecodeError;
use super::attr::{AttrWriter, Attrs, align};
use super::consts::{
    GENL_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
    NLMSGERR_ATTR_MSG,
};

/// Builds one generic-netlink request: headers, then the attributes `fill` writes.
pub(crate) fn request(
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    fill: impl FnOnce(&mut AttrWriter<'_>),
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[0; 4]); // length, patched below
    buf.extend_from_slice(&family.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills in ours
    buf.extend_from_slice(&[cmd, version, 0, 0]);
    fill(&mut AttrWriter::new(&mut buf));
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    buf
}

/// One message of a reply datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// A generic-netlink message: command and attribute bytes.
    Data { cmd: u8, attrs: &'a [u8] },
    /// `NLMSG_ERROR` with error 0: the request succeeded.
    Ack,
    /// `NLMSG_ERROR` with a negative errno, plus the kernel's extended-ack text if it sent one.
    Error { errno: i32, message: Option<String> },
    /// `NLMSG_DONE`: the end of a dump.
    Done,
}

/// A reply message with the sequence number it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) seq: u32,
    /// `nlmsg_type`: the family id for data messages.
    pub(crate) ty: u16,
    pub(crate) reply: Reply<'a>,
}

/// Iterates over the netlink messages packed in one received datagram.
#[derive(Debug, Clone)]
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = parse_one(self.rest);
        match &item {
            Ok((_, used)) => self.rest = self.rest.get(align(*used)..).unwrap_or(&[]),
            Err(_) => self.rest = &[],
        }
        Some(item.map(|(m, _)| m))
    }
}

/// Parses the message at the start of `buf`; returns it and its length.
fn parse_one(buf: &[u8]) -> Result<(Message<'_>, usize), DecodeError> {
    let header = buf
        .get(..NLMSG_HDRLEN)
        .ok_or(DecodeError::Truncated { what: "nlmsghdr" })?;
    let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let ty = u16::from_ne_bytes([header[4], header[5]]);
    let flags = u16::from_ne_bytes([header[6], header[7]]);
    let seq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(DecodeError::BadMessageLength(len));
    }
    let body = &buf[NLMSG_HDRLEN..len];
    let reply = match ty {
        NLMSG_DONE => Reply::Done,
        NLMSG_ERROR => parse_error(body, flags)?,
        _ => {
            let genl = body
                .get(..GENL_HDRLEN)
                .ok_or(DecodeError::Truncated { what: "genlmsghdr" })?;
            Reply::Data {
                cmd: genl[0],
                attrs: &body[GENL_HDRLEN..],
            }
        }
    };
    Ok((Message { seq, ty, reply }, len))
}

/// `struct nlmsgerr`: an `int error`, the echoed request header (whole request unless capped),
/// then extended-ack TLVs when `NLM_F_ACK_TLVS` is set.
fn parse_error(body: &[u8], flags: u16) -> Result<Reply<'_>, DecodeError> {
    let errno: [u8; 4] = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Truncated { what: "nlmsgerr" })?;
    let errno = i32::from_ne_bytes(errno);
    if errno == 0 {
        return Ok(Reply::Ack);
    }
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = body
            .get(4..4 + NLMSG_HDRLEN)
            .map_or(0, |h| u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let skip = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            echoed
        };
        let tlvs = body.get(4 + align(skip)..).unwrap_or(&[]);
        message = Attrs::new(tlvs)
            .filter_map(Result::ok)
            .find(|a| a.ty == NLMSGERR_ATTR_MSG)
            .and_then(|a| a.string().ok());
    }
    Ok(Reply::Error {
        errno: -errno,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn request_header_layout() {
        let msg = request(0x1d, 0x0005, 42, 4, 1, |w| w.u16(1, 2));
        let expected = [
            28, 0, 0, 0, // len
            0x1d, 0, // type = family
            5, 0, // flags
            42, 0, 0, 0, // seq
            0, 0, 0, 0, // pid
            4, 1, 0, 0, // cmd, version, reserved
            6, 0, 1, 0, 2, 0, 0, 0, // attr
        ];
        assert_eq!(msg, expected);
    }

    #[test]
    fn parses_data_done_ack_and_error_in_one_datagram() {
        let mut buf = request(0x1d, 0x2, 7, 1, 1, |w| w.u32(5, 9));
        // NLMSG_DONE with its int payload.
        buf.extend_from_slice(&20u32.to_ne_bytes());
        buf.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        buf.extend_from_slice(&[0; 2]);
        buf.extend_from_slice(&7u32.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        // An ack, then ENOENT with a capped echo and an extended-ack message.
        for (errno, text) in [(0i32, None), (-2, Some("no such family"))] {
            let mut body = errno.to_ne_bytes().to_vec();
            body.extend_from_slice(&request(0x10, 1, 7, 3, 1, |_| {})[..NLMSG_HDRLEN]);
            let mut flags = 0;
            if let Some(t) = text {
                flags = NLM_F_ACK_TLVS | NLM_F_CAPPED;
                AttrWriter::new(&mut body).string(NLMSGERR_ATTR_MSG, t);
            }
            buf.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
            buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            buf.extend_from_slice(&flags.to_ne_bytes());
            buf.extend_from_slice(&7u32.to_ne_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&body);
        }
        let msgs: Vec<_> = Messages::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 4);
        assert!(msgs.iter().all(|m| m.seq == 7));
        let Reply::Data { cmd: 1, attrs } = msgs[0].reply else {
            panic!("{:?}", msgs[0])
        };
        let attr = Attrs::new(attrs).next().unwrap().unwrap();
        assert_eq!((attr.ty, attr.u32().unwrap()), (5, 9));
        assert_eq!(msgs[1].reply, Reply::Done);
        assert_eq!(msgs[2].reply, Reply::Ack);
        assert_eq!(
            msgs[3].reply,
            Reply::Error {
                errno: 2,
                message: Some("no such family".into())
            }
        );
    }

    #[test]
    fn rejects_truncated_and_overlong_messages() {
        let good = request(0x1d, 0, 1, 1, 1, |_| {});
        assert_eq!(
            Messages::new(&good[..10]).next(),
            Some(Err(DecodeError::Truncated { what: "nlmsghdr" }))
        );
        let mut long = good.clone();
        long[0] = 200;
        assert_eq!(
            Messages::new(&long).next(),
            Some(Err(DecodeError::BadMessageLength(200)))
        );
        let mut no_genl = good[..NLMSG_HDRLEN].to_vec();
        no_genl[0] = NLMSG_HDRLEN as u8;
        assert_eq!(
            Messages::new(&no_genl).next(),
            Some(Err(DecodeError::Truncated { what: "genlmsghdr" }))
        );
    }
}
