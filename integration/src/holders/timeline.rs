//! From timestamped observations of "host h holds the VIP / does not" to holding intervals and
//! the overlaps between hosts. Pure: the recorder feeds it, unit tests feed it by hand.

use std::time::Duration;

/// How an observation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An `RTM_NEWADDR`/`RTM_DELADDR` notification, timestamped when it was read.
    Event,
    /// A periodic `RTM_GETADDR` dump: the kernel's state at some instant between the request
    /// (`at`) and the end of the reply (`until`).
    Dump {
        /// When the dump's last message was read.
        until: Duration,
    },
}

/// One host's VIP state at one time, on the recorder's clock (time since it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// When: an event's read time, a dump's request time.
    pub at: Duration,
    /// The host's index in the recorder's host list.
    pub host: usize,
    /// Whether the host had the VIP on any interface.
    pub held: bool,
    /// Notification or dump.
    pub source: Source,
}

/// A span during which one host held the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The host's index.
    pub host: usize,
    /// When it was added.
    pub from: Duration,
    /// When it was removed, or the end of the recording.
    pub to: Duration,
}

/// A span during which two or more hosts held the VIP at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Start of the double holding.
    pub from: Duration,
    /// End of it.
    pub to: Duration,
    /// The hosts holding at the start.
    pub hosts: Vec<usize>,
}

impl Overlap {
    /// How long it lasted.
    pub fn duration(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }
}

/// The holding intervals of every host, from the observations of one kind (`dumps`: only
/// dump observations; else only events), with still-open intervals closed at `end`. A
/// repeated observation of the state a host already has changes nothing; every host starts
/// as not holding.
pub fn intervals(observations: &[Observation], dumps: bool, end: Duration) -> Vec<Interval> {
    let mut sorted: Vec<&Observation> = observations
        .iter()
        .filter(|o| matches!(o.source, Source::Dump { .. }) == dumps)
        .collect();
    sorted.sort_by_key(|o| o.at);
    let mut open: Vec<Option<Duration>> = Vec::new();
    let mut out = Vec::new();
    for o in sorted {
        if open.len() <= o.host {
            open.resize(o.host + 1, None);
        }
        match (open[o.host], o.held) {
            (None, true) => open[o.host] = Some(o.at),
            (Some(from), false) => {
                out.push(Interval {
                    host: o.host,
                    from,
                    to: o.at,
                });
                open[o.host] = None;
            }
            _ => {}
        }
    }
    for (host, from) in open.into_iter().enumerate() {
        if let Some(from) = from {
            out.push(Interval {
                host,
                from,
                to: end.max(from),
            });
        }
    }
    out.sort_by_key(|i| (i.from, i.host));
    out
}

/// Every maximal span where at least two intervals (of different hosts) overlap. Spans that
/// touch end to end (one removal at the very instant of the other's add) do not overlap.
pub fn overlaps(intervals: &[Interval]) -> Vec<Overlap> {
    // Sweep over boundaries; at equal times removals go first, so touching is not overlap.
    let mut edges: Vec<(Duration, bool, usize)> = Vec::with_capacity(intervals.len() * 2);
    for i in intervals.iter().filter(|i| i.to > i.from) {
        edges.push((i.from, true, i.host));
        edges.push((i.to, false, i.host));
    }
    edges.sort_by_key(|&(at, add, host)| (at, add, host));
    let mut holding: Vec<usize> = Vec::new();
    let mut out: Vec<Overlap> = Vec::new();
    let mut started: Option<(Duration, Vec<usize>)> = None;
    for (at, add, host) in edges {
        if add {
            holding.push(host);
        } else if let Some(pos) = holding.iter().position(|&h| h == host) {
            holding.swap_remove(pos);
        }
        let mut distinct = holding.clone();
        distinct.sort_unstable();
        distinct.dedup();
        match (&started, distinct.len() >= 2) {
            (None, true) => started = Some((at, distinct)),
            (Some(_), false) => {
                if let Some((from, hosts)) = started.take() {
                    out.push(Overlap {
                        from,
                        to: at,
                        hosts,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some((from, hosts)) = started {
        // Unreachable with closed intervals; kept so no overlap is ever lost.
        out.push(Overlap {
            from,
            to: from,
            hosts,
        });
    }
    out
}

/// Whether a host's event-derived state is `held` at some instant in `[from, to]`, given the
/// host's events sorted by time: true if it is at `from` or a matching event falls inside.
fn events_allow(events: &[Observation], held: bool, from: Duration, to: Duration) -> bool {
    let first_after = events.partition_point(|e| e.at <= from);
    let state = first_after.checked_sub(1).is_some_and(|i| events[i].held);
    state == held
        || events[first_after..]
            .iter()
            .take_while(|e| e.at <= to)
            .any(|e| e.held == held)
}

/// Dump observations that no event explains: the dump saw a state the event stream never had
/// between the request and `slack` after the reply. Any such mismatch means notifications were
/// lost (or timestamps are off by more than `slack`).
pub fn mismatches(observations: &[Observation], slack: Duration) -> Vec<Observation> {
    let hosts = observations.iter().map(|o| o.host + 1).max().unwrap_or(0);
    let mut events: Vec<Vec<Observation>> = vec![Vec::new(); hosts];
    for o in observations.iter().filter(|o| o.source == Source::Event) {
        events[o.host].push(*o);
    }
    for list in &mut events {
        list.sort_by_key(|o| o.at);
    }
    observations
        .iter()
        .filter(|o| match o.source {
            Source::Dump { until } => !events_allow(&events[o.host], o.held, o.at, until + slack),
            Source::Event => false,
        })
        .copied()
        .collect()
}

/// Each host's state at the end of `observations` by the events, a host without events
/// taking the state of its first dump (the recording's initial state).
pub fn current(observations: &[Observation], hosts: usize) -> Vec<bool> {
    let mut last_event: Vec<Option<(Duration, bool)>> = vec![None; hosts];
    let mut first_dump: Vec<Option<(Duration, bool)>> = vec![None; hosts];
    for o in observations.iter().filter(|o| o.host < hosts) {
        let slot = match o.source {
            Source::Event => &mut last_event[o.host],
            Source::Dump { .. } => &mut first_dump[o.host],
        };
        let newer = match (o.source, *slot) {
            (_, None) => true,
            (Source::Event, Some((at, _))) => o.at >= at,
            (Source::Dump { .. }, Some((at, _))) => o.at < at,
        };
        if newer {
            *slot = Some((o.at, o.held));
        }
    }
    last_event
        .iter()
        .zip(&first_dump)
        .map(|(event, dump)| event.or(*dump).is_some_and(|(_, held)| held))
        .collect()
}

/// The shortest time from one host's removal of the VIP to another host's next add (a
/// hand-over gap); negative gaps are overlaps and are reported by [`overlaps`] instead, so
/// this returns only gaps ≥ 0. `None` when no hand-over between hosts happened.
pub fn closest_handover(intervals: &[Interval]) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for a in intervals {
        // The next add by any other host at or after `a` ended.
        let next = intervals
            .iter()
            .filter(|b| b.host != a.host && b.from >= a.to)
            .map(|b| b.from.saturating_sub(a.to))
            .min();
        if let Some(gap) = next {
            best = Some(best.map_or(gap, |b| b.min(gap)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ev(at: u64, host: usize, held: bool) -> Observation {
        Observation {
            at: ms(at),
            host,
            held,
            source: Source::Event,
        }
    }

    fn dump(at: u64, until: u64, host: usize, held: bool) -> Observation {
        Observation {
            at: ms(at),
            host,
            held,
            source: Source::Dump { until: ms(until) },
        }
    }

    #[test]
    fn a_clean_handover_has_no_overlap_and_reports_the_gap() {
        let obs = [ev(10, 0, true), ev(500, 0, false), ev(740, 1, true)];
        let iv = intervals(&obs, false, ms(1000));
        assert_eq!(iv.len(), 2);
        assert_eq!(iv[1].to, ms(1000), "open interval closed at the end");
        assert!(overlaps(&iv).is_empty());
        assert_eq!(closest_handover(&iv), Some(ms(240)));
    }

    #[test]
    fn split_brain_is_one_overlap_with_its_duration() {
        let obs = [
            ev(10, 0, true),
            ev(300, 1, true),
            ev(300, 1, true), // lifetime refresh: no new interval
            ev(1300, 0, false),
        ];
        let ov = overlaps(&intervals(&obs, false, ms(2000)));
        assert_eq!(ov.len(), 1);
        assert_eq!((ov[0].from, ov[0].to), (ms(300), ms(1300)));
        assert_eq!(ov[0].hosts, vec![0, 1]);
        assert_eq!(ov[0].duration(), ms(1000));
    }

    #[test]
    fn touching_intervals_do_not_overlap_but_one_millisecond_does() {
        let touch = [ev(0, 0, true), ev(100, 0, false), ev(100, 1, true)];
        assert!(overlaps(&intervals(&touch, false, ms(200))).is_empty());
        let late = [ev(0, 0, true), ev(101, 0, false), ev(100, 1, true)];
        let ov = overlaps(&intervals(&late, false, ms(200)));
        assert_eq!(ov.len(), 1);
        assert_eq!(ov[0].duration(), ms(1));
    }

    #[test]
    fn three_holders_make_one_span_and_separate_episodes_count_apart() {
        let obs = [
            ev(0, 0, true),
            ev(10, 1, true),
            ev(20, 2, true),
            ev(30, 0, false),
            ev(40, 1, false),
            ev(50, 0, true),
            ev(60, 0, false),
        ];
        let ov = overlaps(&intervals(&obs, false, ms(100)));
        assert_eq!(ov.len(), 2, "{ov:?}");
        assert_eq!((ov[0].from, ov[0].to), (ms(10), ms(40)));
        assert_eq!((ov[1].from, ov[1].to), (ms(50), ms(60)));
        assert_eq!(ov[1].hosts, vec![0, 2]);
    }

    #[test]
    fn dumps_and_events_make_separate_timelines() {
        let obs = [ev(0, 0, true), dump(5, 6, 1, true), dump(10, 11, 1, false)];
        assert!(overlaps(&intervals(&obs, false, ms(20))).is_empty());
        let from_dumps = intervals(&obs, true, ms(20));
        assert_eq!(
            from_dumps,
            vec![Interval {
                host: 1,
                from: ms(5),
                to: ms(10)
            }]
        );
    }

    #[test]
    fn a_dump_agreeing_with_the_events_or_racing_one_is_no_mismatch() {
        let obs = [
            ev(0, 0, true),
            dump(3, 4, 0, true),    // agrees
            ev(20, 0, false),       // read after the dump that already saw it gone
            dump(18, 19, 0, false), // raced with the event: explained within the slack
            dump(30, 31, 0, false),
        ];
        assert!(mismatches(&obs, ms(2)).is_empty());
    }

    #[test]
    fn a_dump_seeing_what_no_event_said_is_a_mismatch() {
        // A lost RTM_NEWADDR: the dumps see the VIP, the events never do.
        let obs = [dump(5, 6, 1, true), dump(10, 11, 1, true), ev(50, 1, false)];
        assert_eq!(mismatches(&obs, ms(2)).len(), 2);
    }

    #[test]
    fn current_state_is_the_last_event_else_the_first_dump() {
        let obs = [
            dump(0, 1, 0, true),
            dump(0, 1, 1, false),
            dump(5, 6, 1, true),
            ev(9, 0, false),
            ev(3, 0, true),
        ];
        assert_eq!(current(&obs, 3), vec![false, false, false]);
    }
}
