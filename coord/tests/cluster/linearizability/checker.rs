//! A linearizability checker for versioned registers (ZooKeeper's get / set / set-with-version).
//!
//! Wing & Gong's search with Lowe's just-in-time linearization and memoization, as in
//! porcupine: walk the history's call/return events in time order; at a call, try to
//! linearize that operation now (the model must accept its result) and move on; at a return
//! whose operation is not linearized yet, undo the most recent choice. A (set of linearized
//! operations, register state) pair that was already explored is never explored again, which
//! keeps the search polynomial on the histories a real system produces.
//!
//! Keys are independent registers, so each key's sub-history is checked on its own
//! (linearizability is compositional).
//!
//! An operation whose result is unknown (a timeout, a broken connection: it may or may not
//! have been applied) has no return event: it may take effect at any point after its
//! invocation, including after everything else, which is the same as never.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// The state of one register: its value and ZooKeeper data version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Register {
    pub(crate) value: u64,
    pub(crate) version: i32,
}

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Read value and version.
    Read,
    /// Unconditional set (version -1).
    Write(u64),
    /// Set only if the version is `expected`.
    Cas { expected: i32, value: u64 },
}

/// What the client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A read returned this.
    Read(Register),
    /// A write or CAS succeeded; the node now has this version.
    Written { version: i32 },
    /// A CAS was refused: `BadVersion`.
    CasFailed,
    /// No answer: the operation may or may not have taken effect.
    Unknown,
}

/// One operation of a history. Times are logical: any strictly increasing counter shared by
/// all clients, read before the request is sent and after the answer arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    pub(crate) client: usize,
    pub(crate) key: String,
    pub(crate) call: Call,
    pub(crate) outcome: Outcome,
    pub(crate) invoked: u64,
    /// `None` when the outcome is [`Outcome::Unknown`].
    pub(crate) completed: Option<u64>,
}

/// The register's transition: the next state if `outcome` is possible from `state`.
fn step(state: Register, call: Call, outcome: Outcome) -> Option<Register> {
    let bumped = |value| Register {
        value,
        version: state.version + 1,
    };
    match (call, outcome) {
        (Call::Read, Outcome::Read(seen)) => (seen == state).then_some(state),
        (Call::Write(v), Outcome::Written { version }) => {
            (version == state.version + 1).then(|| bumped(v))
        }
        (Call::Write(v), Outcome::Unknown) => Some(bumped(v)),
        (Call::Cas { expected, value }, outcome) if expected == state.version => match outcome {
            Outcome::Written { version } => (version == state.version + 1).then(|| bumped(value)),
            Outcome::Unknown => Some(bumped(value)),
            Outcome::CasFailed | Outcome::Read(_) => None,
        },
        // A read with no answer observed nothing; a losing CAS changes nothing.
        (Call::Read, Outcome::Unknown)
        | (Call::Cas { .. }, Outcome::CasFailed | Outcome::Unknown) => Some(state),
        _ => None,
    }
}

/// Why a history was rejected.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No linearization exists for this key's operations.
    NotLinearizable {
        key: String,
        /// Most operations placed in any partial linearization.
        deepest: usize,
        /// The operation whose return could not be justified at that depth.
        stuck: Box<Operation>,
    },
    /// The search exceeded its step budget without an answer.
    Inconclusive { key: String, steps: u64 },
}

/// What checking cost.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) keys: usize,
    pub(crate) operations: usize,
    pub(crate) steps: u64,
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotLinearizable {
                key,
                deepest,
                stuck,
            } => write!(
                f,
                "{key} is not linearizable: at most {deepest} operations linearize, then \
                 cannot place {stuck:?}"
            ),
            Failure::Inconclusive { key, steps } => {
                write!(f, "{key}: no verdict within {steps} search steps")
            }
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} operations on {} keys linearizable ({} search steps, {:?})",
            self.operations, self.keys, self.steps, self.elapsed
        )
    }
}

/// Search steps allowed per key before giving up (a hang is worse than a clear failure).
const STEP_BUDGET: u64 = 50_000_000;

/// Checks `history`, every key starting as `initial`.
pub(crate) fn check(history: &[Operation], initial: Register) -> Result<Report, Failure> {
    let started = Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut report = Report {
        keys: by_key.len(),
        operations: history.len(),
        ..Report::default()
    };
    for (key, ops) in by_key {
        report.steps += check_key(key, &ops, initial)?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The time-ordered event list: node 0 is the head; node `1 + 2i` is the call of operation
/// `i` and `2 + 2i` its return. Lifting an operation unlinks both of its nodes.
struct Events {
    prev: Vec<usize>,
    next: Vec<usize>,
}

impl Events {
    fn new(ops: &[&Operation]) -> Events {
        // (time, node): unknown outcomes return after everything else.
        let mut order: Vec<(u64, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoked, 1 + 2 * i));
            order.push((op.completed.unwrap_or(u64::MAX), 2 + 2 * i));
        }
        // Calls before returns at equal times: the more permissive reading of a tie.
        order.sort_by_key(|&(t, node)| (t, node % 2 == 0));
        let n = ops.len() * 2 + 1;
        let (mut prev, mut next) = (vec![NIL; n], vec![NIL; n]);
        let mut last = HEAD;
        for (_, node) in order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Events { prev, next }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(call + 1);
    }

    /// Undoes [`Events::lift`] (in reverse order, so the saved links are still valid).
    fn unlift(&mut self, call: usize) {
        self.relink(call + 1);
        self.relink(call);
    }
}

fn check_key(key: &str, ops: &[&Operation], initial: Register) -> Result<u64, Failure> {
    let mut events = Events::new(ops);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Register)> = HashSet::new();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = initial;
    let mut node = events.next[HEAD];
    let (mut steps, mut deepest, mut stuck) = (0u64, 0usize, 0usize);
    while events.next[HEAD] != NIL {
        steps += 1;
        if steps > STEP_BUDGET {
            return Err(Failure::Inconclusive {
                key: key.to_owned(),
                steps,
            });
        }
        let i = (node - 1) / 2;
        if node % 2 == 1 {
            let op = ops[i];
            if let Some(next_state) = step(state, op.call, op.outcome) {
                linearized[i / 64] |= 1 << (i % 64);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((node, state));
                    state = next_state;
                    events.lift(node);
                    node = events.next[HEAD];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            node = events.next[node];
        } else {
            // A return whose operation was not placed yet: the last choice was wrong.
            if stack.len() >= deepest {
                (deepest, stuck) = (stack.len(), i);
            }
            let Some((call, before)) = stack.pop() else {
                return Err(Failure::NotLinearizable {
                    key: key.to_owned(),
                    deepest,
                    stuck: Box::new(ops[stuck].clone()),
                });
            };
            let j = (call - 1) / 2;
            linearized[j / 64] &= !(1 << (j % 64));
            state = before;
            events.unlift(call);
            node = events.next[call];
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "/k";

    fn reg(value: u64, version: i32) -> Register {
        Register { value, version }
    }

    /// `(client, call, outcome, invoked, completed)`; `completed` 0 means unknown.
    fn history(ops: &[(usize, Call, Outcome, u64, u64)]) -> Vec<Operation> {
        ops.iter()
            .map(|&(client, call, outcome, invoked, completed)| Operation {
                client,
                key: K.to_owned(),
                call,
                outcome,
                invoked,
                completed: (completed != 0).then_some(completed),
            })
            .collect()
    }

    fn ok(h: &[Operation]) -> bool {
        match check(h, Register::default()) {
            Ok(_) => true,
            Err(Failure::NotLinearizable { .. }) => false,
            Err(e @ Failure::Inconclusive { .. }) => panic!("{e}"),
        }
    }

    use Call::{Cas, Read, Write};
    use Outcome::{CasFailed, Unknown, Written};

    fn r(value: u64, version: i32) -> Outcome {
        Outcome::Read(reg(value, version))
    }

    #[test]
    fn a_sequential_history_is_linearizable() {
        let h = history(&[
            (0, Read, r(0, 0), 1, 2),
            (0, Write(7), Written { version: 1 }, 3, 4),
            (1, Read, r(7, 1), 5, 6),
            (
                1,
                Cas {
                    expected: 1,
                    value: 8,
                },
                Written { version: 2 },
                7,
                8,
            ),
            (
                0,
                Cas {
                    expected: 1,
                    value: 9,
                },
                CasFailed,
                9,
                10,
            ),
            (0, Read, r(8, 2), 11, 12),
        ]);
        assert!(ok(&h));
    }

    #[test]
    fn reads_overlapping_a_write_may_see_either_value_but_never_go_back() {
        // The write spans [1, 10]; the reads inside it may see old or new...
        let mut h = history(&[
            (0, Write(5), Written { version: 1 }, 1, 10),
            (1, Read, r(0, 0), 2, 3),
            (2, Read, r(5, 1), 4, 5),
        ]);
        assert!(ok(&h));
        // ...but once one read saw the new value, a later read may not see the old one.
        h.push(history(&[(1, Read, r(0, 0), 6, 7)]).remove(0));
        assert!(!ok(&h));
    }

    #[test]
    fn a_stale_read_is_rejected() {
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 2),
            (1, Read, r(0, 0), 3, 4),
        ]);
        assert!(!ok(&h));
    }

    #[test]
    fn a_lost_write_is_rejected() {
        // Both writes were acknowledged, one after the other, yet the read sees the first.
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 2),
            (1, Write(2), Written { version: 2 }, 3, 4),
            (2, Read, r(1, 1), 5, 6),
        ]);
        assert!(!ok(&h));
        // Two concurrent acknowledged writes cannot both have produced version 1.
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 4),
            (1, Write(2), Written { version: 1 }, 2, 3),
        ]);
        assert!(!ok(&h));
    }

    #[test]
    fn two_cas_from_the_same_version_cannot_both_win() {
        let h = history(&[
            (
                0,
                Cas {
                    expected: 0,
                    value: 1,
                },
                Written { version: 1 },
                1,
                4,
            ),
            (
                1,
                Cas {
                    expected: 0,
                    value: 2,
                },
                Written { version: 1 },
                2,
                3,
            ),
        ]);
        assert!(!ok(&h));
        // One winner and one loser is fine, in either order.
        let h = history(&[
            (
                0,
                Cas {
                    expected: 0,
                    value: 1,
                },
                CasFailed,
                1,
                4,
            ),
            (
                1,
                Cas {
                    expected: 0,
                    value: 2,
                },
                Written { version: 1 },
                2,
                3,
            ),
            (2, Read, r(2, 1), 5, 6),
        ]);
        assert!(ok(&h));
    }

    #[test]
    fn a_cas_refused_although_the_version_matched_is_rejected() {
        let h = history(&[
            (0, Read, r(0, 0), 1, 2),
            (
                1,
                Cas {
                    expected: 0,
                    value: 3,
                },
                CasFailed,
                3,
                4,
            ),
            (0, Read, r(0, 0), 5, 6),
        ]);
        assert!(!ok(&h));
    }

    #[test]
    fn a_cas_that_reports_success_on_a_stale_version_is_rejected() {
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 2),
            (
                1,
                Cas {
                    expected: 0,
                    value: 3,
                },
                Written { version: 1 },
                3,
                4,
            ),
        ]);
        assert!(!ok(&h));
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never_but_not_before_it_started() {
        let unknown = (0, Write(9), Unknown, 3, 0);
        // Never observed: fine.
        assert!(ok(&history(&[unknown, (1, Read, r(0, 0), 10, 11)])));
        // Observed long after the client gave up: fine.
        assert!(ok(&history(&[
            unknown,
            (1, Read, r(0, 0), 10, 11),
            (1, Read, r(9, 1), 12, 13),
        ])));
        // Observed before it was invoked: impossible.
        assert!(!ok(&history(&[unknown, (1, Read, r(9, 1), 1, 2)])));
        // Observed, then gone again: impossible.
        assert!(!ok(&history(&[
            unknown,
            (1, Read, r(9, 1), 10, 11),
            (1, Read, r(0, 0), 12, 13),
        ])));
    }

    #[test]
    fn an_unknown_cas_applies_only_if_its_version_matched() {
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 2),
            (
                1,
                Cas {
                    expected: 0,
                    value: 5,
                },
                Unknown,
                3,
                0,
            ),
            (2, Read, r(5, 2), 4, 5),
        ]);
        assert!(!ok(&h));
        let h = history(&[
            (0, Write(1), Written { version: 1 }, 1, 2),
            (
                1,
                Cas {
                    expected: 1,
                    value: 5,
                },
                Unknown,
                3,
                0,
            ),
            (2, Read, r(5, 2), 4, 5),
        ]);
        assert!(ok(&h));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut h = history(&[(0, Write(1), Written { version: 1 }, 1, 2)]);
        let mut other = history(&[(1, Read, r(0, 0), 3, 4)]);
        other[0].key = "/other".into();
        h.extend(other.clone());
        assert!(ok(&h));
        // The same read on the written key is stale.
        other[0].key = K.into();
        h.extend(other);
        assert!(!ok(&h));
    }

    #[test]
    fn many_concurrent_operations_check_quickly() {
        // 12 clients each doing 40 writes and reads, where every read sees the latest
        // completed write: linearizable, and a naive search would explode on the overlap.
        let mut ops = Vec::new();
        let mut t = 0;
        let mut state = reg(0, 0);
        for round in 0..40u64 {
            let base = t;
            for c in 0..12u64 {
                let (call, outcome) = if c == 0 {
                    let v = round + 1;
                    let next = reg(v, state.version + 1);
                    let w = (
                        Write(v),
                        Written {
                            version: next.version,
                        },
                    );
                    state = next;
                    w
                } else {
                    (Read, Outcome::Read(state))
                };
                ops.push((c as usize, call, outcome, base + 1 + c, base + 100 + c));
            }
            t = base + 200;
        }
        let h = history(&ops);
        let report = check(&h, Register::default()).expect("linearizable");
        assert_eq!(report.operations, 480);
        assert!(report.elapsed < Duration::from_secs(5), "{report:?}");
    }
}
