//! [`LinkMonitor`]: interface up/down events from rtnetlink's `RTNLGRP_LINK` group.
//!
//! A VRRP instance tracking an interface goes to FAULT when the interface loses carrier
//! (keepalived's `track_interface`). The kernel announces every link change with an
//! `RTM_NEWLINK`/`RTM_DELLINK`; the monitor turns them into [`LinkEvent`]s and drops the ones
//! that change nothing the daemon cares about (statistics, MTU, …). When the kernel had to drop
//! notifications because the socket buffer was full (`ENOBUFS`), the monitor reads the whole link
//! table again and reports the differences, so no change is lost for good.

use std::collections::{HashMap, VecDeque};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_sys::SocketAddr;
use rtnetlink::MulticastGroup;

use crate::error::NetError;

/// The state of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up, i.e. up with carrier (`IFF_RUNNING`, RFC 2863 operstate up).
    pub running: bool,
}

impl LinkState {
    /// Whether VRRP can use the interface: up and running.
    pub fn is_usable(&self) -> bool {
        self.up && self.running
    }
}

/// A change reported by [`LinkMonitor::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A new interface, or one whose name, `up` or `running` changed.
    Changed(LinkState),
    /// The interface was deleted.
    Removed {
        /// Its index.
        ifindex: u32,
        /// Its last name.
        name: String,
    },
}

type Unsolicited = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to link changes in the calling thread's network namespace.
#[derive(Debug)]
pub struct LinkMonitor {
    events: Unsolicited,
    known: HashMap<u32, LinkState>,
    /// Events found by a resynchronisation, not yet returned.
    pending: VecDeque<LinkEvent>,
    /// For resynchronisation dumps; also keeps the connection task alive until the monitor is
    /// dropped.
    handle: rtnetlink::Handle,
}

impl LinkMonitor {
    /// Subscribes, then reads every interface's current state (in that order, so that no change
    /// falls between the two). Must run inside a tokio runtime.
    pub async fn subscribe() -> Result<Self, NetError> {
        crate::netlink::require_runtime("subscribe to RTNLGRP_LINK")?;
        let (connection, handle, events) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link]).map_err(|source| {
                NetError::Netlink {
                    op: "subscribe to RTNLGRP_LINK".to_owned(),
                    source,
                }
            })?;
        tokio::spawn(connection);
        let known = dump(&handle)
            .await?
            .into_iter()
            .map(|state| (state.ifindex, state))
            .collect();
        Ok(Self {
            events,
            known,
            pending: VecDeque::new(),
            handle,
        })
    }

    /// The state of every interface as last seen (at subscription, then updated by events).
    pub fn current(&self) -> Vec<LinkState> {
        let mut all: Vec<LinkState> = self.known.values().cloned().collect();
        all.sort_by_key(|s| s.ifindex);
        all
    }

    /// The last seen state of interface `name`.
    pub fn state_of(&self, name: &str) -> Option<&LinkState> {
        self.known.values().find(|s| s.name == name)
    }

    /// The next change; `None` when the netlink connection has ended.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let (message, _) = self.events.next().await?;
            let event = match message.payload {
                NetlinkPayload::Overrun(_) => {
                    tracing::warn!(
                        "link notifications overran the netlink buffer; re-reading all links"
                    );
                    match dump(&self.handle).await {
                        Ok(fresh) => {
                            self.pending.extend(diff(&self.known, &fresh));
                            self.known = fresh.into_iter().map(|s| (s.ifindex, s)).collect();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "link monitor cannot resynchronise");
                            return None;
                        }
                    }
                    continue;
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    let state = link_state(&link);
                    if self.known.get(&state.ifindex) == Some(&state) {
                        continue;
                    }
                    self.known.insert(state.ifindex, state.clone());
                    LinkEvent::Changed(state)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    let state = link_state(&link);
                    let name = self
                        .known
                        .remove(&state.ifindex)
                        .map_or(state.name, |old| old.name);
                    LinkEvent::Removed {
                        ifindex: state.ifindex,
                        name,
                    }
                }
                _ => continue,
            };
            return Some(event);
        }
    }
}

async fn dump(handle: &rtnetlink::Handle) -> Result<Vec<LinkState>, NetError> {
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetError::netlink("list links", e))?;
    Ok(links.iter().map(link_state).collect())
}

/// The events that turn `known` into `fresh`: changes and additions, then removals.
fn diff(known: &HashMap<u32, LinkState>, fresh: &[LinkState]) -> Vec<LinkEvent> {
    let mut events: Vec<LinkEvent> = fresh
        .iter()
        .filter(|state| known.get(&state.ifindex) != Some(*state))
        .cloned()
        .map(LinkEvent::Changed)
        .collect();
    let mut gone: Vec<&LinkState> = known
        .values()
        .filter(|old| !fresh.iter().any(|s| s.ifindex == old.ifindex))
        .collect();
    gone.sort_by_key(|s| s.ifindex);
    events.extend(gone.into_iter().map(|old| LinkEvent::Removed {
        ifindex: old.ifindex,
        name: old.name.clone(),
    }));
    events
}

fn link_state(link: &LinkMessage) -> LinkState {
    let name = link
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default();
    LinkState {
        ifindex: link.header.index,
        name,
        up: link.header.flags.contains(LinkFlags::Up),
        running: link.header.flags.contains(LinkFlags::Running),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ifindex: u32, name: &str, up: bool, running: bool) -> LinkState {
        LinkState {
            ifindex,
            name: name.to_owned(),
            up,
            running,
        }
    }

    #[test]
    fn a_resynchronisation_reports_exactly_what_changed() {
        let known: HashMap<u32, LinkState> = [
            state(1, "lo", true, true),
            state(2, "eth0", true, true),
            state(3, "eth1", true, true),
        ]
        .into_iter()
        .map(|s| (s.ifindex, s))
        .collect();
        let fresh = [
            state(1, "lo", true, true),
            state(2, "eth0", true, false),
            state(4, "vrrp.1", false, false),
        ];
        assert_eq!(
            diff(&known, &fresh),
            vec![
                LinkEvent::Changed(state(2, "eth0", true, false)),
                LinkEvent::Changed(state(4, "vrrp.1", false, false)),
                LinkEvent::Removed {
                    ifindex: 3,
                    name: "eth1".to_owned()
                },
            ]
        );
        assert!(diff(&known, &known.values().cloned().collect::<Vec<_>>()).is_empty());
    }
}
