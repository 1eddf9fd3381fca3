//! Recipes against a real server: exclusion, FIFO order, no herd effect, fencing on session loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use vigil_coord::client::{Client, Session};
use vigil_coord::recipes::{Barrier, Election, Lock, Queue, RwLock, observe_leader};

use crate::support::{Server, client, start};

const WAIT: Duration = Duration::from_secs(10);

async fn sessions(c: &Client, n: usize, timeout_ms: u32) -> Vec<Session> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.session(timeout_ms).await.expect("session"));
    }
    out
}

/// Waits until `dir` has `n` children (so queue order is known).
async fn until_children(c: &Client, dir: &str, n: usize) {
    tokio::time::timeout(WAIT, async {
        loop {
            if c.children(dir).await.is_ok_and(|(ch, _)| ch.len() >= n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("children appear");
}

#[tokio::test]
async fn lock_excludes_concurrent_contenders() {
    let s = start().await;
    let c = client(&s);
    let inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for session in sessions(&c, 5, 10_000).await {
        let (inside, done) = (Arc::clone(&inside), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(session, "excl").expect("lock");
            for _ in 0..3 {
                let guard = lock.acquire().await.expect("acquire");
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.store(false, Ordering::SeqCst);
                guard.release().await.expect("release");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("in time")
            .expect("no panic");
    }
    assert_eq!(done.load(Ordering::SeqCst), 15);
}

#[tokio::test]
async fn lock_is_fifo_and_wakes_only_the_successor() {
    let s = start().await;
    let c = client(&s);
    let mut all = sessions(&c, 5, 10_000).await;
    let holder = Lock::new(all.remove(0), "fifo").expect("lock");
    let first = holder.acquire().await.expect("acquire");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for (i, session) in all.into_iter().enumerate() {
        let lock = Lock::new(session, "fifo").expect("lock");
        let (order, lock2) = (Arc::clone(&order), lock.clone());
        let task = tokio::spawn(async move {
            let guard = lock2.acquire().await.expect("acquire");
            order.lock().await.push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            guard.release().await.expect("release");
        });
        // Enqueue strictly one after the other.
        until_children(&c, "/locks/fifo", i + 2).await;
        waiters.push((lock, task));
    }
    // Waiters are parked, nobody woken yet.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(waiters.iter().all(|(l, _)| l.wakeups() == 0));
    first.release().await.expect("release");
    for (_, t) in &mut waiters {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("in time")
            .expect("no panic");
    }
    assert_eq!(*order.lock().await, [0, 1, 2, 3]);
    // Each waiter was woken exactly once: by its own predecessor's release.
    let wakeups: Vec<u64> = waiters.iter().map(|(l, _)| l.wakeups()).collect();
    assert_eq!(wakeups, [1, 1, 1, 1]);
}

#[tokio::test]
async fn session_loss_releases_the_lock_with_a_larger_next_token() {
    let s: Server = start().await;
    let c = client(&s);
    let a = c.session(300).await.expect("session");
    let b = c.session(10_000).await.expect("session");
    let held = Lock::new(a.clone(), "fence")
        .expect("lock")
        .acquire()
        .await
        .expect("a");
    let lock_b = Lock::new(b, "fence").expect("lock");
    let waiting = tokio::spawn(async move { lock_b.acquire().await });
    until_children(&c, "/locks/fence", 2).await;
    a.abandon();
    let next = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("b acquires after a's session expired")
        .expect("no panic")
        .expect("acquire");
    assert!(
        next.token() > held.token(),
        "{} > {}",
        next.token(),
        held.token()
    );
    assert!(!held.is_held().await.expect("stat"));
    assert!(next.is_held().await.expect("stat"));
}

#[tokio::test]
async fn readers_share_writers_exclude() {
    let s = start().await;
    let c = client(&s);
    let all = sessions(&c, 3, 10_000).await;
    let r1 = RwLock::new(all[0].clone(), "rw")
        .expect("rw")
        .read()
        .await
        .expect("r1");
    let r2 = RwLock::new(all[1].clone(), "rw")
        .expect("rw")
        .read()
        .await
        .expect("r2 shares");
    let writer = RwLock::new(all[2].clone(), "rw").expect("rw");
    let w = writer.clone();
    let mut task = tokio::spawn(async move { w.write().await });
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut task)
            .await
            .is_err(),
        "writer must wait for readers"
    );
    let r2_token = r2.token();
    r1.release().await.expect("release");
    r2.release().await.expect("release");
    let wg = tokio::time::timeout(WAIT, task)
        .await
        .expect("in time")
        .expect("join")
        .expect("w");
    assert!(wg.token() > r2_token);
    assert_eq!(writer.wakeups(), 1, "woken by its predecessor only");
}

#[tokio::test]
async fn election_hands_over_and_observers_follow() {
    let s = start().await;
    let c = client(&s);
    let all = sessions(&c, 2, 10_000).await;
    let mut leader = observe_leader(c.clone(), "svc").expect("observe");
    let first = Election::new(all[0].clone(), "svc")
        .expect("e")
        .campaign(b"one")
        .await
        .expect("won");
    let second = Election::new(all[1].clone(), "svc").expect("e");
    let s2 = second.clone();
    let pending = tokio::spawn(async move { s2.campaign(b"two").await });
    let seen = tokio::time::timeout(WAIT, leader.wait_for(Option::is_some))
        .await
        .expect("seen");
    let l1 = seen.expect("alive").clone().expect("leader");
    assert_eq!(
        (l1.data.as_slice(), l1.token),
        (b"one".as_slice(), first.token())
    );
    until_children(&c, "/elections/svc", 2).await;
    first.release().await.expect("resign");
    let won = tokio::time::timeout(WAIT, pending)
        .await
        .expect("in time")
        .expect("join")
        .expect("won");
    let l2 = tokio::time::timeout(
        WAIT,
        leader.wait_for(|l| l.as_ref().is_some_and(|l| l.data == b"two")),
    )
    .await
    .expect("observer follows")
    .expect("alive")
    .clone()
    .expect("leader");
    assert_eq!(l2.token, won.token());
    assert!(l2.token > l1.token);
}

#[tokio::test]
async fn barrier_opens_when_all_parties_are_in() {
    let s = start().await;
    let c = client(&s);
    let all = sessions(&c, 3, 10_000).await;
    let entered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for session in all.into_iter().take(2) {
        let b = Barrier::new(session, "go", 3).expect("barrier");
        let entered = Arc::clone(&entered);
        tasks.push(tokio::spawn(async move {
            b.enter().await.expect("enter");
            entered.fetch_add(1, Ordering::SeqCst);
        }));
    }
    until_children(&c, "/barriers/go", 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        0,
        "two of three: still closed"
    );
    let last = c.session(10_000).await.expect("session");
    Barrier::new(last, "go", 3)
        .expect("barrier")
        .enter()
        .await
        .expect("enter");
    for t in tasks {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("in time")
            .expect("no panic");
    }
    assert_eq!(entered.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn queue_is_fifo_and_pop_waits() {
    let s = start().await;
    let c = client(&s);
    let all = sessions(&c, 2, 10_000).await;
    let producer = Queue::new(all[0].clone(), "jobs").expect("queue");
    let consumer = Queue::new(all[1].clone(), "jobs").expect("queue");
    assert_eq!(consumer.try_pop().await.expect("pop"), None);
    for i in 0..5u8 {
        producer.push(&[i]).await.expect("push");
    }
    for i in 0..5u8 {
        assert_eq!(consumer.pop().await.expect("pop"), [i]);
    }
    let waiting = tokio::spawn(async move { consumer.pop().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    producer.push(b"late").await.expect("push");
    let item = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("in time")
        .expect("join")
        .expect("pop");
    assert_eq!(item, b"late");
}
