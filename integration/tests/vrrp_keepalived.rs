//! Interop with the real keepalived (root and `keepalived` installed; `SKIPPED` otherwise):
//! vigild and keepalived 2.2.x elect one master and fail over both ways, over IPv4 multicast
//! with VRRPv3 and VRRPv2, and over IPv6 with VRRPv3.

use std::path::Path;
use std::time::Duration;

use vigil_integration::{Host, Lab, Process, root_available, wait_for};

use crate::vrrp_support::{Daemon, Node, SETTLE, VIP4, VIP6, holds, wait_owner};

/// One interop scenario's protocol settings.
#[derive(Debug, Clone, Copy)]
struct Case {
    version: u8,
    /// vigild's `advert_interval`.
    vigil_interval: &'static str,
    /// keepalived's `advert_int` (the same interval).
    ka_interval: &'static str,
    /// The VIP (address only; the lab's prefixes are /24 and /64).
    vip: &'static str,
    /// How long a backup must stay backup to prove it hears the master: past several
    /// Master_Down_Intervals.
    hold: Duration,
}

const V3: Case = Case {
    version: 3,
    vigil_interval: "100ms",
    ka_interval: "0.1",
    vip: VIP4,
    hold: Duration::from_secs(1),
};

const V2: Case = Case {
    version: 2,
    vigil_interval: "1s",
    ka_interval: "1",
    vip: VIP4,
    hold: Duration::from_millis(4500),
};

const V3_IPV6: Case = Case { vip: VIP6, ..V3 };

impl Case {
    fn cidr(&self) -> String {
        let prefix = if self.vip.contains(':') { 64 } else { 24 };
        format!("{}/{prefix}", self.vip)
    }

    fn node(&self, priority: u8) -> Node {
        Node {
            interval: self.vigil_interval,
            extra: format!("version = {}\n", self.version),
            vips: vec![self.cidr()],
            ..Node::new(priority)
        }
    }
}

/// keepalived's binary, if installed.
fn keepalived() -> Option<&'static str> {
    ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

fn available(test: &str) -> Option<&'static str> {
    if !root_available(test) {
        return None;
    }
    let found = keepalived();
    if found.is_none() {
        eprintln!("SKIPPED (needs keepalived; scripts/install-deps installs it): {test}");
    }
    found
}

/// keepalived's config for the same virtual router as vigild's.
fn keepalived_config(host: &Host, priority: u8, case: Case) -> String {
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_garp_master_delay 0\n}}\n\
         vrrp_instance VI_web {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id 51\n\
         \x20 priority {priority}\n  version {version}\n  advert_int {interval}\n\
         \x20 virtual_ipaddress {{\n    {vip} dev {iface}\n  }}\n}}\n",
        name = host.name(),
        iface = host.iface(),
        version = case.version,
        interval = case.ka_interval,
        vip = case.cidr(),
    )
}

/// Starts keepalived (VRRP only, foreground) on `host`.
fn start_keepalived(bin: &str, host: &Host, priority: u8, case: Case) -> Process {
    let conf = host
        .write_file("keepalived.conf", &keepalived_config(host, priority, case))
        .expect("write keepalived.conf");
    let dir = conf.parent().expect("lab dir").to_path_buf();
    let path = |name: &str| dir.join(name).display().to_string();
    host.spawn(
        "keepalived",
        &[
            bin.to_owned(),
            "-n".into(),
            "-l".into(),
            "-D".into(),
            "-P".into(),
            "-f".into(),
            conf.display().to_string(),
            "-p".into(),
            path("keepalived.pid"),
            "-r".into(),
            path("keepalived-vrrp.pid"),
        ],
        &[],
    )
    .expect("spawn keepalived")
}

/// vigild master (priority 150) with a keepalived backup; vigild crashes and keepalived takes
/// over; vigild returns and preempts keepalived.
fn vigild_master_keepalived_backup(test: &str, case: Case) {
    let Some(bin) = available(test) else { return };
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let vigil = Daemon::start(&lb1, &case.node(150));
    let ka = start_keepalived(bin, &lb2, 100, case);
    let logs = || format!("--- keepalived ---\n{}", ka.log());
    wait_owner(case.vip, &lb1, &[&lb1, &lb2], &[&vigil]);
    vigil.wait_state("master", SETTLE);
    // keepalived heard vigild: it stays backup.
    std::thread::sleep(case.hold);
    assert!(
        !holds(&lb2, case.vip),
        "keepalived took the VIP:\n{}",
        logs()
    );
    assert!(ka.is_running(), "keepalived exited:\n{}", logs());

    vigil.process.kill().expect("SIGKILL vigild");
    wait_for("keepalived takes the VIP", SETTLE, || holds(&lb2, case.vip))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));

    let vigil = Daemon::start(&lb1, &case.node(150));
    wait_owner(case.vip, &lb1, &[&lb1, &lb2], &[&vigil]);
    assert!(ka.is_running(), "keepalived exited:\n{}", logs());
}

/// keepalived master (priority 150) with a vigild backup; keepalived's process group is killed
/// (a crash: no priority-0 advert) and vigild takes over.
fn keepalived_master_vigild_backup(test: &str, case: Case) {
    let Some(bin) = available(test) else { return };
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let ka = start_keepalived(bin, &lb1, 150, case);
    let vigil = Daemon::start(&lb2, &case.node(100));
    let logs = || format!("--- keepalived ---\n{}", ka.log());
    wait_for("keepalived holds the VIP", SETTLE, || holds(&lb1, case.vip))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    vigil.wait_state("backup", SETTLE);
    // vigild accepted keepalived's adverts: it stays backup.
    std::thread::sleep(case.hold);
    assert_eq!(
        vigil.state().as_deref(),
        Some("backup"),
        "{}\n{}",
        vigil.process.log(),
        logs()
    );
    assert!(!holds(&lb2, case.vip));

    ka.kill().expect("kill keepalived's process group");
    vigil.wait_state("master", SETTLE);
    assert!(holds(&lb2, case.vip));
}

#[test]
fn keepalived_backs_up_a_vigild_master_v3() {
    vigild_master_keepalived_backup("vrrp interop: vigild master, keepalived backup (v3)", V3);
}

#[test]
fn keepalived_backs_up_a_vigild_master_v2() {
    vigild_master_keepalived_backup("vrrp interop: vigild master, keepalived backup (v2)", V2);
}

#[test]
fn keepalived_backs_up_a_vigild_master_v3_ipv6() {
    vigild_master_keepalived_backup(
        "vrrp interop: vigild master, keepalived backup (v3, IPv6)",
        V3_IPV6,
    );
}

#[test]
fn vigild_backs_up_a_keepalived_master_v3() {
    keepalived_master_vigild_backup("vrrp interop: keepalived master, vigild backup (v3)", V3);
}

#[test]
fn vigild_backs_up_a_keepalived_master_v2() {
    keepalived_master_vigild_backup("vrrp interop: keepalived master, vigild backup (v2)", V2);
}

#[test]
fn vigild_backs_up_a_keepalived_master_v3_ipv6() {
    keepalived_master_vigild_backup(
        "vrrp interop: keepalived master, vigild backup (v3, IPv6)",
        V3_IPV6,
    );
}
