//! `use_vmac`: one instance's macvlan with the virtual router MAC, for its lifetime.
//!
//! Created when the instance starts (on backups too, as keepalived does: becoming master must
//! not wait for netlink), after deleting one a crashed run left behind, and deleted when the
//! instance stops. Its adverts and announcements leave from it and its VIPs live on it (see
//! `network.rs`), so a failover moves the MAC with the VIPs and neighbours' caches stay right.
//!
//! For IPv4 the parent must stop answering ARP for the vmac's addresses with its own MAC:
//! `arp_ignore=1` and `arp_filter=1` on it, held while any vmac of this process lives on that
//! parent and restored when the last one goes (a crash leaves them set; harmless for the parent's
//! own addresses, which it still answers for).

use std::collections::BTreeMap;

use tokio::sync::Mutex;
use vigil_conf as conf;
use vigil_net::{Family, MacAddr, NetError, ParentArp, Rtnl, iface};

/// Per parent interface index: how many vmacs hold its ARP settings, and what they were
/// before. Units run on threads of their own, hence a lock that may be held across the netlink
/// calls.
static PARENTS: Mutex<BTreeMap<u32, (usize, ParentArp)>> = Mutex::const_new(BTreeMap::new());

/// A live vmac; [`Vmac::remove`] deletes it.
#[derive(Debug)]
pub(super) struct Vmac {
    name: String,
    parent: String,
    parent_index: u32,
    /// Whether this vmac holds the parent's ARP settings.
    holds_parent: bool,
    rtnl: Rtnl,
}

impl Vmac {
    /// Creates `instance`'s vmac, if it has `use_vmac`.
    pub(super) async fn create(instance: &conf::VrrpInstance) -> Result<Option<Self>, NetError> {
        let Some(name) = instance.vmac_interface() else {
            return Ok(None);
        };
        let (family, mac) = match instance.family {
            conf::AddressFamily::Ipv4 => (Family::V4, MacAddr::vrrp_v4(instance.vrid)),
            conf::AddressFamily::Ipv6 => (Family::V6, MacAddr::vrrp_v6(instance.vrid)),
        };
        let rtnl = Rtnl::connect()?;
        if rtnl.delete_leftover_vmac(&name).await? {
            tracing::warn!(instance = %instance.name, vmac = %name, "removed a virtual MAC interface left over from an earlier run");
        }
        let parent = iface::ifindex(&instance.interface)?;
        rtnl.create_vmac(parent, &name, mac, family).await?;
        let mut vmac = Self {
            name,
            parent: instance.interface.clone(),
            parent_index: parent,
            holds_parent: false,
            rtnl,
        };
        if family == Family::V4 {
            match hold_parent(&vmac.rtnl, parent).await {
                Ok(()) => vmac.holds_parent = true,
                Err(e) => {
                    vmac.remove().await;
                    return Err(e);
                }
            }
        }
        tracing::info!(instance = %instance.name, vmac = %vmac.name, %mac, parent = %vmac.parent, "virtual MAC interface created");
        Ok(Some(vmac))
    }

    /// Deletes the vmac (its addresses go with it) and releases the parent's ARP settings.
    /// Failures are logged: there is nothing else to do about them at this point.
    pub(super) async fn remove(self) {
        match self.rtnl.delete_vmac(&self.name).await {
            Ok(_) => tracing::debug!(vmac = %self.name, "virtual MAC interface deleted"),
            Err(e) => {
                tracing::error!(vmac = %self.name, error = %e, "cannot delete virtual MAC interface");
            }
        }
        if self.holds_parent
            && let Err(e) = release_parent(&self.rtnl, self.parent_index).await
        {
            tracing::warn!(interface = %self.parent, error = %e, "cannot restore arp_ignore/arp_filter");
        }
    }
}

async fn hold_parent(rtnl: &Rtnl, parent: u32) -> Result<(), NetError> {
    let mut parents = PARENTS.lock().await;
    if let Some((holders, _)) = parents.get_mut(&parent) {
        *holders += 1;
        return Ok(());
    }
    let before = rtnl.quiet_parent_arp(parent).await?;
    parents.insert(parent, (1, before));
    Ok(())
}

async fn release_parent(rtnl: &Rtnl, parent: u32) -> Result<(), NetError> {
    let mut parents = PARENTS.lock().await;
    let Some((holders, before)) = parents.get_mut(&parent) else {
        return Ok(());
    };
    *holders -= 1;
    if *holders > 0 {
        return Ok(());
    }
    let before = *before;
    parents.remove(&parent);
    rtnl.restore_parent_arp(parent, before).await
}
