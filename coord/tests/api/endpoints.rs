//! Every endpoint over raw HTTP: status codes, JSON shapes, idempotent retries.

use crate::support::{raw, raw_session, raw_write, start};

#[tokio::test]
async fn session_lifecycle() {
    let s = start().await;
    let (status, body) = raw(s.addr, "POST", "/v1/sessions", &[], br#"{"timeout_ms":5}"#).await;
    assert_eq!(status, 201);
    // Clamped to the configured minimum.
    assert_eq!(body["timeout_ms"], 200);
    let id = body["session"].as_u64().expect("id");
    let hb = format!("/v1/sessions/{id}/heartbeat");
    assert_eq!(raw(s.addr, "POST", &hb, &[], b"").await.0, 204);
    let del = format!("/v1/sessions/{id}");
    assert_eq!(raw(s.addr, "DELETE", &del, &[], b"").await.0, 204);
    let (status, body) = raw(s.addr, "DELETE", &del, &[], b"").await;
    assert_eq!((status, body["code"].as_i64()), (410, Some(-112)));
    assert_eq!(body["error"], "SessionExpired");
    let (status, body) = raw(s.addr, "POST", &hb, &[], b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("SessionExpired"))
    );
}

#[tokio::test]
async fn create_get_set_delete() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    let (status, body) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/app",
        sid,
        1,
        r#"{"text":"hello"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["path"], "/app");
    assert_eq!(body["stat"]["version"], 0);
    let (status, body) = raw(s.addr, "GET", "/v1/nodes/app", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(body["text"], "hello");
    assert_eq!(body["data"], "aGVsbG8=");
    // Binary data: base64 in, base64 out, no `text`.
    let (status, _) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/app/bin",
        sid,
        2,
        r#"{"data":"/wA="}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (_, body) = raw(
        s.addr,
        "GET",
        "/v1/nodes/app/bin?consistency=stale",
        &[],
        b"",
    )
    .await;
    assert_eq!(body["data"], "/wA=");
    assert!(body.get("text").is_none());

    let (status, body) = raw_write(
        s.addr,
        "POST",
        "/v1/nodes/app",
        sid,
        3,
        r#"{"text":"v1","version":0}"#,
    )
    .await;
    assert_eq!((status, body["stat"]["version"].as_i64()), (200, Some(1)));
    let (status, body) = raw_write(
        s.addr,
        "POST",
        "/v1/nodes/app",
        sid,
        4,
        r#"{"text":"v2","version":0}"#,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        (body["code"].as_i64(), body["error"].as_str()),
        (Some(-103), Some("BadVersion"))
    );
    assert_eq!(body["path"], "/app");

    let (status, body) = raw(s.addr, "GET", "/v1/children/app", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(body["children"], serde_json::json!(["bin"]));
    let (_, body) = raw(s.addr, "GET", "/v1/children", &[], b"").await;
    assert_eq!(body["children"], serde_json::json!(["app"]));
    let (_, body) = raw(s.addr, "GET", "/v1/stat/app/bin", &[], b"").await;
    assert_eq!(body["stat"]["data_length"], 2);
    let (status, body) = raw(s.addr, "GET", "/v1/stat/missing", &[], b"").await;
    assert_eq!((status, body["stat"].is_null()), (200, true));

    let (status, body) = raw_write(s.addr, "DELETE", "/v1/nodes/app", sid, 5, "").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("NotEmpty")));
    let (status, body) =
        raw_write(s.addr, "DELETE", "/v1/nodes/app/bin?version=3", sid, 6, "").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("BadVersion")));
    let (status, _) = raw_write(s.addr, "DELETE", "/v1/nodes/app/bin?version=0", sid, 7, "").await;
    assert_eq!(status, 200);
    let (status, body) = raw(s.addr, "GET", "/v1/nodes/app/bin", &[], b"").await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(-101)));
    assert_eq!(body["path"], "/app/bin");
}

#[tokio::test]
async fn flags_ephemeral_sequential_container_ttl() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    raw_write(s.addr, "PUT", "/v1/nodes/q", sid, 1, "{}").await;
    let (_, a) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/q/n-",
        sid,
        2,
        r#"{"sequential":true}"#,
    )
    .await;
    let (_, b) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/q/n-",
        sid,
        3,
        r#"{"sequential":true}"#,
    )
    .await;
    assert_eq!(a["path"], "/q/n-0000000000");
    assert_eq!(b["path"], "/q/n-0000000001");
    let (status, e) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/q/e",
        sid,
        4,
        r#"{"ephemeral":true}"#,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(e["stat"]["ephemeral_owner"], sid);
    let (status, _) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/c",
        sid,
        5,
        r#"{"container":true}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = raw_write(s.addr, "PUT", "/v1/nodes/t", sid, 6, r#"{"ttl_ms":60000}"#).await;
    assert_eq!(status, 201);
    let (status, body) = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/x",
        sid,
        7,
        r#"{"ephemeral":true,"container":true}"#,
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(-8)));

    // Closing the session removes its ephemeral.
    raw(s.addr, "DELETE", &format!("/v1/sessions/{sid}"), &[], b"").await;
    let (_, body) = raw(s.addr, "GET", "/v1/stat/q/e", &[], b"").await;
    assert!(body["stat"].is_null());
}

#[tokio::test]
async fn retry_with_same_request_id_returns_the_original_result() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    raw_write(s.addr, "PUT", "/v1/nodes/q", sid, 1, "{}").await;
    let first = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/q/n-",
        sid,
        2,
        r#"{"sequential":true}"#,
    )
    .await;
    let retry = raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/q/n-",
        sid,
        2,
        r#"{"sequential":true}"#,
    )
    .await;
    assert_eq!(first, retry);
    let (_, body) = raw(s.addr, "GET", "/v1/children/q", &[], b"").await;
    assert_eq!(body["children"], serde_json::json!(["n-0000000000"]));
    // A failed write is remembered too: its retry fails the same way even though it would now
    // succeed.
    let miss = raw_write(s.addr, "POST", "/v1/nodes/later", sid, 3, "{}").await;
    assert_eq!(miss.0, 404);
    raw_write(s.addr, "PUT", "/v1/nodes/later", sid, 4, "{}").await;
    assert_eq!(
        raw_write(s.addr, "POST", "/v1/nodes/later", sid, 3, "{}").await,
        miss
    );
}

#[tokio::test]
async fn multi_is_atomic_and_reports_every_result() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    let ok = r#"{"ops":[{"op":"create","path":"/m","text":"x"},{"op":"check","path":"/m","version":0},{"op":"set","path":"/m","text":"y"},{"op":"create","path":"/m/k"}]}"#;
    let (status, body) = raw_write(s.addr, "POST", "/v1/multi", sid, 1, ok).await;
    assert_eq!(status, 200, "{body}");
    let types: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["created", "checked", "set", "created"]);
    let bad = r#"{"ops":[{"op":"create","path":"/n"},{"op":"check","path":"/m","version":0},{"op":"delete","path":"/m/k"}]}"#;
    let (status, body) = raw_write(s.addr, "POST", "/v1/multi", sid, 2, bad).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "BadVersion");
    assert_eq!(body["path"], "/m");
    assert_eq!(body["results"][0]["type"], "rolled_back");
    assert_eq!(body["results"][1]["code"], -103);
    assert_eq!(body["results"][2]["error"], "RuntimeInconsistency");
    let (_, body) = raw(s.addr, "GET", "/v1/stat/n", &[], b"").await;
    assert!(body["stat"].is_null(), "rolled back");
}

#[tokio::test]
async fn recursive_delete_is_bounded() {
    let mut config = crate::support::config();
    config.recursive_delete_limit = 4;
    let s = crate::support::start_with(config).await;
    let sid = raw_session(s.addr).await;
    for (i, p) in ["/r", "/r/a", "/r/a/b", "/r/c"].iter().enumerate() {
        raw_write(
            s.addr,
            "PUT",
            &format!("/v1/nodes{p}"),
            sid,
            i as u64 + 1,
            "{}",
        )
        .await;
    }
    let (status, _) = raw_write(s.addr, "DELETE", "/v1/nodes/r?recursive=true", sid, 10, "").await;
    assert_eq!(status, 200);
    let (_, body) = raw(s.addr, "GET", "/v1/children", &[], b"").await;
    assert_eq!(body["children"], serde_json::json!([]));
    for (i, p) in ["/r", "/r/a", "/r/b", "/r/c", "/r/d"].iter().enumerate() {
        raw_write(
            s.addr,
            "PUT",
            &format!("/v1/nodes{p}"),
            sid,
            i as u64 + 20,
            "{}",
        )
        .await;
    }
    let (status, body) =
        raw_write(s.addr, "DELETE", "/v1/nodes/r?recursive=true", sid, 30, "").await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(-8)));
}

#[tokio::test]
async fn sync_and_cluster() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    let (status, body) = raw_write(s.addr, "POST", "/v1/sync", sid, 1, "").await;
    assert_eq!(status, 200);
    let zxid = body["zxid"].as_u64().expect("zxid");
    assert!(zxid >= 2, "session and sync are applied: {zxid}");
    let (status, body) = raw(s.addr, "GET", "/v1/cluster", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(body["leader"], 1);
    assert_eq!(body["members"][0]["role"], "leader");
    // The sync's zxid covers everything applied, through the last command of the entry.
    assert_eq!(
        body["applied_index"]
            .as_u64()
            .map(vigil_coord::zxid::through),
        Some(zxid)
    );
    let applied = s
        .backend
        .with_state_machine(vigil_coord::StateMachine::last_applied);
    assert_eq!(body["applied_index"].as_u64(), Some(applied));
    let (status, body) = raw(
        s.addr,
        "POST",
        "/v1/cluster/members",
        &[],
        br#"{"action":"add_learner","id":2,"addr":"127.0.0.1:1"}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (501, Some("Unimplemented"))
    );
}

#[tokio::test]
async fn emptied_container_is_reaped_by_the_backend_timer() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    raw_write(
        s.addr,
        "PUT",
        "/v1/nodes/box",
        sid,
        1,
        r#"{"container":true}"#,
    )
    .await;
    raw_write(s.addr, "PUT", "/v1/nodes/box/item", sid, 2, "{}").await;
    raw_write(s.addr, "DELETE", "/v1/nodes/box/item", sid, 3, "").await;
    let gone = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let (_, body) = raw(s.addr, "GET", "/v1/stat/box", &[], b"").await;
            if body["stat"].is_null() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the container was not reaped");
}

/// `"liveness": "committed_writes"`: heartbeats are refused (400) and only the session's writes
/// keep it alive; an unknown liveness is a bad request.
#[tokio::test]
async fn committed_writes_session_lives_on_its_writes_only() {
    let s = start().await;
    let (status, body) = raw(
        s.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"timeout_ms":300,"liveness":"committed_writes"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["liveness"], "committed_writes");
    let id = body["session"].as_u64().expect("id");
    let hb = format!("/v1/sessions/{id}/heartbeat");
    let (status, body) = raw(s.addr, "POST", &hb, &[], b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("BadArguments")),
        "{body}"
    );
    // Syncs every 100 ms: alive well past the 300 ms timeout.
    for request_id in 1..=10 {
        let (status, body) = raw_write(s.addr, "POST", "/v1/sync", id, request_id, "").await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let alive = s.backend.with_state_machine(|sm| {
        sm.session(vigil_coord::SessionId(id))
            .map(vigil_coord::Session::liveness)
    });
    assert_eq!(alive, Some(vigil_coord::Liveness::CommittedWrites));
    // Heartbeats alone do not keep it.
    for _ in 0..6 {
        let _ = raw(s.addr, "POST", &hb, &[], b"").await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = raw(s.addr, "POST", &hb, &[], b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("SessionExpired"))
    );

    let (status, body) = raw(
        s.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"timeout_ms":300,"liveness":"forever"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Absent means heartbeat, and the answer says so.
    let (status, body) = raw(
        s.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"timeout_ms":300}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["liveness"], "heartbeat");
}
