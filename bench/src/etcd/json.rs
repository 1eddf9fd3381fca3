//! Messages of etcd's v3 JSON gateway (grpc-gateway over HTTP/1.1).
//!
//! Keys and values are base64 in JSON (proto `bytes`); int64 fields arrive as strings and
//! are not needed here. Watch responses stream as newline-delimited JSON objects.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use serde::{Deserialize, Serialize};

/// `PutRequest`.
#[derive(Debug, Serialize)]
pub struct PutRequest {
    /// Key, base64.
    pub key: String,
    /// Value, base64.
    pub value: String,
}

impl PutRequest {
    /// Builds a put of raw bytes.
    pub fn new(key: &[u8], value: &[u8]) -> Self {
        Self {
            key: B64.encode(key),
            value: B64.encode(value),
        }
    }
}

/// `RangeRequest` for one key. Omitting `serializable` keeps etcd's default, a
/// linearizable (quorum) read.
#[derive(Debug, Serialize)]
pub struct RangeRequest {
    /// Key, base64.
    pub key: String,
}

impl RangeRequest {
    /// Builds a single-key range.
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: B64.encode(key),
        }
    }
}

/// A stored key-value (only the fields the benchmark reads).
#[derive(Debug, Deserialize, Default)]
pub struct KeyValue {
    /// Key, base64.
    #[serde(default)]
    pub key: String,
    /// Value, base64; absent for an empty value.
    #[serde(default)]
    pub value: String,
}

/// `RangeResponse`; `kvs` is omitted when nothing matched.
#[derive(Debug, Deserialize)]
pub struct RangeResponse {
    /// Matching pairs.
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// `WatchRequest` with a `create_request` for one key.
#[derive(Debug, Serialize)]
pub struct WatchCreate {
    /// The create request.
    pub create_request: WatchCreateRequest,
}

/// `WatchCreateRequest`.
#[derive(Debug, Serialize)]
pub struct WatchCreateRequest {
    /// Key, base64.
    pub key: String,
}

impl WatchCreate {
    /// Watches exactly `key`.
    pub fn new(key: &[u8]) -> Self {
        Self {
            create_request: WatchCreateRequest {
                key: B64.encode(key),
            },
        }
    }
}

/// One line of the watch stream: a `result`, or an `error` from the gateway.
#[derive(Debug, Deserialize)]
pub struct WatchLine {
    /// The `WatchResponse`.
    pub result: Option<WatchResult>,
    /// Gateway error (stream broken).
    pub error: Option<serde_json::Value>,
}

/// `WatchResponse`.
#[derive(Debug, Deserialize, Default)]
pub struct WatchResult {
    /// True on the confirmation of a create request.
    #[serde(default)]
    pub created: bool,
    /// Events; a PUT event omits `type` (enum value 0).
    #[serde(default)]
    pub events: Vec<Event>,
}

/// `mvccpb.Event`.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// "DELETE" for deletions; absent for puts.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The key-value after the event.
    #[serde(default)]
    pub kv: KeyValue,
}

/// Decodes a base64 field.
pub fn unb64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_range_golden_json() {
        let put = serde_json::to_string(&PutRequest::new(b"/vb/k/1", b"hi")).expect("json");
        assert_eq!(put, r#"{"key":"L3ZiL2svMQ==","value":"aGk="}"#);
        let range = serde_json::to_string(&RangeRequest::new(b"foo")).expect("json");
        assert_eq!(
            range, r#"{"key":"Zm9v"}"#,
            "no serializable flag: linearizable default"
        );
        let watch = serde_json::to_string(&WatchCreate::new(b"foo")).expect("json");
        assert_eq!(watch, r#"{"create_request":{"key":"Zm9v"}}"#);
    }

    #[test]
    fn range_response_decodes() {
        let body = r#"{"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"},
            "kvs":[{"key":"Zm9v","create_revision":"5","mod_revision":"7","version":"3","value":"YmFy"}],
            "count":"1"}"#;
        let r: RangeResponse = serde_json::from_str(body).expect("decode");
        assert_eq!(unb64(&r.kvs[0].value).expect("b64"), b"bar");
        let empty: RangeResponse =
            serde_json::from_str(r#"{"header":{"revision":"7"}}"#).expect("decode");
        assert!(empty.kvs.is_empty());
    }

    #[test]
    fn watch_lines_decode() {
        let created: WatchLine =
            serde_json::from_str(r#"{"result":{"header":{"revision":"7"},"created":true}}"#)
                .expect("decode");
        let r = created.result.expect("result");
        assert!(r.created && r.events.is_empty());
        let ev: WatchLine = serde_json::from_str(
            r#"{"result":{"header":{"revision":"8"},"events":[{"kv":{"key":"Zm9v","mod_revision":"8","value":"eA=="}}]}}"#,
        )
        .expect("decode");
        let r = ev.result.expect("result");
        assert!(!r.created);
        assert_eq!(r.events[0].kind, None, "PUT is the omitted default");
        assert_eq!(unb64(&r.events[0].kv.key).expect("b64"), b"foo");
        let err: WatchLine =
            serde_json::from_str(r#"{"error":{"grpc_code":14,"message":"unavailable"}}"#)
                .expect("decode");
        assert!(err.result.is_none() && err.error.is_some());
    }
}
