//! Check-group health for VRRP tracking (`track_groups`): a group is up while its virtual server
//! has quorum. [`follow_groups`] turns the runtime's watch channel into one call per change, the
//! shape `VrrpRuntime::set_group(name, up)` takes.

use std::future::Future;

use tokio::sync::watch;

use super::runtime::GroupStates;

/// Calls `report(name, up)` for every group now, then for every group whose state changes,
/// until the load-balancer runtime stops. Groups a reload removes are not reported (a config
/// that still tracks them does not validate).
pub async fn follow_groups<F, Fut>(mut groups: watch::Receiver<GroupStates>, mut report: F)
where
    F: FnMut(String, bool) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut seen = GroupStates::new();
    loop {
        let current = groups.borrow_and_update().clone();
        for (name, up) in current {
            if seen.get(&name) != Some(&up) {
                seen.insert(name.clone(), up);
                report(name, up).await;
            }
        }
        if groups.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn reports_initial_states_then_only_changes() {
        let (tx, rx) = watch::channel(GroupStates::from([
            ("web".to_owned(), true),
            ("db".to_owned(), false),
        ]));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&calls);
        let task = tokio::spawn(follow_groups(rx, move |name, up| {
            sink.lock().unwrap().push((name, up));
            async {}
        }));
        while calls.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        tx.send_replace(GroupStates::from([
            ("web".to_owned(), false),
            ("db".to_owned(), false),
        ]));
        tokio::task::yield_now().await;
        // Dropping the sender ends the follower, as stopping the runtime does.
        drop(tx);
        task.await.unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            [
                ("db".to_owned(), false),
                ("web".to_owned(), true),
                ("web".to_owned(), false)
            ]
        );
    }
}
