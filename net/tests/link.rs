//! Link-state monitoring: administrative down/up, carrier loss at the bridge, interfaces
//! appearing and disappearing.

use tokio::time::timeout;
use vigil_integration::{Lab, root_available};
use vigil_net::{LinkEvent, LinkMonitor, LinkState};

use crate::support::{PROMPT, block_on_in};

/// The first `Changed` event for `name` whose state satisfies `wanted`.
async fn changed(
    monitor: &mut LinkMonitor,
    name: &str,
    wanted: impl Fn(&LinkState) -> bool,
) -> LinkState {
    timeout(PROMPT, async {
        loop {
            match monitor.next().await.expect("monitor ended") {
                LinkEvent::Changed(state) if state.name == name && wanted(&state) => return state,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no matching event for {name}; last seen {:?}",
            monitor.state_of(name)
        )
    })
}

#[test]
fn link_changes_arrive_as_events_after_the_current_state() {
    if !root_available("link_changes_arrive_as_events_after_the_current_state") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    block_on_in(&lb1, || async {
        let mut monitor = LinkMonitor::subscribe().await.expect("subscribe");
        let vnet0 = monitor
            .state_of("vnet0")
            .expect("vnet0 in the current state")
            .clone();
        assert!(vnet0.is_usable(), "{vnet0:?}");
        assert!(monitor.current().iter().any(|s| s.name == "lo"));

        lb1.ip(&["link", "set", "vnet0", "down"])
            .expect("ip link down");
        let down = changed(&mut monitor, "vnet0", |s| !s.up).await;
        assert!(!down.running && down.ifindex == vnet0.ifindex);
        lb1.ip(&["link", "set", "vnet0", "up"]).expect("ip link up");
        changed(&mut monitor, "vnet0", LinkState::is_usable).await;

        // Carrier loss (the bridge port goes down): still administratively up, not running.
        lab.link_down(&lb1).expect("bridge port down");
        changed(&mut monitor, "vnet0", |s| s.up && !s.running).await;
        lab.link_up(&lb1).expect("bridge port up");
        changed(&mut monitor, "vnet0", LinkState::is_usable).await;

        lb1.ip(&["link", "add", "t0", "type", "veth", "peer", "name", "t1"])
            .expect("add veth");
        let t0 = changed(&mut monitor, "t0", |s| !s.up).await;
        lb1.ip(&["link", "del", "t0"]).expect("del veth");
        timeout(PROMPT, async {
            loop {
                if let LinkEvent::Removed { ifindex, name } =
                    monitor.next().await.expect("monitor ended")
                    && ifindex == t0.ifindex
                {
                    assert_eq!(name, "t0");
                    return;
                }
            }
        })
        .await
        .expect("removal event");
        assert!(monitor.state_of("t0").is_none());
    });
}
