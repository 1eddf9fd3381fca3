//! openraft's storage suite over the znode state machine and the durable log.

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use vigil_coord::raft::types::TypeConfig;
use vigil_coord::raft::{LogOptions, LogStore, ZnodeStore};

use super::harness::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, ZnodeStore, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<TypeConfig>, ZnodeStore), StorageError<u64>> {
        let dir = TempDir::new("suite");
        let log = LogStore::open(dir.path().join("log"), LogOptions::default())
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let sm = ZnodeStore::open(dir.path().join("snapshot"), 16)
            .map_err(|e| StorageIOError::read_state_machine(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_suite_passes_with_the_znode_state_machine() {
    Suite::test_all(Builder).expect("openraft storage suite");
}
