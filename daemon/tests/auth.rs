//! Bearer-token authentication of the control API.
//!
//! NEEDS the real vigil-conf loader: `[api] token_file` must be read from the file.

use crate::harness::{
    TempDir, VIGILD, Vigild, assert_exit, config_text, free_port, http, run, stderr, vigilctl,
};

#[test]
fn token_is_required_when_configured() {
    let dir = TempDir::new("auth");
    let token = dir.write("token", "correct-horse\n");
    let wrong = dir.write("wrong", "battery-staple\n");
    let port = free_port();
    let extra = format!("token_file = \"{}\"\n", token.display());
    let config = dir.write("vigil.toml", &config_text("node-a", port, &extra));
    let daemon = Vigild::start(&config, port);

    let (code, body) = http(port, "GET", "/v1/status", None);
    assert_eq!(code, 401, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(
        http(port, "GET", "/v1/status", Some("Bearer battery-staple")).0,
        401
    );
    assert_eq!(
        http(port, "GET", "/v1/status", Some("Bearer correct-horse2")).0,
        401
    );
    assert_eq!(http(port, "POST", "/v1/reload", Some("Bearer nope")).0, 401);
    assert_eq!(
        http(port, "GET", "/v1/status", Some("Bearer correct-horse")).0,
        200
    );

    let api = daemon.api();
    let output = vigilctl(&[
        "--api",
        &api,
        "--token-file",
        wrong.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(
        output.status.code(),
        Some(77),
        "EX_NOPERM expected: {}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("refused"), "{}", stderr(&output));

    let output = vigilctl(&[
        "--api",
        &api,
        "--token-file",
        token.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // With only the config, vigilctl finds both the address and the token file there.
    let output = vigilctl(&["--config", config.to_str().unwrap(), "reload"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn vigild_refuses_to_start_with_an_unreadable_token_file() {
    let dir = TempDir::new("auth-missing");
    let port = free_port();
    let extra = format!("token_file = \"{}\"\n", dir.path().join("absent").display());
    let config = dir.write("vigil.toml", &config_text("node-a", port, &extra));
    let output = run(VIGILD, &["--config", config.to_str().unwrap()]);
    assert_exit(&output, 78, "cannot read API token file");
}

#[test]
fn reload_rotates_the_token_and_refuses_an_unreadable_one() {
    let dir = TempDir::new("auth-rotate");
    let token = dir.write("token", "first\n");
    let port = free_port();
    let extra = format!("token_file = \"{}\"\n", token.display());
    let config = dir.write("vigil.toml", &config_text("node-a", port, &extra));
    let _daemon = Vigild::start(&config, port);

    dir.write("token", "second\n");
    assert_eq!(
        http(port, "POST", "/v1/reload", Some("Bearer first")).0,
        200
    );
    assert_eq!(http(port, "GET", "/v1/status", Some("Bearer first")).0, 401);
    assert_eq!(
        http(port, "GET", "/v1/status", Some("Bearer second")).0,
        200
    );

    // A token file that vanished rejects the reload; the current token stays in force.
    std::fs::remove_file(&token).unwrap();
    let (code, body) = http(port, "POST", "/v1/reload", Some("Bearer second"));
    assert_eq!(code, 422, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["outcome"]["result"], "rejected");
    assert_eq!(report["outcome"]["generation"], 2);
    let error = report["outcome"]["errors"][0].as_str().unwrap();
    assert!(error.contains("cannot read API token file"), "{error}");
    assert_eq!(
        http(port, "GET", "/v1/status", Some("Bearer second")).0,
        200
    );
}
