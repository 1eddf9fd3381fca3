//! The client API's [`Backend`] contract, implemented by the replicated node.
//!
//! Reads with [`Consistency::Linearizable`] first sync with the leader (read index, see the
//! module docs of [`super`]); stale reads serve the local tree. `commit_index` in the status is
//! the applied index: openraft 0.9 does not publish the commit index, and every applied entry is
//! committed.

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{CoordError, CoordNode, Role};
use crate::api::{
    ApiError, Backend, BackendEvent, ClusterStatus, Consistency, Member, MembershipChange,
    Role as ApiRole,
};
use crate::error::Error;
use crate::request::{Command, Response};
use crate::session::SessionId;
use crate::state_machine::StateMachine;
use crate::tree::{Stat, path};

impl CoordNode {
    fn api_error(&self, e: CoordError) -> ApiError {
        match e {
            CoordError::NotLeader { leader } => ApiError::NotLeader {
                leader: leader.and_then(|id| self.status().voters.get(&id).cloned()),
            },
            CoordError::SessionExpired => ApiError::from(Error::SessionExpired),
            CoordError::RenewedByWrites => ApiError::BadRequest(e.to_string()),
            // Both leave the outcome unknown; the client retries with the same request id.
            CoordError::Timeout(_) | CoordError::ConnectionLost(_) => ApiError::Timeout,
            other => ApiError::Unavailable(other.to_string()),
        }
    }

    async fn read_at<T>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&StateMachine) -> T,
    ) -> Result<T, ApiError> {
        match consistency {
            Consistency::Linearizable => self
                .read_linearizable(f)
                .await
                .map_err(|e| self.api_error(e)),
            Consistency::Stale => Ok(self.read_stale(f)),
        }
    }
}

#[async_trait]
impl Backend for CoordNode {
    async fn write(&self, cmd: Command) -> Result<Response, ApiError> {
        CoordNode::write(self, cmd)
            .await
            .map_err(|e| self.api_error(e))
    }

    async fn get(&self, consistency: Consistency, p: &str) -> Result<(Vec<u8>, Stat), ApiError> {
        self.read_at(consistency, |sm| {
            sm.tree().get(p).map(|(d, stat)| (d.to_vec(), stat))
        })
        .await?
        .map_err(|e| ApiError::at(e, p))
    }

    async fn exists(&self, consistency: Consistency, p: &str) -> Result<Option<Stat>, ApiError> {
        self.read_at(consistency, |sm| sm.tree().exists(p))
            .await?
            .map_err(|e| ApiError::at(e, p))
    }

    async fn children(
        &self,
        consistency: Consistency,
        p: &str,
    ) -> Result<(Vec<String>, Stat), ApiError> {
        self.read_at(consistency, |sm| sm.tree().children(p))
            .await?
            .map_err(|e| ApiError::at(e, p))
    }

    async fn subtree(
        &self,
        consistency: Consistency,
        p: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, ApiError> {
        self.read_at(consistency, |sm| {
            let tree = sm.tree();
            let mut out = Vec::new();
            let mut todo = vec![p.to_owned()];
            while let Some(at) = todo.pop() {
                let (names, _) = tree.children(&at).map_err(|e| ApiError::at(e, &at))?;
                todo.extend(names.iter().map(|n| path::join(&at, n)));
                out.push(at);
                if out.len() > limit {
                    return Ok(None);
                }
            }
            Ok(Some(out))
        })
        .await?
    }

    async fn heartbeat(&self, session: SessionId) -> Result<(), ApiError> {
        CoordNode::heartbeat(self, session)
            .await
            .map_err(|e| self.api_error(e))
    }

    fn subscribe_events(&self) -> broadcast::Receiver<BackendEvent> {
        self.subscribe()
    }

    fn applied_index(&self) -> u64 {
        self.inner.store.last_applied().map_or(0, |l| l.index)
    }

    async fn status(&self) -> Result<ClusterStatus, ApiError> {
        let s = CoordNode::status(self);
        let applied = s.applied_index.unwrap_or(0);
        let mut members: Vec<Member> = s
            .voters
            .iter()
            .map(|(id, addr)| Member {
                id: *id,
                addr: addr.clone(),
                role: if Some(*id) == s.leader {
                    ApiRole::Leader
                } else if *id == s.id && s.role == Role::Candidate {
                    ApiRole::Candidate
                } else {
                    ApiRole::Follower
                },
            })
            .collect();
        members.extend(s.learners.iter().map(|(id, addr)| Member {
            id: *id,
            addr: addr.clone(),
            role: ApiRole::Learner,
        }));
        Ok(ClusterStatus {
            node_id: s.id,
            leader: s.leader,
            term: s.term,
            commit_index: applied,
            applied_index: applied,
            members,
        })
    }

    async fn change_membership(&self, change: MembershipChange) -> Result<ClusterStatus, ApiError> {
        let result = match change {
            MembershipChange::AddLearner { id, addr } => self.add_learner(id, &addr).await,
            MembershipChange::Promote { id } => self.promote(id).await,
            MembershipChange::Remove { id } => self.remove(id).await,
        };
        result.map_err(|e| self.api_error(e))?;
        Backend::status(self).await
    }
}
