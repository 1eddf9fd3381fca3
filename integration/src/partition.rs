//! Network partitions: which bridge ports may not talk to which, rendered as an nftables ruleset.
//!
//! Cuts are filters in the `bridge` family's forward hook inside the lab's switch namespace, so a
//! cut host keeps its carrier and addresses (as across a broken switch or a firewall) and only
//! frames between lab hosts are affected. The whole table is replaced atomically on every change
//! (`nft -f` applies a file as one transaction), so there is never a moment with half a partition.

use std::collections::BTreeSet;
use std::fmt::Write;

/// The nftables table the lab owns inside its switch namespace.
const TABLE: &str = "vigil_lab";

/// The current partition state of one lab, by host index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cuts {
    /// Hosts cut off from every other host.
    isolated: BTreeSet<usize>,
    /// Pairs that cannot reach each other, stored as `(low, high)`.
    pairs: BTreeSet<(usize, usize)>,
}

impl Cuts {
    pub(crate) fn isolate(&mut self, host: usize) {
        self.isolated.insert(host);
    }

    pub(crate) fn rejoin(&mut self, host: usize) {
        self.isolated.remove(&host);
    }

    pub(crate) fn cut_pair(&mut self, a: usize, b: usize) {
        self.pairs.insert(ordered(a, b));
    }

    pub(crate) fn heal_pair(&mut self, a: usize, b: usize) {
        self.pairs.remove(&ordered(a, b));
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether frames between hosts `a` and `b` are dropped.
    pub(crate) fn blocks(&self, a: usize, b: usize) -> bool {
        self.isolated.contains(&a)
            || self.isolated.contains(&b)
            || self.pairs.contains(&ordered(a, b))
    }

    /// The `nft -f` script that replaces the lab's table with one enforcing these cuts;
    /// `port(i)` names host `i`'s bridge port.
    pub(crate) fn ruleset(&self, port: impl Fn(usize) -> String) -> String {
        // Declaring the table first makes the delete succeed when it does not exist yet.
        let mut script = format!(
            "table bridge {TABLE}\ndelete table bridge {TABLE}\ntable bridge {TABLE} {{\n  \
             chain cuts {{\n    type filter hook forward priority 0; policy accept;\n"
        );
        for &host in &self.isolated {
            let p = port(host);
            let _ = writeln!(script, "    iifname \"{p}\" drop\n    oifname \"{p}\" drop");
        }
        for &(a, b) in &self.pairs {
            let (pa, pb) = (port(a), port(b));
            let _ = writeln!(
                script,
                "    iifname \"{pa}\" oifname \"{pb}\" drop\n    iifname \"{pb}\" oifname \"{pa}\" drop"
            );
        }
        script.push_str("  }\n}\n");
        script
    }
}

fn ordered(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(i: usize) -> String {
        format!("p{i}")
    }

    #[test]
    fn pair_cuts_are_symmetric_and_only_block_that_pair() {
        let mut cuts = Cuts::default();
        cuts.cut_pair(2, 0);
        assert!(cuts.blocks(0, 2) && cuts.blocks(2, 0));
        assert!(!cuts.blocks(0, 1) && !cuts.blocks(1, 2));
        let rules = cuts.ruleset(port);
        assert!(
            rules.contains("iifname \"p0\" oifname \"p2\" drop"),
            "{rules}"
        );
        assert!(
            rules.contains("iifname \"p2\" oifname \"p0\" drop"),
            "{rules}"
        );
        cuts.heal_pair(0, 2);
        assert_eq!(cuts, Cuts::default());
    }

    #[test]
    fn isolation_blocks_both_directions_until_rejoined() {
        let mut cuts = Cuts::default();
        cuts.isolate(1);
        assert!(cuts.blocks(1, 0) && cuts.blocks(2, 1));
        assert!(!cuts.blocks(0, 2));
        let rules = cuts.ruleset(port);
        assert!(rules.contains("iifname \"p1\" drop") && rules.contains("oifname \"p1\" drop"));
        cuts.rejoin(1);
        assert!(!cuts.blocks(1, 0));
    }

    #[test]
    fn empty_state_renders_a_table_that_drops_nothing() {
        let rules = Cuts::default().ruleset(port);
        assert!(rules.starts_with("table bridge vigil_lab\ndelete table bridge vigil_lab\n"));
        assert!(!rules.contains("drop"), "{rules}");
    }
}
