//! openraft's own conformance suite for storage implementations.

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use vigil_coord::raft::LogOptions;

use super::state_machine::MemStateMachine;
use super::support::{Store, TempDir, TestConfig, small_segments};

/// Builds a fresh store in its own directory; the directory is the guard the suite keeps alive.
struct Builder(LogOptions);

impl StoreBuilder<TestConfig, Store, MemStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, Store, MemStateMachine), StorageError<u64>> {
        let dir = TempDir::new("suite");
        let store = Store::open(dir.path(), self.0).map_err(|e| StorageIOError::read_logs(&e))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

#[test]
fn openraft_suite_passes() {
    Suite::test_all(Builder(LogOptions::default())).expect("openraft storage suite");
}

/// The same suite with a few entries per segment, so purge and truncate cross file boundaries.
#[test]
fn openraft_suite_passes_with_tiny_segments() {
    Suite::test_all(Builder(small_segments())).expect("openraft storage suite");
}
