//! A small writer for the Prometheus text exposition format, version 0.0.4.
//!
//! Hand-written rather than a client crate: vigild's metrics are gathered at scrape time from
//! the runtimes' own status views plus a few atomics, so all that is needed is correct text —
//! `# HELP`/`# TYPE` once per family, escaped label values, cumulative histogram buckets — not
//! a registry, and not the compile time of one.
//!
//! <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>

use std::fmt::Write;

use super::histogram::HistogramSnapshot;

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets, a sum and a count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One label: name and (unescaped) value.
pub type Label<'a> = (&'a str, &'a str);

/// Builds one exposition document.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// The family whose samples are being written, to catch samples of undeclared families.
    family: String,
}

impl Exposition {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Each family must be started once, and
    /// all its samples must follow before the next family starts.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_name(name), "bad metric name {name:?}");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_into(&mut self.out, help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
        name.clone_into(&mut self.family);
    }

    /// One sample of the current family (`name` may carry a `_bucket`/`_sum`/`_count` suffix).
    pub fn sample(&mut self, name: &str, labels: &[Label<'_>], value: f64) {
        debug_assert!(
            name.starts_with(self.family.as_str()),
            "sample {name} outside its family {}",
            self.family
        );
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// An integer sample; exact for every `u64` (an `f64` is not above 2^53).
    pub fn sample_u64(&mut self, name: &str, labels: &[Label<'_>], value: u64) {
        debug_assert!(name.starts_with(self.family.as_str()));
        self.out.push_str(name);
        self.labels(labels, None);
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, " {value}");
    }

    /// A whole histogram of the current family: `_bucket` lines with `le` (cumulative, ending
    /// with `+Inf`), `_sum` and `_count`.
    pub fn histogram(&mut self, labels: &[Label<'_>], h: &HistogramSnapshot) {
        let family = self.family.clone();
        let bucket = format!("{family}_bucket");
        let mut le = String::new();
        for (bound, count) in h.buckets() {
            le.clear();
            push_value(&mut le, bound);
            self.out.push_str(&bucket);
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count());
        self.sample(&format!("{family}_sum"), labels, h.sum_secs());
        self.sample_u64(&format!("{family}_count"), labels, h.count());
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }

    fn labels(&mut self, labels: &[Label<'_>], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        let extra = le.map(|v| ("le", v));
        for (name, value) in labels.iter().copied().chain(extra) {
            debug_assert!(
                valid_name(name) && !name.contains(':'),
                "bad label {name:?}"
            );
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value, true);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// Escapes `\` and newlines (and `"` in label values), as the format requires.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Go's `ParseFloat` syntax: integers without a fraction, `+Inf`/`-Inf`/`NaN`.
fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Rust's shortest round-trip form, never with an exponent: valid for Prometheus.
        let _ = write!(out, "{value}");
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::histogram::Histogram;
    use super::*;

    #[test]
    fn help_type_and_escaped_labels() {
        let mut e = Exposition::new();
        e.family("vigil_x_total", Kind::Counter, "Things \\ done\nso far.");
        e.sample_u64("vigil_x_total", &[("name", "a\"b\\c\nd")], 3);
        e.sample_u64("vigil_x_total", &[], 18_446_744_073_709_551_615);
        e.family("vigil_y", Kind::Gauge, "A gauge.");
        e.sample("vigil_y", &[("a", "1"), ("b", "2")], 0.25);
        e.sample("vigil_y", &[], f64::NAN);
        e.sample("vigil_y", &[], f64::NEG_INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP vigil_x_total Things \\\\ done\\nso far.\n\
             # TYPE vigil_x_total counter\n\
             vigil_x_total{name=\"a\\\"b\\\\c\\nd\"} 3\n\
             vigil_x_total 18446744073709551615\n\
             # HELP vigil_y A gauge.\n\
             # TYPE vigil_y gauge\n\
             vigil_y{a=\"1\",b=\"2\"} 0.25\n\
             vigil_y NaN\n\
             vigil_y -Inf\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        static BOUNDS: [Duration; 2] = [Duration::from_millis(1), Duration::from_millis(10)];
        let h = Histogram::new(&BOUNDS);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1)); // on the bound: le is inclusive
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(2));
        let mut e = Exposition::new();
        e.family("vigil_lat_seconds", Kind::Histogram, "Latency.");
        e.histogram(&[("kind", "tcp")], &h.snapshot());
        assert_eq!(
            e.finish(),
            "# HELP vigil_lat_seconds Latency.\n\
             # TYPE vigil_lat_seconds histogram\n\
             vigil_lat_seconds_bucket{kind=\"tcp\",le=\"0.001\"} 2\n\
             vigil_lat_seconds_bucket{kind=\"tcp\",le=\"0.01\"} 3\n\
             vigil_lat_seconds_bucket{kind=\"tcp\",le=\"+Inf\"} 4\n\
             vigil_lat_seconds_sum{kind=\"tcp\"} 2.0065\n\
             vigil_lat_seconds_count{kind=\"tcp\"} 4\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("vigil_raft_term"));
        assert!(valid_name("a:b_c9"));
        assert!(!valid_name("9abc"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
