//! Virtual-address management over rtnetlink: add, refresh, remove and list addresses.
//!
//! VIPs may carry a kernel-enforced lifetime ([`Lifetime::Lease`], `IFA_CACHEINFO`): the
//! split-brain protection keeps a VIP only while the node holds its quorum lease, and a crashed
//! or frozen daemon's VIP then disappears by itself. Adding uses `NLM_F_REPLACE`, so adding an
//! address that is already there succeeds and sets the lifetime given; a refresh is the same
//! request. IPv6 addresses are added with `IFA_F_NODAD`: a VIP moving
//! between routers must be usable at once, not after duplicate address detection.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};

use crate::error::NetError;
use crate::netlink::Rtnl;

/// The kernel's "forever" lifetime value.
const INFINITY_LIFE_TIME: u32 = u32::MAX;
/// Longest label the kernel stores (`IFNAMSIZ` minus the terminating NUL).
const MAX_LABEL: usize = 15;

/// How long an address stays on the interface without a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lifetime {
    /// Until removed.
    #[default]
    Forever,
    /// Until this much time has passed since the last add or refresh; the kernel removes it
    /// then. Whole seconds, rounded up; at least one second.
    Lease(Duration),
}

impl Lifetime {
    fn cache_info(self) -> CacheInfo {
        let secs = match self {
            Lifetime::Forever => INFINITY_LIFE_TIME,
            // Rounded up so that a lease is never shorter than asked; capped below "forever".
            Lifetime::Lease(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                u32::try_from(secs.max(1))
                    .map_or(INFINITY_LIFE_TIME - 1, |s| s.min(INFINITY_LIFE_TIME - 1))
            }
        };
        let mut info = CacheInfo::default();
        info.ifa_valid = secs;
        info.ifa_preferred = secs;
        info
    }
}

/// A virtual address to put on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (`/32` or `/24` for IPv4, `/128` or `/64` for IPv6).
    pub prefix_len: u8,
    /// IPv4 only: the label `ip addr` shows (`eth0:vip`), at most 15 bytes.
    pub label: Option<String>,
    /// Kernel-enforced lifetime.
    pub lifetime: Lifetime,
}

impl Vip {
    /// `addr/prefix_len`, no label, no lifetime.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Self {
        Self {
            addr,
            prefix_len,
            label: None,
            lifetime: Lifetime::Forever,
        }
    }

    fn validate(&self) -> Result<(), NetError> {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(NetError::Invalid(format!(
                "prefix /{} for {}",
                self.prefix_len, self.addr
            )));
        }
        if let Some(label) = &self.label {
            if self.addr.is_ipv6() {
                return Err(NetError::Invalid(format!(
                    "label {label:?} on IPv6 address {}: the kernel keeps labels for IPv4 only",
                    self.addr
                )));
            }
            if label.is_empty() || label.len() > MAX_LABEL || label.contains('\0') {
                return Err(NetError::Invalid(format!(
                    "label {label:?}: 1 to {MAX_LABEL} bytes, no NUL"
                )));
            }
        }
        Ok(())
    }
}

/// One address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressInfo {
    /// The interface's own address (`IFA_LOCAL` for IPv4, `IFA_ADDRESS` for IPv6).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// IPv4 label; the kernel reports the interface name for an address added without one.
    pub label: Option<String>,
    /// Duplicate address detection has not finished (IPv6); the address is not usable yet.
    pub tentative: bool,
    /// Duplicate address detection found a conflict (IPv6).
    pub dad_failed: bool,
    /// Added with `IFA_F_NODAD`.
    pub nodad: bool,
    /// Configured by hand (or by us), not by autoconfiguration.
    pub permanent: bool,
    /// Remaining valid lifetime; `None` = forever.
    pub valid_lft: Option<Duration>,
    /// Remaining preferred lifetime; `None` = forever.
    pub preferred_lft: Option<Duration>,
}

impl Rtnl {
    /// Adds `vip` to interface `ifindex`, or, when it is already there, restarts its lifetime
    /// (the kernel keeps an existing address's label).
    pub async fn add_address(&self, ifindex: u32, vip: &Vip) -> Result<(), NetError> {
        vip.validate()?;
        let op = || {
            format!(
                "add address {}/{} on ifindex {ifindex}",
                vip.addr, vip.prefix_len
            )
        };
        let mut request = self
            .handle
            .address()
            .add(ifindex, vip.addr, vip.prefix_len)
            .replace();
        let message = request.message_mut();
        if let Some(label) = &vip.label {
            message
                .attributes
                .push(AddressAttribute::Label(label.clone()));
        }
        message
            .attributes
            .push(AddressAttribute::CacheInfo(vip.lifetime.cache_info()));
        if vip.addr.is_ipv6() {
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) => match NetError::netlink(op(), e) {
                // Only without NLM_F_REPLACE in practice; the address is there as asked.
                err if err.raw_os_error() == Some(libc::EEXIST) => Ok(()),
                err => Err(err),
            },
        }
    }

    /// Restarts the lifetime of `vip` (a lease renewal). Re-creates the address if it has
    /// already expired: a daemon that refreshes holds the lease, so the address belongs there.
    pub async fn refresh_lifetime(&self, ifindex: u32, vip: &Vip) -> Result<(), NetError> {
        self.add_address(ifindex, vip).await
    }

    /// Removes `addr/prefix_len` from interface `ifindex`. Returns whether it was there.
    pub async fn remove_address(
        &self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<bool, NetError> {
        let mut message = AddressMessage::default();
        message.header.index = ifindex;
        message.header.prefix_len = prefix_len;
        message.header.family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        message.attributes.push(AddressAttribute::Local(addr));
        message.attributes.push(AddressAttribute::Address(addr));
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(true),
            Err(e) => {
                let err = NetError::netlink(
                    format!("remove address {addr}/{prefix_len} on ifindex {ifindex}"),
                    e,
                );
                match err.raw_os_error() {
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ESRCH) => Ok(false),
                    _ => Err(err),
                }
            }
        }
    }

    /// Every address on interface `ifindex`, e.g. to clean up VIPs a crashed run left behind.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<AddressInfo>, NetError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::netlink(format!("list addresses of ifindex {ifindex}"), e))?;
        Ok(messages.iter().filter_map(address_info).collect())
    }

    /// The usable (not tentative, not DAD-failed) IPv6 link-local address of `ifindex`.
    pub async fn link_local_v6(&self, ifindex: u32) -> Result<Option<Ipv6Addr>, NetError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .into_iter()
            .find_map(|info| match info.addr {
                IpAddr::V6(v6)
                    if v6.is_unicast_link_local() && !info.tentative && !info.dad_failed =>
                {
                    Some(v6)
                }
                _ => None,
            }))
    }
}

fn address_info(message: &AddressMessage) -> Option<AddressInfo> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut cache = None;
    // IFA_FLAGS carries all 32 flag bits; the header byte only the low eight.
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::CacheInfo(c) => cache = Some(*c),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    let lifetime =
        |secs: u32| (secs != INFINITY_LIFE_TIME).then(|| Duration::from_secs(u64::from(secs)));
    Some(AddressInfo {
        addr: local.or(address)?,
        prefix_len: message.header.prefix_len,
        label,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
        nodad: flags.contains(AddressFlags::Nodad),
        permanent: flags.contains(AddressFlags::Permanent),
        valid_lft: cache.and_then(|c| lifetime(c.ifa_valid)),
        preferred_lft: cache.and_then(|c| lifetime(c.ifa_preferred)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_up_to_whole_seconds_and_forever_is_infinity() {
        assert_eq!(Lifetime::Forever.cache_info().ifa_valid, INFINITY_LIFE_TIME);
        let lease = Lifetime::Lease(Duration::from_millis(2_100)).cache_info();
        assert_eq!((lease.ifa_valid, lease.ifa_preferred), (3, 3));
        assert_eq!(Lifetime::Lease(Duration::ZERO).cache_info().ifa_valid, 1);
        assert_eq!(
            Lifetime::Lease(Duration::from_secs(u64::MAX))
                .cache_info()
                .ifa_valid,
            INFINITY_LIFE_TIME - 1
        );
    }

    #[test]
    fn invalid_vips_are_refused_before_the_kernel_sees_them() {
        let v4 = "10.0.0.100".parse().unwrap();
        let v6 = "fd00::100".parse().unwrap();
        assert!(Vip::new(v4, 33).validate().is_err());
        assert!(Vip::new(v6, 128).validate().is_ok());
        let labelled = |addr, label: &str| Vip {
            label: Some(label.to_owned()),
            ..Vip::new(addr, 24)
        };
        assert!(labelled(v4, "vnet0:vip").validate().is_ok());
        assert!(labelled(v4, "a-label-far-too-long").validate().is_err());
        assert!(labelled(v6, "vnet0:vip").validate().is_err());
    }
}
