//! The coordination cluster run by real vigild processes in the lab (root; `SKIPPED` otherwise):
//! replication through `vigilctl`, leader crash, full-cluster crash, a partitioned leader,
//! locks across a leader change and session expiry, membership changes, and the bootstrap rule
//! with a wiped data directory. Member 3 is a witness (`[cluster] witness = true`) throughout.

use std::time::{Duration, Instant};

use vigil_integration::{Lab, root_available, wait_for, wait_for_value};

use crate::coord_support::{
    CLIENT_PORT, Member, SESSION, SETTLE, logs, start_cluster, vigilctl, wait_leader,
};

/// The leader is gone → a surviving member serves writes within this (the bound).
const FAILOVER_BOUND: Duration = Duration::from_secs(2);
/// `vigilctl status` on a minority: the daemon gives the tree 2 s, plus process start-up.
const STATUS_BOUND: Duration = Duration::from_secs(5);
/// A minority must refuse within this: the node's request timeout (5 s) plus process start-up.
const REFUSAL_BOUND: Duration = Duration::from_secs(9);

/// `(node, up, record)` of every node in `vigilctl status --json` on `member`, if it answers
/// with a cluster view.
fn cluster_view(member: &Member) -> Option<Vec<(String, bool, serde_json::Value)>> {
    let out = member.ctl(&["status", "--json"]);
    if out.code != Some(0) {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let nodes = status.get("cluster")?.get("members")?.as_array()?;
    nodes
        .iter()
        .map(|n| {
            Some((
                n.get("node")?.as_str()?.to_owned(),
                n.get("up")?.as_bool()?,
                n.get("record").cloned().unwrap_or_default(),
            ))
        })
        .collect()
}

fn index_of(members: &[Member], id: u64) -> usize {
    members
        .iter()
        .position(|m| m.id == id)
        .expect("leader is a member")
}

#[test]
fn writes_replicate_to_every_member_and_survive_a_leader_crash_and_a_full_restart() {
    if !root_available("coord: replication, leader SIGKILL, full restart") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
    let hosts = lab.hosts();
    let (mut members, leader) = start_cluster(&hosts, Some(3));

    // The witness runs coordination only and says so.
    let witness = members[2].coord_status().expect("witness status");
    assert_eq!(witness["witness"], true, "{witness}");
    assert_eq!(
        witness["voters"].as_object().map(serde_json::Map::len),
        Some(3)
    );
    let table = members[2].ok(&["status"]);
    assert!(table.contains("(witness)"), "{table}");

    // A write through any member reads back linearizably from every member.
    let mut acked: Vec<(String, String)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let path = format!("/k{i}");
        m.ok(&["create", &path, "first"]);
        m.ok(&["set", &path, &format!("v{i}")]);
        acked.push((path, format!("v{i}")));
    }
    for m in &members {
        for (path, value) in &acked {
            assert_eq!(
                m.ok(&["get", path]).trim_end(),
                value,
                "{path} on node {}",
                m.id
            );
        }
    }

    // Every node's status shows the whole cluster: all three up, each with its own record.
    let names: Vec<String> = hosts.iter().map(|h| h.name().to_owned()).collect();
    wait_for("status lists all three nodes up", SETTLE, || {
        cluster_view(&members[0]).is_some_and(|view| {
            view.len() == 3
                && view.iter().zip(&names).all(|((node, up, record), name)| {
                    node == name && *up && record["node"] == **name
                })
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&members.iter().collect::<Vec<_>>())));

    // SIGKILL of the leader: a survivor serves writes within the bound, nothing acked is lost.
    let dead = index_of(&members, leader);
    members[dead].process.kill().expect("SIGKILL the leader");
    let killed_at = Instant::now();
    let survivor = &members[(dead + 1) % 3];
    let mut attempts = 0;
    let failover = loop {
        attempts += 1;
        let out = survivor.ctl(&["create", "/after-failover", "x"]);
        if out.code == Some(0) {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "no write succeeded after the leader died; last: {out:?}\n{}",
            logs(&members.iter().collect::<Vec<_>>())
        );
    };
    eprintln!(
        "coord failover: first write acknowledged {failover:?} after SIGKILL ({attempts} attempts)"
    );
    assert!(
        failover < FAILOVER_BOUND,
        "the first write after the leader's SIGKILL took {failover:?}"
    );
    acked.push(("/after-failover".into(), "x".into()));

    // Once its session expires, the survivors list the killed node as down, with its last
    // record (and a witness's record says it is one).
    let dead_name = names[dead].clone();
    let down = wait_for_value("status lists the killed node as down", SETTLE, || {
        let view = cluster_view(survivor)?;
        let (_, up, record) = view.iter().find(|(node, ..)| *node == dead_name)?.clone();
        (view.len() == 3 && !up).then_some(record)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&members.iter().collect::<Vec<_>>())));
    assert_eq!(down["node"], dead_name.as_str(), "{down}");
    assert_eq!(down["witness"], dead == 2, "{down}");
    eprintln!(
        "cluster view: {dead_name} listed as down {:?} after SIGKILL (session {SESSION})",
        killed_at.elapsed()
    );
    let table = survivor.ok(&["status"]);
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{dead_name} ")))
        .unwrap_or_else(|| panic!("no row for {dead_name}:\n{table}"));
    assert!(row.contains("DOWN (seen"), "{table}");
    for m in members.iter().filter(|m| m.id != leader) {
        for (path, value) in &acked {
            assert_eq!(m.ok(&["get", path]).trim_end(), value);
        }
    }

    // The old leader comes back with its data and catches up.
    members[dead].restart();
    let back = &members[dead];
    wait_for("the restarted member catches up", SETTLE, || {
        back.ctl(&["get", "--stale", "/after-failover"])
            .stdout
            .trim_end()
            == "x"
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", back.process.log_tail(40)));

    // SIGKILL all three at once, restart: every acknowledged write is there.
    for m in &members {
        m.process.kill().expect("SIGKILL");
    }
    for m in &mut members {
        m.restart();
    }
    wait_leader(&members.iter().collect::<Vec<_>>());
    for m in &members {
        for (path, value) in &acked {
            assert_eq!(
                m.ok(&["get", path]).trim_end(),
                value,
                "{path} after restart"
            );
        }
    }
}

#[test]
fn a_partitioned_leader_refuses_the_majority_goes_on_and_it_catches_up_after_healing() {
    if !root_available("coord: partitioned leader") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
    let hosts = lab.hosts();
    let (members, leader) = start_cluster(&hosts, Some(3));
    let old = &members[index_of(&members, leader)];
    old.ok(&["create", "/p", "before"]);
    lab.cut(&old.host).expect("cut the leader away");

    // The minority refuses writes and linearizable reads, with a clear error, in bounded time.
    let write = old.ctl(&["set", "/p", "minority"]);
    assert_eq!(write.code, Some(69), "{write:?}");
    assert!(write.stderr.contains("cannot serve"), "{write:?}");
    assert!(write.took < REFUSAL_BOUND, "refusal took {:?}", write.took);
    let read = old.ctl(&["get", "/p"]);
    assert_eq!(read.code, Some(69), "{read:?}");
    assert!(read.took < REFUSAL_BOUND, "refusal took {:?}", read.took);

    // Its status still answers promptly: the local part, and why the cluster is not shown.
    let status = old.ctl(&["status", "--json"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(status.took < STATUS_BOUND, "status took {:?}", status.took);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(status["node_name"], old.host.name(), "{status}");
    assert!(
        status["cluster"]["error"].as_str().is_some(),
        "a minority cannot read the cluster's records: {status}"
    );
    let table = old.ok(&["status"]);
    assert!(table.contains("\ncluster: "), "{table}");

    // The majority elects a new leader and goes on.
    let majority: Vec<&Member> = members.iter().filter(|m| m.id != leader).collect();
    let new_leader = wait_for_value("a new leader in the majority", SETTLE, || {
        let l = majority[0].leader()?;
        (l != leader && majority[1].leader() == Some(l)).then_some(l)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&majority)));
    assert_ne!(new_leader, leader);
    majority[0].ok(&["set", "/p", "majority"]);
    assert_eq!(majority[1].ok(&["get", "/p"]).trim_end(), "majority");

    // Healed, the old leader follows the new one and has the majority's write.
    lab.heal(&old.host).expect("heal");
    wait_for("the old leader catches up", SETTLE, || {
        old.ctl(&["get", "/p"]).stdout.trim_end() == "majority"
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", old.process.log_tail(40)));
    assert_eq!(old.leader(), Some(new_leader));
}

/// Reads a file a lock holder wrote, once it is there.
fn read_token(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn a_lock_survives_a_leader_change_and_expiry_hands_it_on_with_a_larger_token() {
    if !root_available("coord: vigilctl lock") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
    let hosts = lab.hosts();
    let (members, leader) = start_cluster(&hosts, Some(3));
    let followers: Vec<&Member> = members.iter().filter(|m| m.id != leader).collect();
    let (holder_node, waiter_node) = (followers[0], followers[1]);
    let dir = lab.dir().to_owned();
    let (tok1, tok2, cmd_pid) = (dir.join("tok1"), dir.join("tok2"), dir.join("cmd1.pid"));

    let vigilctl_bin = crate::vrrp_support::binary("vigilctl");
    let lock = |m: &Member, name: &str, script: String| {
        m.host
            .spawn(
                name,
                &[
                    vigilctl_bin.to_str().expect("UTF-8 path"),
                    "--config",
                    m.config.to_str().expect("UTF-8 path"),
                    "lock",
                    "job",
                    "--session-timeout",
                    SESSION,
                    "--",
                    "sh",
                    "-c",
                    &script,
                ],
                &[],
            )
            .expect("spawn vigilctl lock")
    };
    let holder = lock(
        holder_node,
        "holder",
        format!(
            "echo $$ > {pid}; echo $VIGIL_FENCING_TOKEN > {tok}; exec sleep 60",
            pid = cmd_pid.display(),
            tok = tok1.display()
        ),
    );
    let first = wait_for_value("the holder runs its command", SETTLE, || read_token(&tok1))
        .unwrap_or_else(|e| panic!("{e}\n{}", holder.log()));
    let waiter = lock(
        waiter_node,
        "waiter",
        format!("echo $VIGIL_FENCING_TOKEN > {}", tok2.display()),
    );
    // The waiter has queued (its node is the second under /locks/job).
    wait_for("the waiter queues", SETTLE, || {
        waiter_node.ok(&["ls", "/locks/job"]).lines().count() == 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", waiter.log()));

    // A leader change does not take the lock away: the holder's session rides it out.
    members[index_of(&members, leader)]
        .process
        .kill()
        .expect("SIGKILL the leader");
    wait_leader(&followers);
    std::thread::sleep(Duration::from_secs(4));
    assert!(holder.is_running(), "holder exited:\n{}", holder.log());
    assert!(
        read_token(&tok2).is_none(),
        "the waiter got the lock while the holder held it:\n{}",
        waiter.log()
    );

    // A frozen holder's session expires: the waiter gets the lock, with a larger token.
    holder.stop().expect("SIGSTOP the holder");
    let second = wait_for_value("the waiter gets the lock", SETTLE, || read_token(&tok2))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", waiter.log(), logs(&followers)));
    assert!(
        second > first,
        "fencing tokens must grow: holder {first}, next holder {second}"
    );
    let status = waiter
        .wait(SETTLE)
        .expect("the waiter exits after its command");
    assert!(status.success(), "waiter: {status}\n{}", waiter.log());
    holder.kill().expect("SIGKILL the holder");
    // The holder's command was in its own process group; end it here.
    if let Ok(pid) = std::fs::read_to_string(&cmd_pid) {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status();
    }
}

#[test]
fn a_fourth_node_joins_as_a_learner_is_promoted_and_removed_and_a_wiped_node_does_not_rebootstrap()
{
    if !root_available("coord: membership and bootstrap rule") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness", "lb3"]).expect("lab");
    let hosts = lab.hosts();
    let (mut members, _) = start_cluster(&hosts[..3], Some(3));
    members[0].ok(&["create", "/before-join", "x"]);
    let peers: Vec<(u64, &vigil_integration::Host)> = (1..).zip(&hosts[..3]).collect::<Vec<_>>();
    let fourth = Member::start(&hosts[3], 4, false, &peers);
    // Any member's address works: the client fails over to the leader.
    let coord: Vec<String> = members.iter().map(Member::client_addr).collect();
    let coord = coord.join(",");
    let raft4 = format!("{}:7401", hosts[3].ipv4());
    let add = vigilctl(
        &members[0].host,
        &["--coord", &coord, "members", "add", "4", &raft4],
    );
    assert_eq!(
        add.code,
        Some(0),
        "{add:?}\n{}",
        fourth.process.log_tail(30)
    );
    let listed = members[0].ok(&["--coord", &coord, "members", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let role_of = |status: &serde_json::Value, id: u64| {
        status["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == id))
            .map(|m| m["role"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(role_of(&status, 4).as_deref(), Some("learner"), "{listed}");
    // The learner has caught up: it serves what was written before it joined.
    let own = format!("127.0.0.1:{CLIENT_PORT}");
    wait_for("the learner has the old writes", SETTLE, || {
        vigilctl(
            &hosts[3],
            &["--coord", &own, "get", "--stale", "/before-join"],
        )
        .stdout
        .trim_end()
            == "x"
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", fourth.process.log_tail(30)));

    let promoted = members[0].ok(&["--coord", &coord, "members", "promote", "4", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&promoted).expect("JSON");
    assert_ne!(
        role_of(&status, 4).as_deref(),
        Some("learner"),
        "{promoted}"
    );
    assert!(role_of(&status, 4).is_some(), "{promoted}");
    members[1].ok(&["--coord", &coord, "set", "/before-join", "with-4"]);

    let removed = members[0].ok(&["--coord", &coord, "members", "remove", "4", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&removed).expect("JSON");
    assert_eq!(role_of(&status, 4), None, "{removed}");

    // Node 1, the lowest id, loses its data: it must not bootstrap a second cluster. It waits,
    // the leader brings it back, and it serves the real cluster's data. (Its log file is
    // appended to across restarts: count the bootstrap lines before and after.)
    const BOOTSTRAPPED: &str = "bootstrapped a new coordination cluster";
    let bootstraps = |m: &Member| m.process.log().matches(BOOTSTRAPPED).count();
    let before = bootstraps(&members[0]);
    members[0].process.kill().expect("SIGKILL node 1");
    std::fs::remove_dir_all(&members[0].data_dir).expect("wipe node 1's data dir");
    members[0].restart();
    let wiped = &members[0];
    wait_for("the wiped node serves the cluster's data", SETTLE, || {
        wiped
            .ctl(&["get", "--stale", "/before-join"])
            .stdout
            .trim_end()
            == "with-4"
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&members.iter().collect::<Vec<_>>())));
    assert_eq!(
        bootstraps(wiped),
        before,
        "a wiped lowest-id node bootstrapped again:\n{}",
        wiped.process.log()
    );
    for m in &members {
        assert_eq!(m.ok(&["get", "/before-join"]).trim_end(), "with-4");
    }
}
