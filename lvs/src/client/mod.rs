//! The [`Ipvs`] trait (what the reconciler needs from a kernel table) and its two
//! implementations: [`NetlinkIpvs`] talks to the kernel, [`FakeIpvs`] is an in-memory table with
//! the kernel's error semantics, for tests.
//!
//! The trait is synchronous: each call is one netlink round trip to the local kernel, which
//! answers at once, so an async wrapper would only add machinery. The daemon calls it from a
//! blocking task.

mod fake;
mod netlink;

pub use fake::FakeIpvs;
pub use netlink::{IpvsInfo, NetlinkIpvs};

use crate::model::{DestKey, Destination, Service, ServiceKey, Table};
use crate::netlink::DecodeError;

/// The kernel's IPVS table, as a set of edit operations.
///
/// Errors mirror the kernel's: adding what exists is `EEXIST`, editing or deleting a service that
/// does not exist is `ESRCH`, a missing destination is `ENOENT` (see [`LvsError::errno`]).
pub trait Ipvs {
    /// Reads every service (all owners) with its destinations.
    fn table(&mut self) -> Result<Table, LvsError>;
    /// `ipvsadm -A`.
    fn add_service(&mut self, svc: &Service) -> Result<(), LvsError>;
    /// `ipvsadm -E`: scheduler, flags, persistence of an existing service.
    fn edit_service(&mut self, svc: &Service) -> Result<(), LvsError>;
    /// `ipvsadm -D`, destinations included.
    fn del_service(&mut self, key: &ServiceKey) -> Result<(), LvsError>;
    /// `ipvsadm -a`.
    fn add_dest(&mut self, svc: &ServiceKey, dest: &Destination) -> Result<(), LvsError>;
    /// `ipvsadm -e`: weight, forwarding, thresholds of an existing destination.
    fn edit_dest(&mut self, svc: &ServiceKey, dest: &Destination) -> Result<(), LvsError>;
    /// `ipvsadm -d`.
    fn del_dest(&mut self, svc: &ServiceKey, dest: &DestKey) -> Result<(), LvsError>;
}

/// Why an IPVS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LvsError {
    /// The generic-netlink family "IPVS" is not registered.
    #[error("kernel has no IPVS (modprobe ip_vs?)")]
    NoIpvs,
    /// The netlink socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused a request.
    #[error("{request}: {}{}", std::io::Error::from_raw_os_error(*.errno), ext_ack(.message.as_deref()))]
    Kernel {
        /// What was asked, e.g. `add dest 10.0.0.2:80 to tcp 10.0.0.1:80`.
        request: String,
        /// The positive errno.
        errno: i32,
        /// The kernel's extended-ack message, if it gave one.
        message: Option<String>,
    },
    /// A reply vigil could not decode.
    #[error("bad reply to {request}: {source}")]
    Decode {
        /// What was asked.
        request: String,
        /// What was wrong with the reply.
        source: DecodeError,
    },
    /// The socket closed or a reply never finished.
    #[error("{request}: {what}")]
    Protocol {
        /// What was asked.
        request: String,
        /// What went wrong.
        what: &'static str,
    },
}

fn ext_ack(message: Option<&str>) -> String {
    message.map(|m| format!(" ({m})")).unwrap_or_default()
}

impl LvsError {
    /// The kernel's errno, for [`LvsError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Human names of requests, shared by both implementations so their errors read the same.
pub(crate) mod describe {
    use crate::model::{DestKey, ServiceKey};

    pub(crate) fn dest(verb: &str, svc: &ServiceKey, dest: &DestKey) -> String {
        let addr = match dest.addr {
            std::net::IpAddr::V4(a) => format!("{a}:{}", dest.port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", dest.port),
        };
        let prep = if verb == "add" { "to" } else { "of" };
        format!("{verb} dest {addr} {prep} {svc}")
    }

    pub(crate) fn service(verb: &str, svc: &ServiceKey) -> String {
        format!("{verb} service {svc}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_reads_like_the_kernel() {
        let e = LvsError::Kernel {
            request: describe::service("add", &ServiceKey::Tcp([10, 0, 0, 1].into(), 80)),
            errno: libc::EEXIST,
            message: None,
        };
        assert!(
            e.to_string()
                .starts_with("add service tcp 10.0.0.1:80: File exists"),
            "{e}"
        );
        assert_eq!(e.errno(), Some(libc::EEXIST));
        let e = LvsError::Kernel {
            request: "x".into(),
            errno: libc::EINVAL,
            message: Some("bad".into()),
        };
        assert!(e.to_string().ends_with("(bad)"), "{e}");
        assert_eq!(
            LvsError::NoIpvs.to_string(),
            "kernel has no IPVS (modprobe ip_vs?)"
        );
    }
}
