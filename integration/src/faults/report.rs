//! One line per schedule and the summary table per target.

use std::fmt::Write as _;
use std::time::Duration;

use super::run::Outcome;
use super::target::Target;
use crate::holders::timeline::Overlap;

/// The per-schedule line: seed, double holders (episodes and ms, both views), tokens,
/// settling, time.
pub fn line(o: &Outcome) -> String {
    let h = &o.holders;
    let tokens = o.tokens.as_ref().map_or_else(
        || "-".to_owned(),
        |t| {
            if t.ok() {
                format!("ok({})", t.grants)
            } else {
                format!("BAD({t})")
            }
        },
    );
    let settled = o.settled.as_ref().map_or_else(
        || "NOT SETTLED".to_owned(),
        |(holder, after)| format!("{holder} +{:.1}s", after.as_secs_f64()),
    );
    let mut s = format!(
        "{:<14} seed {:>6}  double {:>2} ({:>7.1} ms, sampled {:>2})  tokens {:<8} end {:<14} {:>5.1}s",
        o.target.to_string(),
        o.seed,
        h.event_overlaps.len(),
        ms(h.double_holder_time()),
        h.dump_overlaps.len(),
        tokens,
        settled,
        o.elapsed.as_secs_f64()
    );
    if let Some(gap) = h.closest_handover() {
        let _ = write!(s, "  closest hand-over {:.0} ms", ms(gap));
    }
    if !o.exited.is_empty() {
        let _ = write!(s, "  exited: {}", o.exited.join(", "));
    }
    if !h.mismatches.is_empty() || h.overruns > 0 {
        let _ = write!(
            s,
            "  recorder: {} mismatches, {} overruns",
            h.mismatches.len(),
            h.overruns
        );
    }
    if o.fencing_enforced == Some(false) {
        s.push_str("  (fencing NOT enforced by this vigild)");
    }
    s
}

/// Totals of one target over its schedules.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Schedules run to the end.
    pub schedules: usize,
    /// Schedules that could not be run (set-up failure, no initial master).
    pub errors: usize,
    /// Schedules with at least one double-holder episode (either view).
    pub with_double: usize,
    /// Double-holder episodes (notifications).
    pub episodes: usize,
    /// Double-holder episodes (5 ms dumps).
    pub sampled_episodes: usize,
    /// Total double-holding time.
    pub double_time: Duration,
    /// Longest single episode.
    pub longest: Duration,
    /// Schedules whose tokens did not strictly increase (or were missing).
    pub token_failures: usize,
    /// Schedules where the VIP did not settle on one holder after the heal.
    pub unsettled: usize,
    /// Settling times after the heal.
    pub settle_times: Vec<Duration>,
    /// Schedules where a daemon died by itself.
    pub crashes: usize,
    /// Recorder cross-check failures (lost notifications).
    pub recorder_mismatches: usize,
    /// Worst dump gap seen.
    pub worst_dump_gap: Duration,
    /// Wall time of the schedules.
    pub wall: Duration,
    /// Whether vigild logged that it does not enforce fencing.
    pub fencing_not_enforced: bool,
}

impl Summary {
    /// Adds one schedule's outcome.
    pub fn add(&mut self, o: &Outcome) {
        let h = &o.holders;
        self.schedules += 1;
        self.with_double += usize::from(!h.never_two_holders());
        self.episodes += h.event_overlaps.len();
        self.sampled_episodes += h.dump_overlaps.len();
        self.double_time += h.double_holder_time();
        if let Some(longest) = h.event_overlaps.iter().map(Overlap::duration).max() {
            self.longest = self.longest.max(longest);
        }
        self.token_failures += usize::from(o.tokens.as_ref().is_some_and(|t| !t.ok()));
        match &o.settled {
            Some((_, after)) => self.settle_times.push(*after),
            None => self.unsettled += 1,
        }
        self.crashes += usize::from(!o.exited.is_empty());
        self.recorder_mismatches += h.mismatches.len();
        self.worst_dump_gap = self.worst_dump_gap.max(h.worst_dump_gap);
        self.wall += o.elapsed;
        self.fencing_not_enforced |= o.fencing_enforced == Some(false);
    }

    /// Counts a schedule that failed to run.
    pub fn add_error(&mut self, elapsed: Duration) {
        self.errors += 1;
        self.wall += elapsed;
    }
}

/// The side-by-side table.
pub fn table(rows: &[(Target, Summary)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| target | schedules | with double holder | episodes (events / 5 ms samples) | double-holder time total / longest | token violations | not settled | settle median / max | daemon died | errors | s per schedule |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (target, m) in rows {
        let mut settle = m.settle_times.clone();
        settle.sort();
        let median = settle.get(settle.len() / 2).copied().unwrap_or_default();
        let max = settle.last().copied().unwrap_or_default();
        let per = if m.schedules + m.errors > 0 {
            m.wall.as_secs_f64() / (m.schedules + m.errors) as f64
        } else {
            0.0
        };
        let tokens = if *target == Target::Vigild {
            m.token_failures.to_string()
        } else {
            "n/a".to_owned()
        };
        let name = if m.fencing_not_enforced {
            format!("{target} (fencing not enforced)")
        } else {
            target.to_string()
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} / {} | {:.0} ms / {:.0} ms | {tokens} | {} | {:.1} s / {:.1} s | {} | {} | {per:.1} |",
            m.schedules,
            m.with_double,
            m.episodes,
            m.sampled_episodes,
            ms(m.double_time),
            ms(m.longest),
            m.unsettled,
            median.as_secs_f64(),
            max.as_secs_f64(),
            m.crashes,
            m.errors,
        );
    }
    s
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
