//! Rise/fall hysteresis: turns a stream of round results into up/down transitions. Pure.

/// Health of one real server as seen by one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    up: bool,
    /// Consecutive rounds that disagree with `up`; reset whenever a round agrees.
    streak: u32,
    weight: Option<u32>,
}

/// A change that consumers (the LVS reconciler, VRRP tracking) must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The server became healthy.
    Up,
    /// The server became unhealthy.
    Down,
    /// Still up, but a dynamic-weight script reported a new weight.
    Weight(u32),
}

impl Health {
    /// A server starting up (trusted) or down (keepalived's `alpha`).
    pub fn new(start_down: bool) -> Self {
        Health {
            up: !start_down,
            streak: 0,
            weight: None,
        }
    }

    /// Whether the server currently counts as up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Weight last reported by a dynamic-weight check, if any.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    /// Feeds the result of one round (after its retries). `weight` is a dynamic weight reported
    /// with a success. Returns the transition this round caused, if any.
    pub fn record(
        &mut self,
        success: bool,
        weight: Option<u32>,
        rise: u32,
        fall: u32,
    ) -> Option<Transition> {
        if success == self.up {
            self.streak = 0;
            if success && weight.is_some() && weight != self.weight {
                self.weight = weight;
                return Some(Transition::Weight(weight.unwrap_or_default()));
            }
            return None;
        }
        self.streak += 1;
        let needed = if success { rise } else { fall }.max(1);
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.up = success;
        if success {
            self.weight = weight;
            Some(Transition::Up)
        } else {
            Some(Transition::Down)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_needs_consecutive_failures() {
        let mut h = Health::new(false);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), None);
        // A success in between resets the streak.
        assert_eq!(h.record(true, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), Some(Transition::Down));
        assert!(!h.is_up());
    }

    #[test]
    fn rise_needs_consecutive_successes() {
        let mut h = Health::new(true);
        assert!(!h.is_up());
        assert_eq!(h.record(true, None, 2, 1), None);
        assert_eq!(h.record(false, None, 2, 1), None);
        assert_eq!(h.record(true, None, 2, 1), None);
        assert_eq!(h.record(true, None, 2, 1), Some(Transition::Up));
        assert!(h.is_up());
    }

    #[test]
    fn zero_rise_or_fall_acts_as_one() {
        let mut h = Health::new(false);
        assert_eq!(h.record(false, None, 0, 0), Some(Transition::Down));
        assert_eq!(h.record(true, None, 0, 0), Some(Transition::Up));
    }

    #[test]
    fn dynamic_weight_changes_are_reported_once() {
        let mut h = Health::new(false);
        assert_eq!(h.record(true, Some(5), 1, 1), Some(Transition::Weight(5)));
        assert_eq!(h.record(true, Some(5), 1, 1), None);
        assert_eq!(h.record(true, Some(7), 1, 1), Some(Transition::Weight(7)));
        assert_eq!(h.weight(), Some(7));
    }
}
