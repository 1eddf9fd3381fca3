//! Tracked objects and the effective priority they produce.
//!
//! keepalived semantics, which operators already rely on:
//!
//! * weight 0: while the object is down the instance is in Fault (it drops its VIPs and stays
//!   silent); the priority is not touched.
//! * weight > 0: added to the configured priority while the object is **up**.
//! * weight < 0: subtracted (added, being negative) while the object is **down**.
//!
//! The sum is clamped to 1..=254 so tracking can neither claim ownership (255) nor send the
//! reserved "leaving" priority 0. An address owner (configured 255) ignores weights and stays at
//! 255, as RFC 9568 §6.1 ties 255 to owning the addresses; weight-0 objects still fault it.

use crate::config::{MAX_TRACK_WEIGHT, TrackConfig};

/// The status and weight of every tracked object of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    objects: Vec<Tracked>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tracked {
    name: String,
    weight: i32,
    up: bool,
}

/// A tracking update the instance cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The name is not among the instance's configured tracks.
    #[error("unknown tracked object {0}")]
    Unknown(String),
    /// Weight outside −254..=254.
    #[error("tracked object {name}: weight {weight} is outside -254..=254")]
    Weight {
        /// The instance.
        name: String,
        /// The refused weight.
        weight: i32,
    },
}

impl Tracker {
    /// Starts from the configured initial statuses.
    pub fn new(tracks: &[TrackConfig]) -> Self {
        let objects = tracks
            .iter()
            .map(|t| Tracked {
                name: t.name.clone(),
                weight: t.weight,
                up: t.up,
            })
            .collect();
        Self { objects }
    }

    /// Replaces the tracked objects with `tracks` (a reload). An object tracked before and
    /// after keeps the status its source reported and takes the new weight: its source keeps
    /// running and will only report the next change. A new object, and every name in `reset`
    /// (a source that starts over, e.g. a file read again), starts as `tracks` says.
    pub fn replace(&mut self, tracks: &[TrackConfig], reset: &[String]) {
        let objects = tracks
            .iter()
            .map(|t| {
                let kept = self
                    .objects
                    .iter()
                    .find(|o| o.name == t.name)
                    .filter(|_| !reset.contains(&t.name));
                Tracked {
                    name: t.name.clone(),
                    weight: t.weight,
                    up: kept.map_or(t.up, |o| o.up),
                }
            })
            .collect();
        self.objects = objects;
    }

    /// The status of the object named `name`, if tracked.
    pub fn is_up(&self, name: &str) -> Option<bool> {
        self.objects.iter().find(|o| o.name == name).map(|o| o.up)
    }

    /// Records an up/down report.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<(), TrackError> {
        self.find(name)?.up = up;
        Ok(())
    }

    /// Replaces an object's weight (scripts may map exit codes to weights).
    pub fn set_weight(&mut self, name: &str, weight: i32) -> Result<(), TrackError> {
        if !(-MAX_TRACK_WEIGHT..=MAX_TRACK_WEIGHT).contains(&weight) {
            return Err(TrackError::Weight {
                name: name.to_owned(),
                weight,
            });
        }
        self.find(name)?.weight = weight;
        Ok(())
    }

    /// Whether a weight-0 object is down, which forces Fault.
    pub fn is_fault(&self) -> bool {
        self.objects.iter().any(|o| o.weight == 0 && !o.up)
    }

    /// The priority to advertise given the configured one.
    pub fn effective_priority(&self, configured: u8) -> u8 {
        if configured == 255 {
            return 255;
        }
        let adjustment: i32 = self
            .objects
            .iter()
            .map(|o| match (o.weight.signum(), o.up) {
                (1, true) | (-1, false) => o.weight,
                _ => 0,
            })
            .sum();
        (i32::from(configured) + adjustment).clamp(1, 254) as u8
    }

    fn find(&mut self, name: &str) -> Result<&mut Tracked, TrackError> {
        self.objects
            .iter_mut()
            .find(|o| o.name == name)
            .ok_or_else(|| TrackError::Unknown(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(spec: &[(&str, i32, bool)]) -> Tracker {
        let tracks: Vec<_> = spec
            .iter()
            .map(|&(name, weight, up)| TrackConfig {
                name: name.into(),
                weight,
                up,
            })
            .collect();
        Tracker::new(&tracks)
    }

    #[test]
    fn positive_weight_adds_while_up() {
        let mut t = tracker(&[("chk", 20, true)]);
        assert_eq!(t.effective_priority(100), 120);
        t.set_up("chk", false).expect("configured track");
        assert_eq!(t.effective_priority(100), 100);
    }

    #[test]
    fn negative_weight_subtracts_while_down() {
        let mut t = tracker(&[("eth1", -30, true)]);
        assert_eq!(t.effective_priority(100), 100);
        t.set_up("eth1", false).expect("configured track");
        assert_eq!(t.effective_priority(100), 70);
    }

    #[test]
    fn weight_zero_down_is_fault_and_leaves_priority_alone() {
        let mut t = tracker(&[("eth0", 0, true)]);
        assert!(!t.is_fault());
        t.set_up("eth0", false).expect("configured track");
        assert!(t.is_fault());
        assert_eq!(t.effective_priority(100), 100);
    }

    #[test]
    fn clamps_to_1_254_and_owner_stays_255() {
        let t = tracker(&[("a", 200, true), ("b", -254, false)]);
        assert_eq!(t.effective_priority(100), 46);
        let t = tracker(&[("a", 200, true)]);
        assert_eq!(t.effective_priority(100), 254);
        let t = tracker(&[("b", -254, false)]);
        assert_eq!(t.effective_priority(100), 1);
        assert_eq!(t.effective_priority(255), 255);
    }

    #[test]
    fn replace_keeps_reported_status_of_kept_names_only() {
        let mut t = tracker(&[("a", -10, true), ("b", -20, true), ("gone", -30, true)]);
        t.set_up("a", false).expect("configured track");
        t.set_up("b", false).expect("configured track");
        t.set_up("gone", false).expect("configured track");
        assert_eq!(t.effective_priority(100), 40);
        let next = [
            // Kept: still down (reported), with its new weight.
            TrackConfig {
                name: "a".into(),
                weight: -15,
                up: true,
            },
            // Kept but reset: takes the status given.
            TrackConfig {
                name: "b".into(),
                weight: -20,
                up: true,
            },
            // New: starts as configured.
            TrackConfig {
                name: "new".into(),
                weight: -5,
                up: false,
            },
        ];
        t.replace(&next, &["b".to_owned()]);
        assert_eq!(t.is_up("a"), Some(false));
        assert_eq!(t.is_up("b"), Some(true));
        assert_eq!(t.is_up("new"), Some(false));
        assert_eq!(t.is_up("gone"), None);
        assert_eq!(t.effective_priority(100), 80);
        assert_eq!(
            t.set_up("gone", true),
            Err(TrackError::Unknown("gone".into()))
        );
    }

    #[test]
    fn rejects_unknown_names_and_wild_weights() {
        let mut t = tracker(&[("a", 10, true)]);
        assert_eq!(t.set_up("zz", true), Err(TrackError::Unknown("zz".into())));
        assert!(matches!(
            t.set_weight("a", -300),
            Err(TrackError::Weight { .. })
        ));
        t.set_weight("a", -10).expect("configured track");
        assert_eq!(t.effective_priority(100), 100);
        t.set_up("a", false).expect("configured track");
        assert_eq!(t.effective_priority(100), 90);
    }
}
