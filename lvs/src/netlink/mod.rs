//! The IPVS generic-netlink protocol, sans I/O: building requests and decoding replies.
//!
//! Layout:
//! - `consts`: numbers from the uapi headers (`ip_vs.h`, `genetlink.h`, `netlink.h`).
//! - `attr`: netlink attribute writer and reader.
//! - `message`: `nlmsghdr` + `genlmsghdr` framing, acks, errors, dump ends.
//! - `ipvs`: IPVS commands and the service / destination / stats attribute sets.
//! - `ctrl`: the nlctrl `CTRL_CMD_GETFAMILY` lookup of the "IPVS" family id.
//!
//! The socket itself lives in [`crate::NetlinkIpvs`].

pub(crate) mod attr;
pub(crate) mod consts;
pub(crate) mod ctrl;
pub(crate) mod ipvs;
pub(crate) mod message;

/// A reply from the kernel that vigil could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended inside a header.
    #[error("truncated {what}")]
    Truncated {
        /// Which header.
        what: &'static str,
    },
    /// A netlink message length outside the datagram.
    #[error("netlink message length {0} does not fit the datagram")]
    BadMessageLength(usize),
    /// An attribute length that is impossible or too short for its type.
    #[error("attribute {attr} has bad length {len}")]
    BadLength {
        /// Attribute type.
        attr: u16,
        /// Its length.
        len: usize,
    },
    /// A string attribute that is not UTF-8.
    #[error("attribute {attr} is not a valid string")]
    BadString {
        /// Attribute type.
        attr: u16,
    },
    /// A required attribute is absent.
    #[error("missing attribute {0}")]
    Missing(&'static str),
    /// An address family other than AF_INET / AF_INET6.
    #[error("unknown address family {0}")]
    UnknownFamily(u16),
    /// A service protocol vigil does not model (IPVS also knows AH/ESP).
    #[error("unknown service protocol {0}")]
    UnknownProtocol(u16),
    /// A forwarding method outside `IP_VS_CONN_F_FWD_MASK`'s known values.
    #[error("unknown forwarding method {0}")]
    UnknownForwarding(u32),
    /// A tunnel type vigil does not know.
    #[error("unknown tunnel type {0}")]
    UnknownTunnel(u8),
}
