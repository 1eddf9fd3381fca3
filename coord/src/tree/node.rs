//! One znode: its data, its counters and its kind.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Stat;
use crate::session::SessionId;

/// Largest data a node may hold, as in ZooKeeper (`jute.maxbuffer` default).
pub const MAX_DATA_LEN: usize = 1024 * 1024;

/// Largest TTL ZooKeeper accepts (`EphemeralType.MAX_TTL`, 2^40 - 1 ms).
pub const MAX_TTL_MS: u64 = 0xFF_FFFF_FFFF;

/// What kind of node this is; decides who removes it and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Stays until deleted.
    Persistent,
    /// Deleted when its owning session ends; may not have children.
    Ephemeral(SessionId),
    /// Deleted by the leader's cleanup once it had children and has none left.
    Container,
    /// Deleted by the leader's cleanup when it has no children and was not modified for this
    /// many milliseconds.
    Ttl(u64),
}

/// A znode as stored. Field order and widths are chosen for size: a million of these must fit in
/// a few hundred megabytes, so there is no child set here (see [`super::key`]) and the data is a
/// boxed slice (no spare capacity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub(crate) data: Box<[u8]>,
    pub(crate) czxid: u64,
    pub(crate) mzxid: u64,
    pub(crate) pzxid: u64,
    pub(crate) ctime: u64,
    pub(crate) mtime: u64,
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) num_children: u32,
    pub(crate) kind: NodeKind,
}

impl Node {
    /// A node created at `zxid`/`time`.
    pub(crate) fn new(data: Box<[u8]>, kind: NodeKind, zxid: u64, time: u64) -> Node {
        Node {
            data,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            num_children: 0,
            kind,
        }
    }

    pub(crate) fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: match self.kind {
                NodeKind::Ephemeral(owner) => owner.0,
                _ => 0,
            },
            data_length: self.data.len() as u32,
            num_children: self.num_children,
        }
    }
}

/// Data as one byte string: serde's default for `Box<[u8]>` is a sequence of `u8`, which costs a
/// visitor call per byte when a snapshot of a million nodes is written or read.
fn ser_bytes<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(data)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u8]>, D::Error> {
    struct BytesVisitor;
    impl<'de> serde::de::Visitor<'de> for BytesVisitor {
        type Value = Box<[u8]>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(v.into())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(v.into_boxed_slice())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_DATA_LEN));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out.into_boxed_slice())
        }
    }
    d.deserialize_bytes(BytesVisitor)
}

#[cfg(test)]
mod tests {
    use super::Node;

    #[test]
    fn node_stays_small() {
        // The million-znode memory budget assumes this; a new field must justify its bytes.
        assert!(
            std::mem::size_of::<Node>() <= 88,
            "{}",
            std::mem::size_of::<Node>()
        );
    }
}
