//! The implementations a schedule runs against and their configs: identical VRRP settings
//! (VRRPv3, virtual router 51, adverts every 100 ms, lb1 priority 150, lb2 100, preemption,
//! no gratuitous-ARP delay) so only the fencing differs.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::schedule::Node;
use crate::host::Host;
use crate::tokens;

/// The VIP every target serves (the lab's segment is 10.0.0.0/24).
pub const VIP: &str = "10.0.0.100";
/// The VRRP instance name (and so the owner znode `/vigil/vrrp/vi_fault/owner`).
pub const INSTANCE: &str = "vi_fault";
/// Raft port of every voter.
const RAFT_PORT: u16 = 7401;

/// What runs on the load balancers (and the witness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// vigild with a three-voter cluster (lb1, lb2, witness) and `fencing = "quorum"`.
    Vigild,
    /// vigild as plain VRRP (`fencing = "off"`, no cluster); the witness runs nothing.
    VigildNoFence,
    /// keepalived 2.x; the witness runs nothing.
    Keepalived,
}

impl Target {
    /// Every target, in table order.
    pub const ALL: [Target; 3] = [Target::Vigild, Target::VigildNoFence, Target::Keepalived];

    /// Whether the witness runs a daemon.
    pub fn has_witness(self) -> bool {
        self == Self::Vigild
    }

    /// Whether notify scripts receive fencing tokens that must strictly increase.
    pub fn has_tokens(self) -> bool {
        self == Self::Vigild
    }

    /// Whether `node` runs a daemon under this target.
    pub fn runs_on(self, node: Node) -> bool {
        node != Node::Witness || self.has_witness()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vigild => "vigild",
            Self::VigildNoFence => "vigild-nofence",
            Self::Keepalived => "keepalived",
        })
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.to_string() == s)
            .ok_or_else(|| format!("unknown target {s:?} (vigild, vigild-nofence, keepalived)"))
    }
}

/// The lab's voters: each node's host, in [`Node::ALL`] order.
#[derive(Debug, Clone)]
pub struct Voters {
    /// lb1, lb2, witness.
    pub hosts: [Host; 3],
}

impl Voters {
    /// The host of `node`.
    pub fn host(&self, node: Node) -> &Host {
        &self.hosts[node as usize]
    }
}

/// Tunables of the generated configs.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Fencing session timeout (`[cluster.fencing] session_timeout`).
    pub session_timeout: Duration,
    /// VRRP advert interval.
    pub advert: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(4),
            advert: Duration::from_millis(100),
        }
    }
}

/// The config file of `node` for `target` (vigild's TOML or keepalived.conf); `dir` is the
/// node's own directory (vigild's `state_dir` lives there) and `token_file` the shared file
/// the `notify_master` hooks append to.
pub fn config(
    target: Target,
    node: Node,
    voters: &Voters,
    dir: &Path,
    token_file: &Path,
    tuning: Tuning,
) -> String {
    match target {
        Target::Vigild | Target::VigildNoFence => {
            vigild_config(target, node, voters, dir, token_file, tuning)
        }
        Target::Keepalived => keepalived_config(node, voters, tuning),
    }
}

/// The file name of the config of `target`.
pub fn config_name(target: Target) -> &'static str {
    match target {
        Target::Keepalived => "keepalived.conf",
        _ => "vigil.toml",
    }
}

fn priority(node: Node) -> u8 {
    if node == Node::Lb1 { 150 } else { 100 }
}

fn vigild_config(
    target: Target,
    node: Node,
    voters: &Voters,
    dir: &Path,
    token_file: &Path,
    tuning: Tuning,
) -> String {
    let host = voters.host(node);
    let mut c = format!(
        "[global]\nnode_name = \"{name}\"\nscript_user = \"root\"\nstate_dir = \"{state}\"\n\n\
         [api]\nlisten = \"127.0.0.1:7400\"\n\n",
        name = host.name(),
        state = dir.join("state").display(),
    );
    if target == Target::Vigild {
        c.push_str(&cluster_section(node, voters, tuning));
    }
    if node == Node::Witness {
        return c;
    }
    let notify: Vec<String> = tokens::notify_master_argv(host.name(), token_file)
        .iter()
        .map(|a| toml_string(a))
        .collect();
    let fencing = if target == Target::Vigild {
        "quorum"
    } else {
        "off"
    };
    let _ = write!(
        c,
        "[[vrrp_instance]]\nname = \"{INSTANCE}\"\ninterface = \"{iface}\"\nvrid = 51\n\
         version = 3\npriority = {prio}\nadvert_interval = \"{advert}ms\"\npreempt = true\n\
         garp_delay = \"0s\"\nfencing = \"{fencing}\"\nvips = [\"{VIP}/24\"]\n\
         notify_master = [{notify}]\n",
        iface = host.iface(),
        prio = priority(node),
        advert = tuning.advert.as_millis(),
        notify = notify.join(", "),
    );
    c
}

fn cluster_section(node: Node, voters: &Voters, tuning: Tuning) -> String {
    let id = |n: Node| n as usize + 1;
    let mut c = format!(
        "[cluster]\nnode_id = {id}\nraft_listen = \"{addr}:{RAFT_PORT}\"\n\
         heartbeat_interval = \"100ms\"\nelection_timeout_min = \"500ms\"\n\
         election_timeout_max = \"1s\"\nwitness = {witness}\n\
         [cluster.fencing]\nsession_timeout = \"{timeout}ms\"\n",
        id = id(node),
        addr = voters.host(node).ipv4(),
        timeout = tuning.session_timeout.as_millis(),
        witness = node == Node::Witness,
    );
    for peer in Node::ALL.into_iter().filter(|&n| n != node) {
        let _ = write!(
            c,
            "\n[[cluster.peers]]\nid = {}\naddress = \"{}:{RAFT_PORT}\"\n",
            id(peer),
            voters.host(peer).ipv4()
        );
    }
    c.push('\n');
    c
}

fn keepalived_config(node: Node, voters: &Voters, tuning: Tuning) -> String {
    let host = voters.host(node);
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_garp_master_delay 0\n}}\n\
         vrrp_instance VI_fault {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id 51\n\
         \x20 priority {prio}\n  version 3\n  advert_int {secs}\n\
         \x20 virtual_ipaddress {{\n    {VIP}/24 dev {iface}\n  }}\n}}\n",
        name = host.name(),
        iface = host.iface(),
        prio = priority(node),
        secs = tuning.advert.as_secs_f64(),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The per-node directory inside the lab directory.
pub(super) fn node_dir(lab_dir: &Path, node: Node) -> PathBuf {
    lab_dir.join(node.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_their_names() {
        for t in Target::ALL {
            assert_eq!(t.to_string().parse::<Target>(), Ok(t));
        }
        assert!("zookeeper".parse::<Target>().is_err());
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
