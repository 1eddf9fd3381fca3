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

/// Data stored inside the node up to this many bytes, boxed beyond.
pub(crate) const INLINE_DATA: usize = 22;

/// A node's data: small values (counters, ids, flags) inside the node, larger ones in an exact
/// boxed slice. Inline storage saves a heap allocation (32 bytes with glibc) per small znode.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Data {
    Inline { len: u8, bytes: [u8; INLINE_DATA] },
    Boxed(Box<[u8]>),
}

impl Default for Data {
    fn default() -> Self {
        Data::Inline {
            len: 0,
            bytes: [0; INLINE_DATA],
        }
    }
}

impl From<&[u8]> for Data {
    fn from(v: &[u8]) -> Self {
        if v.len() <= INLINE_DATA {
            let mut bytes = [0; INLINE_DATA];
            bytes[..v.len()].copy_from_slice(v);
            Data::Inline {
                len: v.len() as u8,
                bytes,
            }
        } else {
            Data::Boxed(v.into())
        }
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_DATA {
            Data::from(v.as_slice())
        } else {
            Data::Boxed(v.into_boxed_slice())
        }
    }
}

impl std::ops::Deref for Data {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Data::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Data::Boxed(b) => b,
        }
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A znode as stored. Field order and widths are chosen for size: a million of these must fit in
/// a few hundred megabytes, so there is no child set and no path here (see [`super::key`]) and
/// small data is stored inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub(crate) data: Data,
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
    pub(crate) fn new(data: Data, kind: NodeKind, zxid: u64, time: u64) -> Node {
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
fn ser_bytes<S: Serializer>(data: &Data, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(data)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
    struct BytesVisitor;
    impl<'de> serde::de::Visitor<'de> for BytesVisitor {
        type Value = Data;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(Data::from(v))
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(Data::from(v))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_DATA_LEN));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Data::from(out))
        }
    }
    d.deserialize_bytes(BytesVisitor)
}

#[cfg(test)]
mod tests {
    use super::{Data, INLINE_DATA, Node};

    #[test]
    fn data_is_inline_when_small_and_reads_back_either_way() {
        for len in [0, 1, INLINE_DATA, INLINE_DATA + 1, 1000] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let d = Data::from(v.clone());
            assert_eq!(&*d, v.as_slice());
            assert_eq!(
                matches!(d, Data::Inline { .. }),
                len <= INLINE_DATA,
                "{len}"
            );
            assert_eq!(Data::from(v.as_slice()), d);
        }
    }

    #[test]
    fn node_stays_small() {
        // The million-znode memory budget assumes this (data of up to 22 bytes included); a new
        // field must justify its bytes.
        assert!(
            std::mem::size_of::<Node>() <= 96,
            "{}",
            std::mem::size_of::<Node>()
        );
    }
}
