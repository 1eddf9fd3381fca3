//! Idle cost: CPU time and resident memory of the master's and the backup's daemon while a
//! steady pair only exchanges adverts.

use std::time::Duration;

use super::daemon::{Binaries, Implementation, Scheduling};
use super::pair::Pair;
use crate::procstat::{Meter, Window};

/// One pair's idle figures.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Which implementation.
    pub implementation: Implementation,
    /// Advert interval.
    pub interval: Duration,
    /// lb1's daemon (sends adverts).
    pub master: Window,
    /// lb2's daemon (receives them).
    pub backup: Window,
    /// VRRP transitions either node logged in the window (a steady pair logs none; on a loaded
    /// machine at 10 ms adverts these are false failovers).
    pub transitions: Vec<String>,
}

/// Starts a steady pair, lets it settle for `settle`, then measures both daemons over `window`.
/// Transitions in the window are recorded, not hidden: they cost CPU and are failures of their
/// own.
pub fn measure(
    bins: &Binaries,
    implementation: Implementation,
    interval: Duration,
    settle: Duration,
    window: Duration,
    scheduling: Scheduling,
) -> anyhow::Result<Idle> {
    let pair = Pair::start(bins, implementation, interval, scheduling)?;
    std::thread::sleep(settle);
    let before = pair.transitions();
    let meter = Meter::start(&[pair.master.pid(), pair.backup.pid()])?;
    std::thread::sleep(window);
    let windows = meter.finish()?;
    let (m, b) = pair.transitions();
    let transitions = m[before.0.len().min(m.len())..]
        .iter()
        .map(|l| format!("lb1: {l}"))
        .chain(
            b[before.1.len().min(b.len())..]
                .iter()
                .map(|l| format!("lb2: {l}")),
        )
        .collect();
    Ok(Idle {
        implementation,
        interval,
        master: windows[0],
        backup: windows[1],
        transitions,
    })
}
