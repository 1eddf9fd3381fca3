//! Memory and snapshot cost of a large znode tree, measured in-process without Raft or HTTP.
//!
//! ```sh
//! cargo run --release -p vigil-coord --example tree_footprint -- 1000000 /tmp/tree.snap
//! cargo run --release -p vigil-coord --example tree_footprint -- load /tmp/tree.snap
//! ```
//!
//! Builds the benchmark's shape (`/vb/m/<i>`, 10-byte values, one create per applied entry)
//! through [`StateMachine::apply`], then prints the resident-set growth per znode, the snapshot
//! size and how long encoding and restoring take. RSS is what the kernel charges the process,
//! allocator slack included, which is what `vigil-bench coord` reports per member.

use std::time::Instant;

use vigil_coord::{Command, CreateMode, Op, Request, SessionId, StateMachine};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn create(sm: &mut StateMachine, index: &mut u64, path: String, data: &[u8]) {
    *index += 1;
    let request = Request::Single(Op::Create {
        path,
        data: data.to_vec(),
        mode: CreateMode::Persistent,
        sequential: false,
    });
    sm.apply(
        *index,
        1_700_000_000_000 + *index,
        Command::Write {
            session: SessionId(1),
            request_id: *index,
            request,
        },
    );
    // The Raft store hands the events to the watch layer after every entry.
    drop(sm.drain_events());
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1 << 20)
}

/// Restores a snapshot written by the build mode in a fresh process, so that the RSS is the
/// restored tree's alone.
fn load(file: &str) {
    let base = rss_bytes();
    let t = Instant::now();
    let bytes = std::fs::read(file).expect("read snapshot");
    // A member's `snapshot/current` file: skip the header (magic, metadata) and the checksum.
    let state = match bytes.strip_prefix(b"VGSNAP01".as_slice()) {
        Some(rest) => {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            &rest[4 + len..rest.len() - 4]
        }
        None => &bytes[..],
    };
    let sm = StateMachine::restore(state).expect("restore");
    let took = t.elapsed();
    drop(bytes);
    let n = sm.tree().len() as f64;
    let grown = rss_bytes().saturating_sub(base);
    println!(
        "restored {n} nodes in {took:.2?}: RSS +{:.1} MiB, {:.0} bytes/znode",
        mib(grown),
        grown as f64 / n
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("load") {
        load(args.get(2).expect("load FILE"));
        return;
    }
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let base = rss_bytes();
    let mut sm = StateMachine::new();
    sm.apply(
        1,
        1_700_000_000_000,
        Command::CreateSession { timeout_ms: 10_000 },
    );
    let mut index = 1;
    create(&mut sm, &mut index, "/vb".into(), b"");
    create(&mut sm, &mut index, "/vb/m".into(), b"");
    let t = Instant::now();
    for i in 0..n {
        create(&mut sm, &mut index, format!("/vb/m/{i}"), b"0123456789");
    }
    let built = t.elapsed();
    let grown = rss_bytes().saturating_sub(base);
    println!(
        "nodes {}: built in {built:.2?}, RSS +{:.1} MiB, {:.0} bytes/znode",
        sm.tree().len(),
        grown as f64 / f64::from(1 << 20),
        grown as f64 / n as f64
    );

    let t = Instant::now();
    let bytes = sm.snapshot().expect("encode");
    println!(
        "snapshot: {:.1} MiB ({:.0} bytes/znode) encoded in {:.2?}",
        bytes.len() as f64 / f64::from(1 << 20),
        bytes.len() as f64 / n as f64,
        t.elapsed()
    );

    let t = Instant::now();
    let clone = sm.clone();
    println!(
        "clone: {:.2?}, RSS now {:.1} MiB",
        t.elapsed(),
        mib(rss_bytes())
    );
    drop(clone);
    println!("clone dropped: RSS {:.1} MiB", mib(rss_bytes()));

    drop(sm);
    let t = Instant::now();
    let restored = StateMachine::restore(&bytes).expect("restore");
    println!(
        "restore: {:.2?}, {} nodes",
        t.elapsed(),
        restored.tree().len()
    );
    if let Some(file) = args.get(2) {
        std::fs::write(file, &bytes).expect("write snapshot");
    }
}
