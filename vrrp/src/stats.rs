//! Counters one instance keeps for `vigilctl status` and the metrics endpoint.

use std::time::Instant;

/// Why a received advertisement was not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// IPv4 TTL or IPv6 hop limit was not 255: the packet may come from off-link (RFC 9568 §7.1).
    Ttl,
    /// The advert's version is not the configured one (RFC 9568 §7.1, RFC 3768 §7.1).
    Version,
    /// The VRID is not this instance's (RFC 9568 §7.1).
    Vrid,
    /// The source address family differs from this instance's.
    Family,
    /// Our own advert looped back by the multicast socket.
    OwnAdvert,
    /// v2 authentication type or data differ (RFC 3768 §7.1).
    Auth,
    /// v2 advert interval differs from ours (RFC 3768 §7.1 MUST discard).
    Interval,
    /// A v3 interval of 0 would make the Master_Down_Interval 0 and spin the backup.
    ZeroInterval,
    /// The instance is in Initialize or Fault and does not listen (RFC 9568 §6.4.1, §6.4.4).
    NotListening,
}

impl DiscardReason {
    /// Every reason, in the order [`Stats::discards`] indexes them.
    pub const ALL: [DiscardReason; 9] = [
        DiscardReason::Ttl,
        DiscardReason::Version,
        DiscardReason::Vrid,
        DiscardReason::Family,
        DiscardReason::OwnAdvert,
        DiscardReason::Auth,
        DiscardReason::Interval,
        DiscardReason::ZeroInterval,
        DiscardReason::NotListening,
    ];

    /// Stable snake-case label for metrics (a bounded set).
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::Ttl => "ttl",
            DiscardReason::Version => "version",
            DiscardReason::Vrid => "vrid",
            DiscardReason::Family => "family",
            DiscardReason::OwnAdvert => "own_advert",
            DiscardReason::Auth => "auth",
            DiscardReason::Interval => "interval",
            DiscardReason::ZeroInterval => "zero_interval",
            DiscardReason::NotListening => "not_listening",
        }
    }
}

/// A received advert that disagrees with our configuration but is still processed, because
/// RFC 9568 §7.1 asks only to log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// The advertised addresses differ from ours.
    AddressList,
    /// A v3 interval different from ours (the backup adopts it).
    Interval,
    /// Both we and the sender claim to own the addresses (priority 255, RFC 9568 erratum 8298).
    OwnerConflict,
}

/// Counters of one instance. Monotonic except `last_transition`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Adverts handed to the instance, discarded or not.
    pub adverts_rx: u64,
    /// Adverts the instance asked to send.
    pub adverts_tx: u64,
    /// Priority-0 ("master leaving") adverts received.
    pub priority_zero_rx: u64,
    /// Priority-0 adverts sent.
    pub priority_zero_tx: u64,
    /// Discards, indexed like [`DiscardReason::ALL`]; read with [`Stats::discarded`].
    pub discards: [u64; DiscardReason::ALL.len()],
    /// Processed adverts whose address list differed from ours.
    pub address_list_mismatches: u64,
    /// Processed v3 adverts whose interval differed from ours.
    pub interval_mismatches: u64,
    /// Adverts claiming ownership while we own the addresses.
    pub owner_conflicts: u64,
    /// State transitions.
    pub transitions: u64,
    /// Times this instance became master.
    pub became_master: u64,
    /// When the last transition happened.
    pub last_transition: Option<Instant>,
}

impl Stats {
    /// Discards for one reason.
    pub fn discarded(&self, reason: DiscardReason) -> u64 {
        self.discards[reason as usize]
    }

    /// Discards for every reason.
    pub fn discarded_total(&self) -> u64 {
        self.discards.iter().sum()
    }

    pub(crate) fn count_discard(&mut self, reason: DiscardReason) {
        self.discards[reason as usize] += 1;
    }

    pub(crate) fn count_mismatch(&mut self, mismatch: Mismatch) {
        match mismatch {
            Mismatch::AddressList => self.address_list_mismatches += 1,
            Mismatch::Interval => self.interval_mismatches += 1,
            Mismatch::OwnerConflict => self.owner_conflicts += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_indexed_by_discriminant() {
        for (i, reason) in DiscardReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{}", reason.as_str());
        }
    }
}
