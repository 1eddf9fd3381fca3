//! Configuration of one VRRP instance, as the state machine needs it.
//!
//! `vigil-conf` owns parsing and file positions; this type is the already-compiled form the daemon
//! hands to [`Instance::new`](crate::instance::Instance::new). [`InstanceConfig::validate`] repeats
//! the protocol-level checks so the state machine never runs on values the RFCs forbid.

use std::net::IpAddr;
use std::time::Duration;

use crate::packet::{Auth, Version};

/// Largest v3 advertisement interval: the field is 12 bits of centiseconds (RFC 9568 §5.2.7).
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;
/// Largest v2 advertisement interval: the field is 8 bits of seconds (RFC 3768 §5.3.7).
pub const MAX_V2_INTERVAL_S: u16 = 255;
/// Tracking weights are bounded like keepalived's so one object cannot wrap the priority.
pub const MAX_TRACK_WEIGHT: i32 = 254;

/// Everything one VRRP instance needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Name used in logs and telemetry; not on the wire.
    pub name: String,
    /// Virtual router id, 1..=255 (RFC 9568 §5.2.3).
    pub vrid: u8,
    /// Protocol version spoken and accepted; adverts of the other version are discarded.
    pub version: Version,
    /// Configured priority, 1..=255; 255 marks the address owner (RFC 9568 §6.1).
    pub priority: u8,
    /// Advertisement_Interval in centiseconds. v2 needs whole seconds (multiples of 100).
    pub advert_interval_cs: u16,
    /// Our primary address on the link: the advert source and the tie-breaker (RFC 9568 §6.4.3).
    pub primary_address: IpAddr,
    /// The virtual addresses, all of the primary address's family.
    pub addresses: Vec<IpAddr>,
    /// Preempt_Mode (RFC 9568 §6.1). `false` is keepalived's `nopreempt`. The owner always preempts.
    pub preempt: bool,
    /// How long a backup keeps deferring to a lower-priority master before preempting it
    /// (keepalived's `preempt_delay`); counted from the first such advert heard.
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 9568 §6.1): the daemon accepts traffic to the VIPs when master.
    pub accept_mode: bool,
    /// v2 authentication; must be [`Auth::None`] for v3 (RFC 9568 removed it).
    pub auth: Auth,
    /// Gratuitous ARP / unsolicited NA behaviour on becoming master.
    pub garp: GarpConfig,
    /// Tracked objects that adjust the priority or force Fault.
    pub tracks: Vec<TrackConfig>,
}

/// Gratuitous ARP (IPv4) / unsolicited neighbour advertisement (IPv6) announcements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// Packets per burst sent on becoming master; the daemon spaces them.
    pub repeat: u32,
    /// Delay before a second burst (keepalived `garp_master_delay`), for switches that were slow
    /// to learn the first one.
    pub delay: Option<Duration>,
    /// Period of a refresh burst while master (keepalived `garp_master_refresh`).
    pub refresh: Option<Duration>,
    /// Packets per refresh burst.
    pub refresh_repeat: u32,
}

impl Default for GarpConfig {
    /// keepalived's defaults: 5 packets, a second burst after 5 s, no refresh.
    fn default() -> Self {
        Self {
            repeat: 5,
            delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_repeat: 1,
        }
    }
}

/// One tracked object (interface, check group, script, file) and its weight.
///
/// Semantics follow keepalived: weight 0 puts the instance in Fault while the object is down; a
/// positive weight is added to the priority while the object is up; a negative weight is
/// subtracted while it is down. See [`Tracker`](crate::track::Tracker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// Key the daemon uses in [`Input::Track`](crate::instance::Input::Track).
    pub name: String,
    /// −254..=254; 0 means "down = Fault".
    pub weight: i32,
    /// Status before the first report, so a daemon that knows it at start avoids a flap.
    pub up: bool,
}

/// A configuration the state machine refuses to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0 is reserved (RFC 9568 §5.2.3).
    #[error("instance {name}: vrid 0 is invalid (1..=255)")]
    InvalidVrid {
        /// The instance.
        name: String,
    },
    /// Priority 0 is reserved for "master leaving" (RFC 9568 §5.2.4).
    #[error("instance {name}: priority 0 is reserved for shutdown adverts")]
    InvalidPriority {
        /// The instance.
        name: String,
    },
    /// Interval outside what the version's field can carry.
    #[error("instance {name}: advert interval {cs} cs is out of range for {version:?}")]
    InvalidInterval {
        /// The instance.
        name: String,
        /// The configured version.
        version: Version,
        /// The interval in centiseconds.
        cs: u16,
    },
    /// v2 is IPv4 only (RFC 3768 §1).
    #[error("instance {name}: VRRPv2 supports IPv4 only")]
    V2NotIpv4 {
        /// The instance.
        name: String,
    },
    /// An instance without virtual addresses protects nothing.
    #[error("instance {name}: no virtual addresses")]
    NoAddresses {
        /// The instance.
        name: String,
    },
    /// A VRRP router is per family (RFC 9568 §1): VIPs must match the primary address's family.
    #[error("instance {name}: address {address} is not of the primary address's family")]
    MixedFamilies {
        /// The instance.
        name: String,
        /// The offending address.
        address: IpAddr,
    },
    /// v3 has no authentication (RFC 9568 §9).
    #[error("instance {name}: authentication is a VRRPv2 feature")]
    AuthOnV3 {
        /// The instance.
        name: String,
    },
    /// Weight outside −254..=254.
    #[error("instance {name}: track {track} weight {weight} is outside -254..=254")]
    TrackWeight {
        /// The instance.
        name: String,
        /// The tracked object.
        track: String,
        /// The refused weight.
        weight: i32,
    },
    /// Two tracked objects with one name could never be told apart.
    #[error("instance {name}: track {track} is listed twice")]
    DuplicateTrack {
        /// The instance.
        name: String,
        /// The tracked object.
        track: String,
    },
}

impl InstanceConfig {
    /// A v3 (or v2) instance with RFC defaults: 1 s interval, preempt on, no delay, no tracking.
    pub fn new(
        name: impl Into<String>,
        vrid: u8,
        version: Version,
        priority: u8,
        primary_address: IpAddr,
        addresses: Vec<IpAddr>,
    ) -> Self {
        Self {
            name: name.into(),
            vrid,
            version,
            priority,
            advert_interval_cs: 100,
            primary_address,
            addresses,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            auth: Auth::None,
            garp: GarpConfig::default(),
            tracks: Vec::new(),
        }
    }

    /// Checks every protocol constraint the state machine relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = || self.name.clone();
        if self.vrid == 0 {
            return Err(ConfigError::InvalidVrid { name: name() });
        }
        if self.priority == 0 {
            return Err(ConfigError::InvalidPriority { name: name() });
        }
        let cs = self.advert_interval_cs;
        let interval_ok = match self.version {
            Version::V2 => cs > 0 && cs.is_multiple_of(100) && cs / 100 <= MAX_V2_INTERVAL_S,
            Version::V3 => cs > 0 && cs <= MAX_V3_INTERVAL_CS,
        };
        if !interval_ok {
            return Err(ConfigError::InvalidInterval {
                name: name(),
                version: self.version,
                cs,
            });
        }
        if self.version == Version::V2 && !self.primary_address.is_ipv4() {
            return Err(ConfigError::V2NotIpv4 { name: name() });
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(ConfigError::AuthOnV3 { name: name() });
        }
        if self.addresses.is_empty() {
            return Err(ConfigError::NoAddresses { name: name() });
        }
        if let Some(&address) = self
            .addresses
            .iter()
            .find(|a| a.is_ipv4() != self.primary_address.is_ipv4())
        {
            return Err(ConfigError::MixedFamilies {
                name: name(),
                address,
            });
        }
        for (i, track) in self.tracks.iter().enumerate() {
            if !(-MAX_TRACK_WEIGHT..=MAX_TRACK_WEIGHT).contains(&track.weight) {
                return Err(ConfigError::TrackWeight {
                    name: name(),
                    track: track.name.clone(),
                    weight: track.weight,
                });
            }
            if self.tracks[..i].iter().any(|t| t.name == track.name) {
                return Err(ConfigError::DuplicateTrack {
                    name: name(),
                    track: track.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Advertisement_Interval as a duration.
    pub fn advert_interval(&self) -> Duration {
        centiseconds(self.advert_interval_cs)
    }

    /// Whether this router owns the virtual addresses (priority 255, RFC 9568 §6.1).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }
}

/// Converts the wire unit (centiseconds) to a duration.
pub(crate) fn centiseconds(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn v3() -> InstanceConfig {
        InstanceConfig::new(
            "vi",
            7,
            Version::V3,
            100,
            [10, 0, 0, 1].into(),
            vec![[10, 0, 0, 100].into()],
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(v3().validate(), Ok(()));
    }

    #[test]
    fn rejects_reserved_values() {
        let mut c = v3();
        c.vrid = 0;
        assert!(matches!(c.validate(), Err(ConfigError::InvalidVrid { .. })));
        let mut c = v3();
        c.priority = 0;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidPriority { .. })
        ));
        let mut c = v3();
        c.advert_interval_cs = MAX_V3_INTERVAL_CS + 1;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidInterval { .. })
        ));
    }

    #[test]
    fn v2_needs_whole_seconds_and_ipv4() {
        let mut c = v3();
        c.version = Version::V2;
        c.advert_interval_cs = 150;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidInterval { .. })
        ));
        c.advert_interval_cs = 200;
        assert_eq!(c.validate(), Ok(()));
        c.primary_address = Ipv6Addr::LOCALHOST.into();
        c.addresses = vec![Ipv6Addr::LOCALHOST.into()];
        assert!(matches!(c.validate(), Err(ConfigError::V2NotIpv4 { .. })));
    }

    #[test]
    fn rejects_mixed_families_auth_on_v3_and_bad_tracks() {
        let mut c = v3();
        c.addresses.push(Ipv6Addr::LOCALHOST.into());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MixedFamilies { .. })
        ));
        let mut c = v3();
        c.auth = Auth::SimpleText(*b"secret\0\0");
        assert!(matches!(c.validate(), Err(ConfigError::AuthOnV3 { .. })));
        let mut c = v3();
        c.tracks = vec![TrackConfig {
            name: "eth0".into(),
            weight: 255,
            up: true,
        }];
        assert!(matches!(c.validate(), Err(ConfigError::TrackWeight { .. })));
        c.tracks = vec![
            TrackConfig {
                name: "eth0".into(),
                weight: 10,
                up: true,
            },
            TrackConfig {
                name: "eth0".into(),
                weight: 0,
                up: true,
            },
        ];
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DuplicateTrack { .. })
        ));
    }
}
