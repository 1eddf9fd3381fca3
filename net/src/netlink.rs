//! [`Rtnl`]: a route-netlink connection for address and link requests.

use crate::error::NetError;

/// A route-netlink (rtnetlink) connection. Cheap to clone; requests from clones share it.
///
/// The socket lives in the network namespace of the thread that called [`Rtnl::connect`]; the
/// connection task runs on the tokio runtime and ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Rtnl {
    pub(crate) handle: rtnetlink::Handle,
}

impl Rtnl {
    /// Opens the connection and spawns its I/O task. Must run inside a tokio runtime.
    pub fn connect() -> Result<Self, NetError> {
        require_runtime("open route netlink socket")?;
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|source| NetError::Netlink {
                op: "open route netlink socket".to_owned(),
                source,
            })?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }
}

/// An error instead of the panic that registering a socket or spawning a task outside a tokio
/// runtime would cause.
pub(crate) fn require_runtime(op: &str) -> Result<(), NetError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(NetError::NoRuntime(op.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(Rtnl::connect(), Err(NetError::NoRuntime(_))));
    }
}
