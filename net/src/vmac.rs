//! VRRP virtual-MAC interfaces (keepalived's `use_vmac`): a macvlan on the physical interface
//! carrying the virtual router MAC `00:00:5e:00:01:<vrid>` (IPv4) or `00:00:5e:00:02:<vrid>`
//! (IPv6) of RFC 5798 §7.3, so that a failover moves the MAC with the VIP and neighbours need no
//! ARP update at all.
//!
//! Set up as keepalived does it, because every step matters on a shared LAN:
//!
//! - `private` mode: the macvlan talks to the wire only, never to its parent or siblings.
//! - Created down; IPv6 address generation set to `none` (and, for an IPv4 vmac, IPv6 disabled)
//!   before it comes up. Otherwise the backup's vmac, which exists too, would send DAD and MLD
//!   frames from the virtual MAC and switches would learn it on the backup's port.
//! - IPv4 settings of the vmac: `arp_ignore=1` (never answer ARP for the parent's addresses
//!   with the virtual MAC), `accept_local=1`, `rp_filter=0` (it receives for addresses routed
//!   via the parent). The parent needs `arp_ignore=1` and `arp_filter=1` so that only the vmac
//!   answers for the VIPs: see [`Rtnl::quiet_parent_arp`].
//! - IPv6: the parent's link-local address is added to the vmac (without DAD), so that adverts
//!   leave from the vmac with the parent's link-local source (RFC 5798 §5.1.2.1).
//!
//! The IPv4 settings go over netlink (`IFLA_INET_CONF`), so they work where /proc/sys is
//! read-only; only `disable_ipv6` has no netlink form and is best effort. Like every call here
//! they act in the network namespace of the calling thread.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_core::DefaultNla;
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoKind, LinkAttribute, LinkInfo,
    LinkMessage, MacVlanMode,
};
use rtnetlink::{LinkMacVlan, LinkUnspec};

use crate::addr::Vip;
use crate::error::NetError;
use crate::iface::MacAddr;
use crate::netlink::Rtnl;
use crate::vrrp_socket::Family;

/// keepalived's naming: `vrrp.<vrid>` for IPv4 and `vrrp6.<vrid>` for IPv6.
pub fn vmac_name(vrid: u8, ipv6: bool) -> String {
    if ipv6 {
        format!("vrrp6.{vrid}")
    } else {
        format!("vrrp.{vrid}")
    }
}

/// The parent's ARP settings before [`Rtnl::quiet_parent_arp`] changed them, for restoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentArp {
    /// `net.ipv4.conf.<parent>.arp_ignore` as found.
    pub arp_ignore: u32,
    /// `net.ipv4.conf.<parent>.arp_filter` as found.
    pub arp_filter: u32,
}

/// `IPV4_DEVCONF_*` indices (`linux/ip.h`) of the settings a vmac and its parent need.
const DEVCONF_RP_FILTER: u16 = 8;
const DEVCONF_ARPFILTER: u16 = 13;
const DEVCONF_ARP_IGNORE: u16 = 19;
const DEVCONF_ACCEPT_LOCAL: u16 = 23;
/// `IFLA_INET_CONF` inside `IFLA_AF_SPEC`/`AF_INET`.
const IFLA_INET_CONF: u16 = 1;
const NLA_F_NESTED: u16 = 1 << 15;

impl Rtnl {
    /// Creates the macvlan `name` with MAC `mac` on interface `parent` for adverts of `family`,
    /// configures it (see the module documentation) and sets it up. Returns its index. An
    /// existing interface of that name is an error (`EEXIST`): it may not be ours. On failure
    /// after creation the half-made interface is deleted again.
    pub async fn create_vmac(
        &self,
        parent: u32,
        name: &str,
        mac: MacAddr,
        family: Family,
    ) -> Result<u32, NetError> {
        let op = || format!("create macvlan {name} ({mac}) on ifindex {parent}");
        let message = LinkMacVlan::new(name, parent, MacVlanMode::Private)
            .address(mac.0.to_vec())
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| NetError::netlink(op(), e))?;
        let index = self
            .link_index(name)
            .await?
            .ok_or_else(|| NetError::NoSuchInterface(name.to_owned()))?;
        match self.configure_vmac(index, parent, name, family).await {
            Ok(()) => Ok(index),
            Err(e) => {
                let _ = self.handle.link().del(index).execute().await;
                Err(e)
            }
        }
    }

    async fn configure_vmac(
        &self,
        index: u32,
        parent: u32,
        name: &str,
        family: Family,
    ) -> Result<(), NetError> {
        // The kernel ignores IFLA_AF_SPEC when creating a link, hence a second message, which
        // must come before the link is up (keepalived does the same).
        let no_autoconf = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]))
            .build();
        let ipv6_available = match self.handle.link().set(no_autoconf).execute().await {
            Ok(()) => true,
            // No IPv6 in this kernel or namespace: nothing can autoconfigure either.
            Err(e) if family == Family::V4 => {
                tracing::debug!(vmac = name, error = %e, "cannot set addr_gen_mode none");
                false
            }
            Err(e) => {
                return Err(NetError::netlink(
                    format!("set addr_gen_mode none on {name}"),
                    e,
                ));
            }
        };
        self.set_ipv4_devconf(
            index,
            name,
            &[
                (DEVCONF_ARP_IGNORE, 1),
                (DEVCONF_ACCEPT_LOCAL, 1),
                (DEVCONF_RP_FILTER, 0),
            ],
        )
        .await?;
        if family == Family::V4 && ipv6_available {
            // Belt and braces: without generated addresses IPv6 is silent already. Only a sysctl
            // can do this, and /proc/sys may be read-only (systemd's ProtectKernelTunables).
            if let Err(e) = write_sysctl("ipv6", name, "disable_ipv6", 1) {
                tracing::debug!(vmac = name, error = %e, "cannot disable IPv6");
            }
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("set {name} up"), e))?;
        if family == Family::V6 {
            let link_local =
                self.link_local_v6(parent)
                    .await?
                    .ok_or_else(|| NetError::NoAddress {
                        iface: format!("ifindex {parent}"),
                        what: "IPv6 link-local address",
                    })?;
            self.add_address(index, &Vip::new(IpAddr::V6(link_local), 64))
                .await?;
        }
        Ok(())
    }

    /// Sets `arp_ignore=1` and `arp_filter=1` on interface `parent`, so that it no longer
    /// answers ARP requests for the addresses of its vmacs with its own MAC. Returns the
    /// previous values, for [`Rtnl::restore_parent_arp`].
    pub async fn quiet_parent_arp(&self, parent: u32) -> Result<ParentArp, NetError> {
        let name = format!("ifindex {parent}");
        let before = self.ipv4_devconf(parent).await?;
        self.set_ipv4_devconf(
            parent,
            &name,
            &[(DEVCONF_ARP_IGNORE, 1), (DEVCONF_ARPFILTER, 1)],
        )
        .await?;
        Ok(before)
    }

    /// Puts back what [`Rtnl::quiet_parent_arp`] found.
    pub async fn restore_parent_arp(&self, parent: u32, before: ParentArp) -> Result<(), NetError> {
        let name = format!("ifindex {parent}");
        self.set_ipv4_devconf(
            parent,
            &name,
            &[
                (DEVCONF_ARP_IGNORE, before.arp_ignore),
                (DEVCONF_ARPFILTER, before.arp_filter),
            ],
        )
        .await
    }

    /// The parent's current ARP settings.
    async fn ipv4_devconf(&self, index: u32) -> Result<ParentArp, NetError> {
        let op = || format!("read IPv4 settings of ifindex {index}");
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::netlink(op(), e))?;
        links
            .iter()
            .flat_map(|l| &l.attributes)
            .find_map(|a| match a {
                LinkAttribute::AfSpecUnspec(specs) => specs.iter().find_map(|s| match s {
                    AfSpecUnspec::Inet(inet) => inet.iter().find_map(|i| match i {
                        AfSpecInet::DevConf(conf) => Some(ParentArp {
                            arp_ignore: u32::try_from(conf.arp_ignore).unwrap_or(0),
                            arp_filter: u32::try_from(conf.arpfilter).unwrap_or(0),
                        }),
                        _ => None,
                    }),
                    _ => None,
                }),
                _ => None,
            })
            .ok_or_else(|| NetError::NoAddress {
                iface: format!("ifindex {index}"),
                what: "IPv4 configuration",
            })
    }

    /// Sets IPv4 per-interface settings (`net.ipv4.conf.<if>.*`) over netlink, as `ip` cannot
    /// but keepalived does: unlike /proc/sys, this works under systemd's
    /// `ProtectKernelTunables=`. Only the listed settings change.
    async fn set_ipv4_devconf(
        &self,
        index: u32,
        name: &str,
        settings: &[(u16, u32)],
    ) -> Result<(), NetError> {
        let mut nested = Vec::with_capacity(settings.len() * 8);
        for &(kind, value) in settings {
            nested.extend_from_slice(&8u16.to_ne_bytes());
            nested.extend_from_slice(&kind.to_ne_bytes());
            nested.extend_from_slice(&value.to_ne_bytes());
        }
        let conf = AfSpecInet::Other(DefaultNla::new(IFLA_INET_CONF | NLA_F_NESTED, nested));
        let message = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                conf,
            ])]))
            .build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("set IPv4 settings of {name}"), e))
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

    /// Deletes `name` if it is a macvlan, as a crashed run leaves its vmac behind. Returns
    /// whether it was deleted. An interface of that name that is not a macvlan is not ours to
    /// delete: that is an error.
    pub async fn delete_leftover_vmac(&self, name: &str) -> Result<bool, NetError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        if !is_macvlan(&link) {
            return Err(NetError::Invalid(format!(
                "interface {name} exists and is not a macvlan: refusing to use or delete it as a virtual MAC interface"
            )));
        }
        self.delete_vmac(name).await
    }

    /// The index of interface `name`, if it exists.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        Ok(self.link(name).await?.map(|l| l.header.index))
    }

    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let found: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_collect()
            .await;
        match found {
            Ok(links) => Ok(links.into_iter().next()),
            Err(e) => match NetError::netlink(format!("look up link {name}"), e) {
                err if err.raw_os_error() == Some(libc::ENODEV) => Ok(None),
                err => Err(err),
            },
        }
    }
}

fn is_macvlan(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::MacVlan))),
        _ => false,
    })
}

fn sysctl_path(family: &str, interface: &str, key: &str) -> Result<String, NetError> {
    // Interface names cannot contain '/', but a config or a caller might try.
    if interface.is_empty() || interface.contains('/') || interface == "." || interface == ".." {
        return Err(NetError::Invalid(format!("interface name {interface:?}")));
    }
    Ok(format!("/proc/sys/net/{family}/conf/{interface}/{key}"))
}

fn write_sysctl(family: &str, interface: &str, key: &str, value: u8) -> Result<(), NetError> {
    let path = sysctl_path(family, interface, key)?;
    std::fs::write(&path, value.to_string()).map_err(|e| NetError::io("write sysctl", interface, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_keepalived() {
        assert_eq!(vmac_name(7, false), "vrrp.7");
        assert_eq!(vmac_name(255, true), "vrrp6.255");
    }

    #[test]
    fn sysctl_paths_refuse_names_that_escape_the_directory() {
        assert_eq!(
            sysctl_path("ipv4", "vrrp.7", "arp_ignore").ok().as_deref(),
            Some("/proc/sys/net/ipv4/conf/vrrp.7/arp_ignore")
        );
        for bad in ["", "..", ".", "a/b"] {
            assert!(sysctl_path("ipv4", bad, "arp_ignore").is_err(), "{bad:?}");
        }
    }
}
