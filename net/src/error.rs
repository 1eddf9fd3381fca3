//! [`NetError`]: every way the network I/O of this crate can fail.

use std::io;

/// A failed socket, netlink or interface operation, with the interface or address it was about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// No interface of that name exists (in this network namespace).
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    /// The interface has no address usable for the purpose named by `what`.
    #[error("interface {iface} has no {what}")]
    NoAddress {
        /// Interface name.
        iface: String,
        /// What was looked for, e.g. "IPv6 link-local address".
        what: &'static str,
    },
    /// A socket system call failed.
    #[error("{op} on {iface}: {source}")]
    Io {
        /// The operation, e.g. "join 224.0.0.18".
        op: &'static str,
        /// Interface the socket serves.
        iface: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A netlink request failed (the kernel's errno when it sent one).
    #[error("netlink {op}: {source}")]
    Netlink {
        /// The request, e.g. "add address 10.0.0.100/24".
        op: String,
        /// The kernel's error, or a description of a protocol failure.
        #[source]
        source: io::Error,
    },
    /// An async socket or netlink connection was opened outside a tokio runtime.
    #[error("{0}: not inside a tokio runtime")]
    NoRuntime(String),
    /// A caller-supplied value the kernel would refuse (checked before asking it).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A received datagram that cannot be a VRRP packet (bad IP header, truncated, missing
    /// ancillary data). Not fatal: the socket stays usable and the caller counts the drop.
    #[error("malformed packet on {iface}: {reason}")]
    Malformed {
        /// Interface it arrived on.
        iface: String,
        /// Why it was refused.
        reason: String,
    },
}

impl NetError {
    /// Whether the error concerns one packet only, so the caller should count it and carry on
    /// receiving rather than reopen the socket.
    pub fn is_packet_error(&self) -> bool {
        matches!(self, Self::Malformed { .. })
    }

    /// The kernel's errno, when the error carries one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Io { source, .. } | Self::Netlink { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, iface: &str, source: impl Into<io::Error>) -> Self {
        Self::Io {
            op,
            iface: iface.to_owned(),
            source: source.into(),
        }
    }

    pub(crate) fn netlink(op: impl Into<String>, error: rtnetlink::Error) -> Self {
        let source = match error {
            rtnetlink::Error::NetlinkError(message) => message.to_io(),
            other => io::Error::other(other.to_string()),
        };
        Self::Netlink {
            op: op.into(),
            source,
        }
    }
}
