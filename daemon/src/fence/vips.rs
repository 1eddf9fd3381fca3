//! One fenced instance's VIPs in the kernel: added and refreshed with a lifetime, removed.
//!
//! The fencing task does these calls itself rather than through the instance's VRRP task, so
//! that removal at the lease deadline never waits behind adverts, scripts or a full queue.

use std::time::Duration;

use vigil_conf as conf;
use vigil_net::{Lifetime, NetError, Rtnl, Vip, iface};

/// Where one VIP lives.
#[derive(Debug, Clone)]
struct Place {
    ifindex: u32,
    vip: Vip,
}

/// The VIPs of one instance.
#[derive(Debug, Clone)]
pub(super) struct VipSet {
    places: Vec<Place>,
}

impl VipSet {
    /// Resolves the interfaces of `instance`'s VIPs.
    pub(super) fn resolve(instance: &conf::VrrpInstance) -> Result<VipSet, NetError> {
        let mut places = Vec::new();
        for v in &instance.vips {
            let interface = instance.vip_interface(v);
            places.push(Place {
                ifindex: iface::ifindex(&interface)?,
                vip: Vip {
                    addr: v.addr,
                    prefix_len: v.prefix_len,
                    label: v.label.clone(),
                    lifetime: Lifetime::Forever,
                },
            });
        }
        Ok(VipSet { places })
    }

    /// Adds (or, the same request, refreshes) every VIP with `lifetime`. Returns the errors.
    pub(super) async fn add(&self, rtnl: &Rtnl, lifetime: Duration) -> Vec<String> {
        let mut errors = Vec::new();
        for place in &self.places {
            let vip = Vip {
                lifetime: Lifetime::Lease(lifetime),
                ..place.vip.clone()
            };
            if let Err(e) = rtnl.add_address(place.ifindex, &vip).await {
                errors.push(format!("add {}: {e}", vip.addr));
            }
        }
        errors
    }

    /// Removes every VIP. Returns the errors.
    pub(super) async fn remove(&self, rtnl: &Rtnl) -> Vec<String> {
        let mut errors = Vec::new();
        for place in &self.places {
            if let Err(e) = rtnl
                .remove_address(place.ifindex, place.vip.addr, place.vip.prefix_len)
                .await
            {
                errors.push(format!("remove {}: {e}", place.vip.addr));
            }
        }
        errors
    }
}
