//! Names of everything a lab creates, all derived from one run id.
//!
//! A run id is the owner's pid and a per-process counter in base 36 (`"2n9c01"`), so two labs — in
//! one test binary or in parallel processes — never share a name, and a leftover from a killed run
//! never collides with a new one. Every kernel object a lab creates carries the id:
//!
//! | object                          | name                 | where           |
//! |---------------------------------|----------------------|-----------------|
//! | switch namespace                | `vigil-<id>`         | `/run/netns`    |
//! | host namespace                  | `vigil-<id>-<host>`  | `/run/netns`    |
//! | bridge                          | `br-<id>`            | switch netns    |
//! | switch-side veth of host *i*    | `v<id><i:02>`        | switch netns    |
//! | host-side veth                  | `vnet0`              | host netns      |
//!
//! Interface names stay under the kernel's 15-byte `IFNAMSIZ` limit, and none looks like the
//! machine's own (`eth0`), so a command run in the wrong namespace fails instead of touching it.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{LabError, Result};

/// Prefix of every namespace a lab creates.
pub(crate) const NETNS_PREFIX: &str = "vigil-";
/// Name of the lab interface inside each host namespace.
pub const HOST_IFACE: &str = "vnet0";
/// Longest accepted host name; keeps namespace and log-file names readable.
const MAX_HOST_NAME: usize = 20;

/// The unique id of one lab run; see the module docs for what it names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// How many distinct ids one process can have at a time.
    pub(crate) const PER_PROCESS: u32 = 36 * 36;

    /// A fresh id for a lab owned by this process. The counter wraps after 1296 labs; the caller
    /// claims ids exclusively (see `state::claim`) and skips ones still taken.
    pub(crate) fn next() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) % Self::PER_PROCESS;
        let mut id = base36(u64::from(std::process::id()));
        let counter = base36(u64::from(n));
        if counter.len() < 2 {
            id.push('0');
        }
        id.push_str(&counter);
        Self(id)
    }

    /// Parses an id as found in a namespace or state-directory name.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (3..=7).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        ok.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace that holds the lab's bridge.
    pub(crate) fn switch_netns(&self) -> String {
        format!("{NETNS_PREFIX}{}", self.0)
    }

    /// The namespace of host `host`.
    pub(crate) fn host_netns(&self, host: &str) -> String {
        format!("{NETNS_PREFIX}{}-{host}", self.0)
    }

    /// The bridge inside the switch namespace.
    pub(crate) fn bridge(&self) -> String {
        format!("br-{}", self.0)
    }

    /// The switch-side veth (bridge port) of the host with index `index`.
    pub(crate) fn port(&self, index: usize) -> String {
        format!("v{}{index:02}", self.0)
    }

    /// Whether namespace `netns` belongs to this run (the switch or one of its hosts).
    pub(crate) fn owns_netns(&self, netns: &str) -> bool {
        netns
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.strip_prefix(self.0.as_str()))
            .is_some_and(|tail| tail.is_empty() || tail.starts_with('-'))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `name` can be used in namespace and file names.
pub(crate) fn validate_host_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = name.len() <= MAX_HOST_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LabError::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_short_enough_for_interface_names() {
        let a = RunId::next();
        let b = RunId::next();
        assert_ne!(a, b);
        assert!(a.port(99).len() <= 15, "{}", a.port(99));
        assert!(a.bridge().len() <= 15, "{}", a.bridge());
        assert_eq!(RunId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn largest_pid_still_fits() {
        // Linux caps pids at 2^22; base 36 needs five digits for that, plus two for the counter.
        let id = format!("{}zz", base36(1 << 22));
        assert_eq!(id.len(), 7);
        let run = RunId::parse(&id).expect("seven base-36 digits parse");
        assert_eq!(run.port(12).len(), 10);
    }

    #[test]
    fn netns_ownership_does_not_match_longer_ids() {
        let run = RunId("abc01".to_owned());
        assert!(run.owns_netns("vigil-abc01"));
        assert!(run.owns_netns("vigil-abc01-lb1"));
        assert!(!run.owns_netns("vigil-abc012-lb1"));
        assert!(!run.owns_netns("other-abc01"));
    }

    #[test]
    fn host_names_are_checked() {
        assert!(validate_host_name("lb1").is_ok());
        assert!(validate_host_name("rs-2").is_ok());
        for bad in [
            "",
            "1lb",
            "LB1",
            "lb 1",
            "lb/1",
            "a-very-long-host-name-indeed",
        ] {
            assert!(validate_host_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
