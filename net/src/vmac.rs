//! VRRP virtual-MAC interfaces (keepalived's `use_vmac`): a macvlan on the physical interface
//! carrying the virtual router MAC `00:00:5e:00:01:<vrid>` (IPv4) or `00:00:5e:00:02:<vrid>`
//! (IPv6) of RFC 5798 §7.3, so that a failover moves the MAC with the VIP and neighbours need no
//! ARP update at all.
//!
//! The macvlan is created in `private` mode, as keepalived does: it must not talk to its parent
//! or siblings, only to the wire.

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkMessage, MacVlanMode};
use rtnetlink::LinkMacVlan;

use crate::error::NetError;
use crate::iface::MacAddr;
use crate::netlink::Rtnl;

/// keepalived's naming: `vrrp.<vrid>` for IPv4 and `vrrp6.<vrid>` for IPv6.
pub fn vmac_name(vrid: u8, ipv6: bool) -> String {
    if ipv6 {
        format!("vrrp6.{vrid}")
    } else {
        format!("vrrp.{vrid}")
    }
}

impl Rtnl {
    /// Creates the macvlan `name` with MAC `mac` on interface `parent` and sets it up. Returns
    /// its index. An existing interface of that name is an error: it may not be ours.
    pub async fn create_vmac(
        &self,
        parent: u32,
        name: &str,
        mac: MacAddr,
    ) -> Result<u32, NetError> {
        let op = || format!("create macvlan {name} ({mac}) on ifindex {parent}");
        let message = LinkMacVlan::new(name, parent, MacVlanMode::Private)
            .address(mac.0.to_vec())
            .up()
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| NetError::netlink(op(), e))?;
        self.link_index(name)
            .await?
            .ok_or_else(|| NetError::NoSuchInterface(name.to_owned()))
    }

    /// Deletes interface `name`. Returns whether it existed.
    pub async fn delete_vmac(&self, name: &str) -> Result<bool, NetError> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) => match NetError::netlink(format!("delete link {name}"), e) {
                err if err.raw_os_error() == Some(libc::ENODEV) => Ok(false),
                err => Err(err),
            },
        }
    }

    /// The index of interface `name`, if it exists.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        let found: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_collect()
            .await;
        match found {
            Ok(links) => Ok(links.first().map(|l| l.header.index)),
            Err(e) => match NetError::netlink(format!("look up link {name}"), e) {
                err if err.raw_os_error() == Some(libc::ENODEV) => Ok(None),
                err => Err(err),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_keepalived() {
        assert_eq!(vmac_name(7, false), "vrrp.7");
        assert_eq!(vmac_name(255, true), "vrrp6.255");
    }
}
