//! Receiving an advertisement: the validity checks of RFC 9568 §7.1 (RFC 3768 §7.1 for v2),
//! then the Backup (§6.4.2) and Master (§6.4.3) rules.

use std::net::IpAddr;
use std::time::Instant;

use super::{Instance, Master, Reason, State, advert_interval};
use crate::packet::{Advertisement, Version};
use crate::stats::{DiscardReason, Mismatch};
use crate::timer::Timer;

impl Instance {
    pub(super) fn receive(&mut self, now: Instant, src: IpAddr, ttl: u8, advert: &Advertisement) {
        self.stats.adverts_rx += 1;
        if advert.priority == 0 {
            self.stats.priority_zero_rx += 1;
        }
        if let Err(reason) = self.check(src, ttl, advert) {
            self.discard(src, reason);
            return;
        }
        self.check_consistency(src, advert);
        match self.state {
            State::Backup => self.receive_as_backup(now, src, advert),
            State::Master => self.receive_as_master(now, src, advert),
            // RFC 9568 §6.4.1: Initialize ignores adverts; so does Fault.
            State::Initialize | State::Fault => self.discard(src, DiscardReason::NotListening),
        }
    }

    /// The checks whose failure MUST discard the packet.
    fn check(&self, src: IpAddr, ttl: u8, advert: &Advertisement) -> Result<(), DiscardReason> {
        // RFC 9568 §7.1 / RFC 3768 §7.1: "MUST verify that the IP TTL / Hop Limit is 255".
        if ttl != 255 {
            return Err(DiscardReason::Ttl);
        }
        // RFC 9568 §7.1 / RFC 3768 §7.1: "MUST verify the VRRP version".
        if advert.version != self.config.version {
            return Err(DiscardReason::Version);
        }
        // RFC 9568 §7.1: "MUST verify that the VRID is configured on the receiving interface".
        if advert.vrid != self.config.vrid {
            return Err(DiscardReason::Vrid);
        }
        // IPv4 and IPv6 virtual routers are separate instances (RFC 9568 §1), so a packet of the
        // other family can only come from a misrouted socket; the tie-break could not compare it.
        if src.is_ipv4() != self.config.primary_address.is_ipv4() {
            return Err(DiscardReason::Family);
        }
        // Multicast loops our own adverts back; the RFC rules assume they are never seen.
        if src == self.config.primary_address {
            return Err(DiscardReason::OwnAdvert);
        }
        if self.config.version == Version::V2 {
            // RFC 3768 §7.1: "MUST verify that the Auth Type matches the locally configured
            // authentication method" and the authentication data.
            if advert.auth != self.config.auth {
                return Err(DiscardReason::Auth);
            }
            // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as
            // the locally configured for this virtual router"; otherwise discard.
            if advert.max_advert_int != self.config.advert_interval_cs {
                return Err(DiscardReason::Interval);
            }
        } else if advert.max_advert_int == 0 {
            // Not an RFC rule: adopting 0 would make Master_Down_Interval 0 and spin the timer.
            return Err(DiscardReason::ZeroInterval);
        }
        Ok(())
    }

    /// RFC 9568 §7.1: disagreements that are only logged; the advert is still processed.
    fn check_consistency(&mut self, src: IpAddr, advert: &Advertisement) {
        // "MAY also verify that 'IPvX Addr Count' and the list of IPvX address(es) match … If
        // this check fails, the receiver SHOULD log the event." Compared as sets (order is not
        // significant on the wire) without allocating: this runs for every advert.
        let ours = &self.config.addresses;
        let same = advert.addresses.len() == ours.len()
            && advert.addresses.iter().all(|a| ours.contains(a))
            && ours.iter().all(|a| advert.addresses.contains(a));
        if !same {
            self.mismatch(src, Mismatch::AddressList);
        }
        // "MAY verify that the Max Adver Interval matches … SHOULD log" (v3; v2 discarded above).
        if self.config.version == Version::V3
            && advert.max_advert_int != self.config.advert_interval_cs
        {
            self.mismatch(src, Mismatch::Interval);
        }
        // Erratum 8298: "SHOULD verify that the local router is not the IPvX address owner".
        if self.is_owner() && advert.priority == 255 {
            self.mismatch(src, Mismatch::OwnerConflict);
        }
    }

    /// RFC 9568 §6.4.2 (RFC 3768 §6.4.2), "If an ADVERTISEMENT is received".
    fn receive_as_backup(&mut self, now: Instant, src: IpAddr, advert: &Advertisement) {
        // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to
        // Skew_Time" — the master left; the highest-priority backup takes over first.
        if advert.priority == 0 {
            self.master = None;
            let skew = super::skew_time(
                self.config.version,
                self.effective_priority(),
                self.master_adver_interval,
            );
            self.timers.set(Timer::MasterDown, now + skew);
            return;
        }
        // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than or
        // equal to the local Priority": accept this master.
        let local = self.effective_priority();
        if !self.preempts() || advert.priority >= local {
            self.preempt_at = None;
            self.accept_master(now, src, advert);
            return;
        }
        // Lower priority and we may preempt. keepalived's preempt_delay keeps deferring for a
        // while after the first such advert; a sync group may also hold us back.
        let delay = self.config.preempt_delay;
        let delayed = !delay.is_zero()
            && !self.is_owner()
            && now < *self.preempt_at.get_or_insert(now + delay);
        if delayed || self.sync_hold {
            self.accept_master(now, src, advert);
        }
        // Otherwise "Discard the ADVERTISEMENT": Master_Down_Timer runs out and we take over.
    }

    /// "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT, recompute
    /// the Skew_Time and Master_Down_Interval, reset the Master_Down_Timer" (RFC 9568 §6.4.2).
    /// v2 has no adoption: RFC 3768 discards adverts whose interval differs (see `check`).
    fn accept_master(&mut self, now: Instant, src: IpAddr, advert: &Advertisement) {
        self.master_adver_interval = advert_interval(advert);
        self.master = Some(Master {
            address: src,
            priority: advert.priority,
        });
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
    }

    /// RFC 9568 §6.4.3 (RFC 3768 §6.4.3), "If an ADVERTISEMENT is received".
    fn receive_as_master(&mut self, now: Instant, src: IpAddr, advert: &Advertisement) {
        // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT, reset the
        // Adver_Timer" — a departing router must not leave the segment without a master.
        if advert.priority == 0 {
            self.send_advert(now);
            return;
        }
        // "If the Priority in the ADVERTISEMENT is greater than the local Priority, or equal and
        // the primary IPvX address of the sender is greater than the local primary IPvX address
        // (unsigned comparison in network byte order)": become backup. `IpAddr`'s order within
        // one family is exactly that comparison; `check` rejected the other family.
        let local = self.effective_priority();
        let wins = advert.priority > local
            || (advert.priority == local && src > self.config.primary_address);
        if wins {
            self.master_adver_interval = advert_interval(advert);
            self.master = Some(Master {
                address: src,
                priority: advert.priority,
            });
            self.become_backup(now, Reason::Preempted);
        } else {
            // RFC 9568 §6.4.3: discard it, and "send an ADVERTISEMENT immediately to assert the
            // Active Router state to the sending VRRP Router" so it steps down without waiting.
            self.send_advert(now);
        }
    }
}
