//! Malformed input, limits and authentication: always a JSON 4xx, never a panic or a hang.

use vigil_coord::api::ApiConfig;

use crate::support::{config, raw, raw_session, raw_write, start, start_with};

#[tokio::test]
async fn malformed_requests_are_json_400s() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    let cases: &[(&str, &str, &str)] = &[
        ("PUT", "/v1/nodes/a", "{not json"),
        ("PUT", "/v1/nodes/a", r#"{"data":"***"}"#),
        ("PUT", "/v1/nodes/a", r#"{"data":"aGk=","text":"hi"}"#),
        ("PUT", "/v1/nodes/a", r#"{"ephemeral":"yes"}"#),
        (
            "POST",
            "/v1/multi",
            r#"{"ops":[{"op":"explode","path":"/a"}]}"#,
        ),
        ("POST", "/v1/multi", r#"{"ops":[], "extra":1}"#),
        ("PUT", "/v1/nodes/a//b", "{}"),
        ("PUT", "/v1/nodes/a/", "{}"),
        ("PUT", "/v1/nodes/a/./b", "{}"),
        ("GET", "/v1/nodes/a?consistency=weird", ""),
        ("DELETE", "/v1/nodes/a?version=x", ""),
        ("GET", "/v1/watch?path=/a&kind=sometimes", ""),
        ("GET", "/v1/watch?path=relative&kind=data", ""),
        ("GET", "/v1/watch?kind=data", ""),
        ("POST", "/v1/sessions/abc/heartbeat", ""),
        ("POST", "/v1/sessions", r#"{"timeout_ms":-1}"#),
        ("POST", "/v1/cluster/members", r#"{"action":"promote"}"#),
    ];
    for (i, (method, target, body)) in cases.iter().enumerate() {
        let (status, json) = raw_write(s.addr, method, target, sid, i as u64 + 1, body).await;
        assert_eq!(status, 400, "{method} {target} {body}: {json}");
        assert_eq!(json["code"], -8, "{method} {target}: {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Writes need their session and request id.
    let (status, json) = raw(s.addr, "PUT", "/v1/nodes/a", &[], b"{}").await;
    assert_eq!(status, 400);
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("x-vigil-session")
    );
    let (status, _) = raw(
        s.addr,
        "PUT",
        "/v1/nodes/a",
        &[("x-vigil-session", "1"), ("x-vigil-request-id", "-3")],
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    // A write on an unknown session.
    let (status, json) = raw_write(s.addr, "PUT", "/v1/nodes/a", 999_999, 1, "{}").await;
    assert_eq!(
        (status, json["error"].as_str()),
        (410, Some("SessionExpired"))
    );
    // Unknown route.
    let (status, json) = raw(s.addr, "GET", "/v2/whatever", &[], b"").await;
    assert_eq!((status, json["error"].as_str()), (404, Some("NoRoute")));
}

#[tokio::test]
async fn data_limits() {
    let s = start().await;
    let sid = raw_session(s.addr).await;
    // Exactly 1 MiB of data fits, base64 and all.
    // 349_525 groups of 3 bytes, then one more byte: 1_048_576.
    let max = format!("{}AA==", "A".repeat(349_525 * 4));
    let body = format!(r#"{{"data":"{max}"}}"#);
    let (status, json) = raw_write(s.addr, "PUT", "/v1/nodes/big", sid, 1, &body).await;
    assert_eq!(status, 201, "{json}");
    // Over the tree's limit but under the body limit: BadArguments from the tree.
    let over = "A".repeat(349_526 * 4);
    let body = format!(r#"{{"data":"{over}"}}"#);
    let (status, json) = raw_write(s.addr, "PUT", "/v1/nodes/big2", sid, 2, &body).await;
    assert_eq!((status, json["code"].as_i64()), (400, Some(-8)), "{json}");
    // Over the body limit.
    let huge = "A".repeat(3 * 1024 * 1024);
    let body = format!(r#"{{"data":"{huge}"}}"#);
    let (status, json) = raw_write(s.addr, "PUT", "/v1/nodes/big3", sid, 3, &body).await;
    assert_eq!((status, json["error"].as_str()), (413, Some("TooLarge")));
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let s = start_with(ApiConfig {
        token: Some("s3cret".into()),
        ..config()
    })
    .await;
    let (status, json) = raw(s.addr, "GET", "/v1/cluster", &[], b"").await;
    assert_eq!((status, json["error"].as_str()), (401, Some("NoAuth")));
    let (status, _) = raw(
        s.addr,
        "GET",
        "/v1/cluster",
        &[("authorization", "Bearer wrong!")],
        b"",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = raw(
        s.addr,
        "GET",
        "/v1/cluster",
        &[("authorization", "Basic s3cret")],
        b"",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = raw(
        s.addr,
        "GET",
        "/v1/cluster",
        &[("authorization", "Bearer s3cret")],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    // The client sends it too.
    let mut cfg = crate::support::client_config(&[s.addr.to_string()]);
    let anonymous = vigil_coord::client::Client::new(cfg.clone()).expect("client");
    assert!(matches!(
        anonymous.cluster_status().await,
        Err(vigil_coord::client::ClientError::Api { status: 401, .. })
    ));
    cfg.token = Some("s3cret".into());
    let authed = vigil_coord::client::Client::new(cfg).expect("client");
    assert_eq!(
        authed.cluster_status().await.expect("status").leader,
        Some(1)
    );
}
