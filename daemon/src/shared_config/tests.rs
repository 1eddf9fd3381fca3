//! The tree layout, versions, history, validation and races against a real single-node
//! coordination node on loopback, and the watcher feeding the supervisor's channel.

use std::time::Duration;

use vigil_conf::Config;

use super::tree::{self, Change, TreeError};
use super::{Fragment, merge, validate};
use crate::control::{self, Control};
use crate::testing::{Dir, single_node};

const WAIT: Duration = Duration::from_secs(15);

const BASE: &str = r#"
[global]
node_name = "lb1"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 150
vips = ["192.0.2.100/24"]
fencing = "off"
track_groups = [{ name = "local", weight = -10 }]

[[virtual_server]]
address = "192.0.2.100:443"
group = "local"

[[virtual_server.real_server]]
address = "10.0.0.5"
"#;

const WEB: &str = r#"[[virtual_server]]
address = "192.0.2.100:80"
group = "web"

[[virtual_server.real_server]]
address = "10.0.0.1"

[[track]]
instance = "VI_1"
group = "web"
weight = -30
"#;

fn base() -> Config {
    vigil_conf::load_str(BASE, "vigil.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The validator the API uses: the resulting set merged into this node's base.
fn validator() -> impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>> {
    let base = base();
    move |set| validate(&base, set).map(|_| ())
}

fn web_weight(weight: i32) -> String {
    WEB.replace("weight = -30", &format!("weight = {weight}"))
}

#[tokio::test]
async fn pushes_keep_current_and_history_in_step_and_rollback_adds_a_version() {
    let dir = Dir::new("shared");
    let node = single_node(&dir).await;
    assert!(tree::current(&node).await.expect("read").is_empty());

    let v1 = tree::push(&node, "web", WEB, "lb1", validator())
        .await
        .expect("push");
    let v2 = tree::push(&node, "web", &web_weight(-60), "lb2", validator())
        .await
        .expect("push");
    assert!(v2 > v1, "versions grow: {v1} then {v2}");

    let current = tree::current(&node).await.expect("read");
    assert_eq!(current.len(), 1);
    assert_eq!((current[0].name.as_str(), current[0].version), ("web", v2));
    assert_eq!(current[0].text, web_weight(-60));
    assert_eq!(current[0].pushed_by, "lb2");
    assert!(current[0].pushed_at_unix_ms > 0);
    // The raw layout: the current text, and one history node per version.
    let (raw, children) = node.read_stale(|sm| {
        let raw = sm.tree().get("/vigil/config/web").map(|(d, _)| d.to_vec());
        let children = sm
            .tree()
            .children("/vigil/config-history/web")
            .map(|(c, _)| c);
        (raw, children)
    });
    assert_eq!(raw.expect("current node"), web_weight(-60).into_bytes());
    let mut children = children.expect("history dir");
    children.sort();
    assert_eq!(
        children,
        [format!("v-{v1:010}"), format!("v-{v2:010}")],
        "history node names carry the versions"
    );

    let v3 = tree::rollback(&node, "web", v1, "lb1", validator())
        .await
        .expect("rollback");
    assert!(v3 > v2);
    let current = tree::current(&node).await.expect("read");
    assert_eq!((current[0].version, current[0].text.as_str()), (v3, WEB));
    let history = tree::history(&node, "web").await.expect("history");
    let summary: Vec<(u64, Change, &str)> = history
        .iter()
        .map(|e| (e.version, e.change.clone(), e.node.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (v1, Change::Push, "lb1"),
            (v2, Change::Push, "lb2"),
            (v3, Change::Rollback { from: v1 }, "lb1"),
        ]
    );
    assert_eq!(history[1].text, web_weight(-60));

    // Removal is a version too; the history stays and a removal cannot be restored.
    let v4 = tree::remove(&node, "web", "lb2", validator())
        .await
        .expect("remove");
    assert!(tree::current(&node).await.expect("read").is_empty());
    let history = tree::history(&node, "web").await.expect("history");
    assert_eq!(
        history.last().map(|e| (e.version, e.change.clone())),
        Some((v4, Change::Remove))
    );
    assert!(matches!(
        tree::rollback(&node, "web", v4, "lb1", validator()).await,
        Err(TreeError::RemovedVersion { .. })
    ));
    assert!(matches!(
        tree::rollback(&node, "web", 999, "lb1", validator()).await,
        Err(TreeError::NoVersion { version: 999, .. })
    ));
    assert!(matches!(
        tree::remove(&node, "web", "lb1", validator()).await,
        Err(TreeError::NoFragment(_))
    ));
    // Rolling back after a removal brings the fragment back.
    let v5 = tree::rollback(&node, "web", v2, "lb1", validator())
        .await
        .expect("rollback after removal");
    let current = tree::current(&node).await.expect("read");
    assert_eq!(
        (current[0].version, current[0].text.clone()),
        (v5, web_weight(-60))
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_invalid_fragment_is_refused_with_positions_and_nothing_is_written() {
    let dir = Dir::new("shared");
    let node = single_node(&dir).await;
    let v1 = tree::push(&node, "web", WEB, "lb1", validator())
        .await
        .expect("push");
    // Line 6: a bad address.
    let bad = WEB.replace("address = \"10.0.0.1\"", "address = \"10.0.0.999\"");
    let Err(TreeError::Invalid(errors)) = tree::push(&node, "web", &bad, "lb1", validator()).await
    else {
        panic!("the invalid fragment must be refused");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/vigil/config/web:6:") && e.contains("10.0.0.999")),
        "positioned error for the address: {errors:#?}"
    );
    // Line 9: an instance this node does not have (caught by the merge, not the parse).
    let bad = WEB.replace("instance = \"VI_1\"", "instance = \"VI_9\"");
    let Err(TreeError::Invalid(errors)) = tree::push(&node, "web", &bad, "lb1", validator()).await
    else {
        panic!("the invalid fragment must be refused");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/vigil/config/web:9:") && e.contains("VI_9")),
        "positioned error for the instance: {errors:#?}"
    );
    // A syntax error is positioned too.
    let Err(TreeError::Invalid(errors)) =
        tree::push(&node, "other", "[[virtual_server]\n", "lb1", validator()).await
    else {
        panic!("a TOML syntax error must be refused");
    };
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with("/vigil/config/other:1:")),
        "{errors:#?}"
    );
    // Nothing changed: same text, same version, no new history node, no "other".
    let current = tree::current(&node).await.expect("read");
    assert_eq!(current.len(), 1);
    assert_eq!((current[0].version, current[0].text.as_str()), (v1, WEB));
    assert_eq!(tree::history(&node, "web").await.expect("history").len(), 1);
    assert!(matches!(
        tree::history(&node, "other").await,
        Err(TreeError::NoFragment(_))
    ));
    // Names are path components.
    for name in ["", "../x", "a/b", ".hidden"] {
        assert!(
            matches!(
                tree::push(&node, name, WEB, "lb1", validator()).await,
                Err(TreeError::BadName(_))
            ),
            "{name:?}"
        );
    }
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_duplicate_virtual_server_across_fragments_is_refused() {
    let dir = Dir::new("shared");
    let node = single_node(&dir).await;
    tree::push(&node, "web", WEB, "lb1", validator())
        .await
        .expect("push");
    let copy = WEB.split("[[track]]").next().expect("vs part").to_owned();
    let Err(TreeError::Invalid(errors)) =
        tree::push(&node, "copy", &copy, "lb1", validator()).await
    else {
        panic!("the second definition must be refused");
    };
    // Reported where the later fragment (by name) defines it again, naming the other one.
    assert!(
        errors.iter().any(|e| e.starts_with("/vigil/config/web:1:")
            && e.contains("already defined")
            && e.contains("/vigil/config/copy")),
        "{errors:#?}"
    );
    assert_eq!(
        tree::current(&node).await.expect("read").len(),
        1,
        "copy not written"
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_pushes_the_later_fails_and_writes_nothing() {
    let dir = Dir::new("shared");
    let node = single_node(&dir).await;
    let v1 = tree::push(&node, "web", WEB, "lb1", validator())
        .await
        .expect("push");
    // The second push commits while the first is between its read and its write (during its
    // validation): the first must then fail whole.
    let racer = node.clone();
    let config = base();
    let slow_validator = move |set: &[(&str, &str)]| {
        let won = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(tree::push(
                &racer,
                "web",
                &web_weight(-70),
                "lb2",
                validator(),
            ))
        });
        assert!(won.is_ok(), "{won:?}");
        validate(&config, set).map(|_| ())
    };
    let lost = tree::push(&node, "web", &web_weight(-80), "lb1", slow_validator).await;
    assert!(matches!(lost, Err(TreeError::Conflict)), "{lost:?}");
    let current = tree::current(&node).await.expect("read");
    assert_eq!(current[0].text, web_weight(-70), "the winner's text stays");
    let history = tree::history(&node, "web").await.expect("history");
    assert_eq!(history.len(), 2, "no history node for the loser");
    assert!(history.iter().all(|e| e.version >= v1));

    // A change to another fragment also invalidates the validation (a [[track]] may name a
    // group another fragment defines), so it conflicts too.
    let racer = node.clone();
    let config = base();
    let slow_validator = move |set: &[(&str, &str)]| {
        let won = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(tree::remove(
                &racer,
                "web",
                "lb2",
                validator(),
            ))
        });
        assert!(won.is_ok(), "{won:?}");
        validate(&config, set).map(|_| ())
    };
    let lost = tree::push(&node, "api", "", "lb1", slow_validator).await;
    assert!(matches!(lost, Err(TreeError::Conflict)), "{lost:?}");
    assert!(tree::current(&node).await.expect("read").is_empty());
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_watcher_sends_the_initial_set_and_every_change() {
    let dir = Dir::new("shared");
    let node = single_node(&dir).await;
    let v1 = tree::push(&node, "web", WEB, "lb1", validator())
        .await
        .expect("push");
    let (tx, mut rx) = control::channel();
    let watcher = super::watcher::spawn(node.clone(), tx);
    let initial = next_set(&mut rx).await;
    assert_eq!(
        initial
            .iter()
            .map(|f| (f.name.as_str(), f.version))
            .collect::<Vec<_>>(),
        [("web", v1)]
    );
    let v2 = tree::push(&node, "web", &web_weight(-60), "lb2", validator())
        .await
        .expect("push");
    let changed = next_set(&mut rx).await;
    assert_eq!(changed[0].version, v2);
    // What the supervisor does with it: the merged config carries the new weight.
    let merged = merge(&base(), &changed).expect("merges");
    let web = merged
        .vrrp_instance("VI_1")
        .and_then(|vi| vi.track.groups.iter().find(|g| g.name == "web"))
        .expect("tracked group");
    assert_eq!(web.weight, Some(-60));
    assert_eq!(merged.virtual_servers.len(), 2);
    tree::remove(&node, "web", "lb1", validator())
        .await
        .expect("remove");
    assert!(next_set(&mut rx).await.is_empty());
    watcher.abort();
    node.shutdown().await.expect("shutdown");
}

async fn next_set(rx: &mut control::ControlReceiver) -> Vec<Fragment> {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Control::Fragments { fragments })) => fragments,
        other => panic!("expected fragments, got {other:?}"),
    }
}
