//! Random sequences of appends, truncations, purges and reopens, checked after every step
//! against an in-memory model of what openraft expects the log to hold.

use std::collections::BTreeMap;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{Entry, LogId, RaftLogReader};
use proptest::prelude::*;

use super::support::{Store, TempDir, TestConfig, entry, log_id, open, small_segments};

#[derive(Debug, Clone)]
enum Op {
    /// Append this many entries; a new term first if the flag is set.
    Append(u64, bool),
    /// Truncate at this fraction (per mille) of the present range.
    Truncate(u16),
    /// Purge up to this fraction (per mille) of the present range.
    Purge(u16),
    /// Purge past the end, as installing a snapshot ahead of the log does.
    SnapshotAhead(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..12u64, any::<bool>()).prop_map(|(n, bump)| Op::Append(n, bump)),
        2 => (0..1000u16).prop_map(Op::Truncate),
        2 => (0..1000u16).prop_map(Op::Purge),
        1 => (1..5u64).prop_map(Op::SnapshotAhead),
        2 => Just(Op::Reopen),
    ]
}

/// What the log must hold: its entries, the purge point and the current term.
#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<u64, Entry<TestConfig>>,
    purged: Option<LogId<u64>>,
    term: u64,
}

impl Model {
    fn last(&self) -> Option<LogId<u64>> {
        self.entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(self.purged)
    }

    fn next_index(&self) -> u64 {
        self.last().map_or(0, |l| l.index + 1)
    }

    /// The present index `per_mille` of the way through the present entries.
    fn pick(&self, per_mille: u16) -> Option<u64> {
        let first = *self.entries.keys().next()?;
        let last = *self.entries.keys().next_back()?;
        Some(first + (last - first) * u64::from(per_mille) / 1000)
    }
}

async fn check(store: &mut Store, model: &Model) {
    let all = store.try_get_log_entries(..).await.expect("read");
    let want: Vec<_> = model.entries.values().cloned().collect();
    assert_eq!(all, want);
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, model.purged);
    assert_eq!(state.last_log_id, model.last());
}

async fn run(ops: Vec<Op>) {
    let dir = TempDir::new("model");
    let mut store = open(&dir, small_segments());
    let mut model = Model {
        term: 1,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Append(n, bump) => {
                model.term += u64::from(bump);
                let start = model.next_index();
                let batch: Vec<_> = (start..start + n).map(|i| entry(model.term, i)).collect();
                store.blocking_append(batch.clone()).await.expect("append");
                model
                    .entries
                    .extend(batch.into_iter().map(|e| (e.log_id.index, e)));
            }
            Op::Truncate(at) => {
                if let Some(index) = model.pick(at) {
                    let id = model.entries[&index].log_id;
                    store.truncate(id).await.expect("truncate");
                    model.entries.split_off(&index);
                }
            }
            Op::Purge(at) => {
                if let Some(index) = model.pick(at) {
                    let id = model.entries[&index].log_id;
                    store.purge(id).await.expect("purge");
                    model.entries = model.entries.split_off(&(index + 1));
                    model.purged = Some(id);
                }
            }
            Op::SnapshotAhead(gap) => {
                model.term += 1;
                let id = log_id(model.term, model.next_index() + gap);
                store.purge(id).await.expect("purge ahead");
                model.entries.clear();
                model.purged = Some(id);
            }
            Op::Reopen => {
                drop(store);
                store = open(&dir, small_segments());
            }
        }
        check(&mut store, &model).await;
    }
    drop(store);
    let mut store = open(&dir, small_segments());
    check(&mut store, &model).await;
}

proptest! {
    // Every step fsyncs; a few dozen sequences cover the boundaries without slowing CI down.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(run(ops));
    }
}
