//! Seeded fault schedules: the same seed gives the same steps on every machine and version
//! (own SplitMix64, not a library generator whose stream may change between releases).

use std::fmt;
use std::time::Duration;

/// The three voters of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// Load balancer 1 (VRRP priority 150).
    Lb1,
    /// Load balancer 2 (VRRP priority 100).
    Lb2,
    /// The coordination-only witness.
    Witness,
}

impl Node {
    /// All nodes, in host order.
    pub const ALL: [Node; 3] = [Node::Lb1, Node::Lb2, Node::Witness];

    /// The lab host name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lb1 => "lb1",
            Self::Lb2 => "lb2",
            Self::Witness => "witness",
        }
    }
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Cut the node off from every other host until the next [`Fault::Heal`].
    Isolate(Node),
    /// Cut the link between two nodes until the next heal.
    CutPair(Node, Node),
    /// Take the node's bridge port down (carrier loss) until the next heal.
    LinkDown(Node),
    /// Remove every cut and bring every link up.
    Heal,
    /// SIGKILL the node's daemon, wait `down`, start it again.
    Crash {
        /// The node.
        node: Node,
        /// How long it stays dead.
        down: Duration,
    },
    /// SIGSTOP the node's daemon for `paused`, then SIGCONT.
    Pause {
        /// The node.
        node: Node,
        /// How long it stays frozen (below or past the session timeout).
        paused: Duration,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Isolate(n) => write!(f, "isolate {}", n.name()),
            Self::CutPair(a, b) => write!(f, "cut {}-{}", a.name(), b.name()),
            Self::LinkDown(n) => write!(f, "link-down {}", n.name()),
            Self::Heal => f.write_str("heal"),
            Self::Crash { node, down } => write!(f, "kill {} {}ms", node.name(), down.as_millis()),
            Self::Pause { node, paused } => {
                write!(f, "stop {} {}ms", node.name(), paused.as_millis())
            }
        }
    }
}

/// A fault and the wait after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub fault: Fault,
    /// How long to let the daemons react before the next step.
    pub then_wait: Duration,
}

/// The timing a schedule is drawn with, relative to the coordination session timeout.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The session timeout the daemons run with.
    pub session_timeout: Duration,
    /// Shortest and longest wait after a step.
    pub wait: (Duration, Duration),
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(4),
            wait: (Duration::from_millis(200), Duration::from_secs(2)),
        }
    }
}

/// A seeded sequence of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Schedule {
    /// Draws `steps` steps from `seed`. Pauses last between a quarter and twice the session
    /// timeout (so about half of them outlive the session), crashes up to 1.5 timeouts.
    pub fn generate(seed: u64, steps: usize, timing: Timing) -> Self {
        let mut rng = SplitMix64::new(seed);
        let t = timing.session_timeout;
        let steps = (0..steps)
            .map(|_| {
                let node = Node::ALL[rng.below(3) as usize];
                let fault = match rng.below(100) {
                    0..20 => Fault::Isolate(node),
                    20..35 => {
                        let other = Node::ALL[(node as usize + 1 + rng.below(2) as usize) % 3];
                        Fault::CutPair(node, other)
                    }
                    35..45 => Fault::LinkDown(node),
                    45..63 => Fault::Heal,
                    63..80 => Fault::Crash {
                        node,
                        down: rng.duration(t / 10, t * 3 / 2),
                    },
                    _ => Fault::Pause {
                        node,
                        paused: rng.duration(t / 4, t * 2),
                    },
                };
                Step {
                    fault,
                    then_wait: rng.duration(timing.wait.0, timing.wait.1),
                }
            })
            .collect();
        Self { seed, steps }
    }

    /// The steps as one line (`isolate lb1 +800ms; heal +200ms; …`).
    pub fn describe(&self) -> String {
        self.steps
            .iter()
            .map(|s| format!("{} +{}ms", s.fault, s.then_wait.as_millis()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The schedule's own running time (waits, pauses, downtimes), without daemon start-up.
    pub fn duration(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| {
                s.then_wait
                    + match s.fault {
                        Fault::Crash { down, .. } => down,
                        Fault::Pause { paused, .. } => paused,
                        _ => Duration::ZERO,
                    }
            })
            .sum()
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration in `[lo, hi]`, whole milliseconds.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_stream() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn a_seed_always_gives_the_same_schedule_and_seeds_differ() {
        let t = Timing::default();
        assert_eq!(Schedule::generate(7, 8, t), Schedule::generate(7, 8, t));
        assert_ne!(
            Schedule::generate(7, 8, t).steps,
            Schedule::generate(8, 8, t).steps
        );
    }

    #[test]
    fn every_kind_of_fault_appears_and_timings_stay_in_bounds() {
        let t = Timing::default();
        let mut kinds = [false; 6];
        let mut long_pauses = 0;
        for seed in 0..200 {
            for step in Schedule::generate(seed, 6, t).steps {
                assert!(step.then_wait >= t.wait.0 && step.then_wait <= t.wait.1);
                let kind = match step.fault {
                    Fault::Isolate(_) => 0,
                    Fault::CutPair(a, b) => {
                        assert_ne!(a, b, "a pair of distinct nodes");
                        1
                    }
                    Fault::LinkDown(_) => 2,
                    Fault::Heal => 3,
                    Fault::Crash { down, .. } => {
                        assert!(down <= t.session_timeout * 3 / 2);
                        4
                    }
                    Fault::Pause { paused, .. } => {
                        assert!(paused >= t.session_timeout / 4);
                        assert!(paused <= t.session_timeout * 2);
                        long_pauses += usize::from(paused > t.session_timeout);
                        5
                    }
                };
                kinds[kind] = true;
            }
        }
        assert_eq!(kinds, [true; 6]);
        assert!(
            long_pauses > 20,
            "pauses past the session timeout: {long_pauses}"
        );
    }
}
