//! Interface facts read synchronously from the kernel of the calling thread's network namespace:
//! index, addresses, link-local address, MAC.
//!
//! These use `getifaddrs(3)` (a netlink dump under the hood) so that socket constructors can run
//! without a tokio runtime. The async, flag-aware listing used for VIP management is
//! [`crate::Rtnl::addresses`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use nix::ifaddrs::getifaddrs;

use crate::error::NetError;

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The IPv4 VRRP virtual router MAC `00:00:5e:00:01:<vrid>` (RFC 5798 §7.3).
    pub const fn vrrp_v4(vrid: u8) -> Self {
        Self([0x00, 0x00, 0x5e, 0x00, 0x01, vrid])
    }

    /// The IPv6 VRRP virtual router MAC `00:00:5e:00:02:<vrid>` (RFC 5798 §7.3).
    pub const fn vrrp_v6(vrid: u8) -> Self {
        Self([0x00, 0x00, 0x5e, 0x00, 0x02, vrid])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ":" };
            write!(f, "{sep}{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for MacAddr {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || NetError::Invalid(format!("{s:?} is not a MAC address"));
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(out))
    }
}

/// The index of interface `name`.
pub fn ifindex(name: &str) -> Result<u32, NetError> {
    nix::net::if_::if_nametoindex(name).map_err(|_| NetError::NoSuchInterface(name.to_owned()))
}

/// Every IP address configured on interface `name`, in kernel order (the primary IPv4 address
/// first).
pub fn addresses(name: &str) -> Result<Vec<IpAddr>, NetError> {
    let all = getifaddrs().map_err(|e| NetError::io("getifaddrs", name, e))?;
    Ok(all
        .filter(|entry| entry.interface_name == name)
        .filter_map(|entry| entry.address)
        .filter_map(|addr| {
            if let Some(v4) = addr.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

/// The primary IPv4 address of `name`: the source of VRRPv2/v3 IPv4 adverts (RFC 5798 §5.1.1.1).
pub fn primary_ipv4(name: &str) -> Result<Ipv4Addr, NetError> {
    addresses(name)?
        .into_iter()
        .find_map(|addr| match addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| NetError::NoAddress {
            iface: name.to_owned(),
            what: "IPv4 address",
        })
}

/// The IPv6 link-local address of `name`: the source of IPv6 adverts (RFC 5798 §5.1.2.1).
pub fn link_local_v6(name: &str) -> Result<Ipv6Addr, NetError> {
    addresses(name)?
        .into_iter()
        .find_map(|addr| match addr {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
            _ => None,
        })
        .ok_or_else(|| NetError::NoAddress {
            iface: name.to_owned(),
            what: "IPv6 link-local address",
        })
}

/// The MAC address of `name`.
pub fn mac(name: &str) -> Result<MacAddr, NetError> {
    let all = getifaddrs().map_err(|e| NetError::io("getifaddrs", name, e))?;
    all.filter(|entry| entry.interface_name == name)
        .filter_map(|entry| entry.address)
        .find_map(|addr| {
            addr.as_link_addr()
                .and_then(nix::sys::socket::LinkAddr::addr)
        })
        .map(MacAddr)
        .ok_or_else(|| NetError::NoAddress {
            iface: name.to_owned(),
            what: "MAC address",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_text() {
        let mac: MacAddr = "00:00:5e:00:01:2a".parse().unwrap();
        assert_eq!(mac, MacAddr::vrrp_v4(42));
        assert_eq!(mac.to_string(), "00:00:5e:00:01:2a");
        assert_eq!(MacAddr::vrrp_v6(1).to_string(), "00:00:5e:00:02:01");
    }

    #[test]
    fn malformed_macs_are_refused() {
        for bad in [
            "",
            "00:00:5e:00:01",
            "00:00:5e:00:01:2a:00",
            "0:00:5e:00:01:2a",
            "zz:00:5e:00:01:2a",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_found_and_unknown_names_are_errors() {
        assert!(ifindex("lo").is_ok_and(|i| i > 0));
        assert!(matches!(
            ifindex("no-such-if0"),
            Err(NetError::NoSuchInterface(_))
        ));
        assert_eq!(primary_ipv4("lo").ok(), Some(Ipv4Addr::LOCALHOST));
    }
}
