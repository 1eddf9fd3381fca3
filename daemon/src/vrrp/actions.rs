//! Executing a state machine's actions: adverts, VIPs, announcements, transition logs and
//! notify scripts, plus the sentence that explains a transition in the log.

use std::net::IpAddr;
use std::time::Instant;

use vigil_vrrp::instance::{Action, Reason, State};

use super::notify::Transition;
use super::task::{MISMATCH_LOG_EVERY, Member};

pub(super) async fn execute(m: &mut Member, action: Action, priority: u8, master: Option<IpAddr>) {
    let name = m.conf.name.as_str();
    match action {
        Action::SendAdvert(advert) => {
            for e in m.net.send_advert(&advert).await {
                tracing::debug!(instance = name, error = %e, "advert not sent");
                m.shell.error(e);
            }
        }
        Action::AddVips(addrs) => {
            // Fenced: the fencing task adds them once the owner znode is ours and the lease
            // valid, with a kernel lifetime inside the lease.
            if let Some(fence) = &m.fence {
                tracing::info!(instance = name, vips = ?addrs, "master: claiming the VIPs through the quorum");
                fence.want(true);
                return;
            }
            let (held, errors) = m.net.add_vips(&addrs).await;
            for e in errors {
                tracing::error!(instance = name, error = %e, "cannot add VIP");
                m.shell.error(e);
            }
            tracing::info!(instance = name, vips = ?held, "VIPs added");
            for addr in held {
                if !m.shell.vips_held.contains(&addr) {
                    m.shell.vips_held.push(addr);
                }
            }
        }
        Action::RemoveVips(addrs) => {
            if let Some(fence) = &m.fence {
                tracing::info!(instance = name, vips = ?addrs, "releasing the fenced VIPs");
                fence.want(false);
                return;
            }
            for e in m.net.remove_vips(&addrs).await {
                tracing::error!(instance = name, error = %e, "cannot remove VIP");
                m.shell.error(e);
            }
            tracing::info!(instance = name, vips = ?addrs, "VIPs removed");
            m.shell.vips_held.retain(|a| !addrs.contains(a));
        }
        Action::SendGratuitous { addresses, count } => {
            // A fenced master announces once the VIPs are really up (task.rs, `follow_fence`);
            // before that, announcing would pull traffic away from the current holder.
            if m.fence.is_some() && !m.fence_status.holding {
                return;
            }
            for e in m.net.announce(&addresses, count) {
                tracing::warn!(instance = name, error = %e, "cannot announce VIPs");
                m.shell.error(e);
            }
        }
        Action::StateChanged { from, to, reason } => {
            let previous = m.last_master.take();
            tracing::info!(
                instance = name,
                vrid = m.conf.vrid,
                from = from.as_str(),
                to = to.as_str(),
                reason = reason.as_str(),
                priority,
                master = ?master,
                previous_master = ?previous,
                "VRRP state changed: {}",
                explain(reason, previous, m.last_advert, priority)
            );
            m.shell.last_reason = Some(reason.as_str());
            let fencing = m.fence.as_ref().map(|_| m.fence_status.clone());
            let transition = Transition {
                instance: m.conf.name.clone(),
                vrid: m.conf.vrid,
                from,
                to,
                priority,
                reason: reason.as_str(),
                fencing_token: fencing.as_ref().and_then(|f| f.token),
            };
            match fencing {
                // A fenced master is master for applications once it holds the VIPs: the
                // "master" notification waits for them, and carries their token.
                Some(f) if to == State::Master && !f.holding => {
                    m.pending_master = Some(transition);
                }
                _ => {
                    m.pending_master = None;
                    m.notify.push(transition);
                }
            }
        }
        Action::Discarded { src, reason } => {
            tracing::debug!(instance = name, %src, reason = reason.as_str(), "advert discarded");
        }
        Action::Mismatch { src, mismatch } => {
            let now = Instant::now();
            if m.last_mismatch_log
                .is_none_or(|at| now.duration_since(at) >= MISMATCH_LOG_EVERY)
            {
                m.last_mismatch_log = Some(now);
                tracing::warn!(instance = name, %src, ?mismatch, "advert disagrees with our configuration");
            }
        }
    }
}

/// A sentence for the log that answers "why did this failover happen".
fn explain(
    reason: Reason,
    previous_master: Option<IpAddr>,
    last_advert: Option<(IpAddr, u8)>,
    priority: u8,
) -> String {
    let master = previous_master.map_or_else(|| "the master".to_owned(), |a| format!("master {a}"));
    // The last advert heard, if it came from the master we followed.
    let heard = last_advert.filter(|(src, _)| previous_master.is_none_or(|m| m == *src));
    match (reason, heard) {
        (Reason::MasterDown, Some((_, 0))) => {
            format!("{master} announced it is leaving (priority 0)")
        }
        (Reason::MasterDown, Some((src, theirs))) if theirs < priority => {
            format!("preempting master {src}: its priority {theirs} is below ours ({priority})")
        }
        (Reason::MasterDown, _) => {
            format!("no advert from {master} within Master_Down_Interval")
        }
        (Reason::Startup, _) => "started; listening for a master".to_owned(),
        (Reason::AddressOwner, _) => "started as the address owner (priority 255)".to_owned(),
        (Reason::Preempted, _) => {
            "heard a better master (higher priority, or equal and higher address)".to_owned()
        }
        (Reason::Shutdown, _) => "instance stopping".to_owned(),
        (Reason::Fault, _) => {
            "fault: interface down or a weight-0 tracked object failed".to_owned()
        }
        (Reason::FaultCleared, _) => "all faults cleared".to_owned(),
        (Reason::SyncGroup, _) => "moved with its sync group".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_why_a_backup_took_over() {
        let old: IpAddr = "10.0.0.1".parse().expect("address");
        let leaving = explain(Reason::MasterDown, Some(old), Some((old, 0)), 100);
        assert_eq!(
            leaving,
            "master 10.0.0.1 announced it is leaving (priority 0)"
        );
        let silent = explain(Reason::MasterDown, Some(old), Some((old, 150)), 100);
        assert_eq!(
            silent,
            "no advert from master 10.0.0.1 within Master_Down_Interval"
        );
        let preempting = explain(Reason::MasterDown, Some(old), Some((old, 50)), 100);
        assert_eq!(
            preempting,
            "preempting master 10.0.0.1: its priority 50 is below ours (100)"
        );
        // An advert from someone else says nothing about the master we followed.
        let other: IpAddr = "10.0.0.9".parse().expect("address");
        let unrelated = explain(Reason::MasterDown, Some(old), Some((other, 0)), 100);
        assert!(
            unrelated.starts_with("no advert from master 10.0.0.1"),
            "{unrelated}"
        );
    }
}
