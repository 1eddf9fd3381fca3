//! HTTP/1.1 `GET` checks over plain TCP or TLS.
//!
//! A deliberately small client: one request per connection (`Connection: close`), and it stops
//! reading as soon as it can judge — after the status line when only the status matters, after
//! the body when a regex or digest must see it. That keeps ten thousand checks a second cheap.

use std::borrow::Cow;
use std::sync::Arc;

use md5::Md5;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ProbeError, Verdict, net, tls};
use crate::spec::{CheckSpec, Digest, HttpCheck};

/// Upper bound on the status line plus headers.
const MAX_HEAD: usize = 16 * 1024;
/// Room made for each read.
const READ_CHUNK: usize = 4096;

pub(super) async fn check(
    spec: &CheckSpec,
    http: &HttpCheck,
    request: &[u8],
    tls_config: Option<&Arc<rustls::ClientConfig>>,
) -> Verdict {
    let tcp = net::connect_tcp(spec.target, &spec.source).await?;
    if let (Some(t), Some(cfg)) = (&http.tls, tls_config) {
        let name = t.sni.clone().or_else(|| http.host.clone());
        let stream = tls::connect(tcp, cfg.clone(), name.as_deref(), spec.target.ip()).await?;
        return exchange(stream, http, request).await;
    }
    // Closed with a reset, as the TCP check is: the verdict is in, the server sent its answer
    // and closes on its side (`Connection: close`), and a FIN from us would cost two more
    // packets and, if ours came first, a TIME_WAIT socket per check.
    socket2::SockRef::from(&tcp).set_linger(Some(std::time::Duration::ZERO))?;
    exchange(tcp, http, request).await
}

/// The request every attempt of a check sends, built once when the check is added.
pub(super) fn request(spec: &CheckSpec, http: &HttpCheck) -> Arc<[u8]> {
    let host = http.host.clone().unwrap_or_else(|| host_header(spec));
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vigil-check/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        http.path,
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
    .into()
}

fn host_header(spec: &CheckSpec) -> String {
    match spec.target {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The note of a status-only success: static for the usual statuses, so that a steady fleet of
/// healthy servers costs no allocation for it.
fn status_note(status: u16) -> Cow<'static, str> {
    match status {
        200 => Cow::Borrowed("status 200"),
        204 => Cow::Borrowed("status 204"),
        301 => Cow::Borrowed("status 301"),
        302 => Cow::Borrowed("status 302"),
        s => Cow::Owned(format!("status {s}")),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    http: &HttpCheck,
    request: &[u8],
) -> Verdict {
    stream.write_all(request).await?;
    stream.flush().await?;

    // One allocation for the head: `read_some` reserves this much and a typical head fits.
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let head = loop {
        if read_some(&mut stream, &mut buf).await? == 0 {
            return Err(ProbeError::Protocol(
                "connection closed before the response head".into(),
            ));
        }
        match parse_response_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) if buf.len() > MAX_HEAD => {
                return Err(ProbeError::Protocol("response head too large".into()));
            }
            Ok(None) => {}
            Err(e) => return Err(ProbeError::Protocol(e.to_string())),
        }
    };
    if !http.status_ok(head.status) {
        return Err(ProbeError::Protocol(format!(
            "unexpected status {}",
            head.status
        )));
    }
    if http.body_regex.is_none() && http.digest.is_none() {
        return Ok((status_note(head.status), None));
    }

    let mut body_bytes = buf.split_off(head.len);
    let body = read_body(&mut stream, &mut body_bytes, head.framing, http.max_body).await?;
    if let Some(re) = &http.body_regex
        && !re.is_match(&String::from_utf8_lossy(&body))
    {
        return Err(ProbeError::Protocol(format!(
            "body does not match /{}/",
            re.as_str()
        )));
    }
    if let Some(d) = &http.digest
        && !digest_matches(d, &body)
    {
        return Err(ProbeError::Protocol("body digest mismatch".into()));
    }
    Ok((
        Cow::Owned(format!("status {}, {} body bytes", head.status, body.len())),
        None,
    ))
}

/// Reads straight into `buf`'s spare capacity: no bounce buffer in the future's state.
async fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(READ_CHUNK);
    s.read_buf(buf).await
}

/// Reads the rest of the body per its framing, never buffering more than `max`.
async fn read_body<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    framing: Framing,
    max: usize,
) -> Result<Vec<u8>, ProbeError> {
    let too_large = || ProbeError::Protocol(format!("body larger than {max} bytes"));
    match framing {
        Framing::Length(len) => {
            if len > max {
                return Err(too_large());
            }
            while buf.len() < len {
                if read_some(s, buf).await? == 0 {
                    return Err(ProbeError::Protocol("body truncated".into()));
                }
            }
            buf.truncate(len);
            Ok(std::mem::take(buf))
        }
        Framing::UntilClose => {
            while read_some(s, buf).await? > 0 {
                if buf.len() > max {
                    return Err(too_large());
                }
            }
            Ok(std::mem::take(buf))
        }
        Framing::Chunked => loop {
            match decode_chunked(buf) {
                Ok(Some(body)) if body.len() > max => return Err(too_large()),
                Ok(Some(body)) => return Ok(body),
                Ok(None) if buf.len() > max + MAX_HEAD => return Err(too_large()),
                Ok(None) => {
                    if read_some(s, buf).await? == 0 {
                        return Err(ProbeError::Protocol("chunked body truncated".into()));
                    }
                }
                Err(e) => return Err(ProbeError::Protocol(e.to_string())),
            }
        },
    }
}

fn digest_matches(expected: &Digest, body: &[u8]) -> bool {
    match expected {
        Digest::Sha256(want) => Sha256::digest(body).as_slice() == want,
        Digest::Md5(want) => Md5::digest(body).as_slice() == want,
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// The parsed status line and the headers that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Length of the head in bytes, including the blank line.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
}

/// A malformed response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The status line is not `HTTP/1.x NNN ...`.
    #[error("malformed status line")]
    StatusLine,
    /// A header line has no colon or is not text.
    #[error("malformed header line")]
    Header,
    /// `Content-Length` is not a number.
    #[error("malformed Content-Length")]
    ContentLength,
    /// A chunk size line is not hexadecimal.
    #[error("malformed chunk size")]
    ChunkSize,
}

/// Parses the response head in `buf`; `Ok(None)` when more bytes are needed.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, ResponseError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        // The status line alone can already be judged malformed.
        if let Some(line_end) = find(buf, b"\r\n") {
            status_code(&buf[..line_end])?;
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = status_code(lines.next().unwrap_or_default())?;
    let mut framing = Framing::UntilClose;
    for line in lines {
        let line = std::str::from_utf8(line).map_err(|_| ResponseError::Header)?;
        let (name, value) = line.split_once(':').ok_or(ResponseError::Header)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value.parse().map_err(|_| ResponseError::ContentLength)?;
            framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            // RFC 9112 §6.3: chunked wins over Content-Length.
            framing = Framing::Chunked;
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say (RFC 9112 §6.3).
    if status < 200 || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok(Some(ResponseHead {
        status,
        len: end + 4,
        framing,
    }))
}

fn status_code(line: &[u8]) -> Result<u16, ResponseError> {
    let line = std::str::from_utf8(line).map_err(|_| ResponseError::StatusLine)?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ResponseError::StatusLine);
    }
    code.parse().map_err(|_| ResponseError::StatusLine)
}

/// Decodes a complete chunked body; `Ok(None)` when more bytes are needed.
fn decode_chunked(buf: &[u8]) -> Result<Option<Vec<u8>>, ResponseError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_len) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line =
            std::str::from_utf8(&buf[pos..pos + line_len]).map_err(|_| ResponseError::ChunkSize)?;
        let size_str = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| ResponseError::ChunkSize)?;
        pos += line_len + 2;
        if size == 0 {
            // Trailers are not needed to judge a health check.
            return Ok(Some(body));
        }
        let Some(end) = pos.checked_add(size).and_then(|e| e.checked_add(2)) else {
            return Err(ResponseError::ChunkSize);
        };
        if buf.len() < end {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos = end;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CheckKind, Source, Timing};

    fn spec(target: &str, http: &HttpCheck) -> CheckSpec {
        CheckSpec {
            target: target.parse().expect("addr"),
            kind: CheckKind::Http(http.clone()),
            timing: Timing::default(),
            source: Source::default(),
            start_down: false,
        }
    }

    #[test]
    fn the_request_names_the_path_and_the_host_or_the_target() {
        let get = HttpCheck::get("/health?full=1");
        let text = |target: &str, http: &HttpCheck| {
            String::from_utf8(request(&spec(target, http), http).to_vec()).expect("utf-8")
        };
        let v4 = text("10.0.0.5:8080", &get);
        assert!(
            v4.starts_with("GET /health?full=1 HTTP/1.1\r\nHost: 10.0.0.5:8080\r\n"),
            "{v4}"
        );
        assert!(v4.ends_with("Connection: close\r\n\r\n"), "{v4}");
        assert!(text("[2001:db8::5]:80", &get).contains("\r\nHost: [2001:db8::5]:80\r\n"));
        let named = HttpCheck {
            host: Some("www.example.org".into()),
            ..get
        };
        assert!(text("10.0.0.5:80", &named).contains("\r\nHost: www.example.org\r\n"));
    }

    #[test]
    fn common_statuses_need_no_allocation() {
        assert!(matches!(status_note(200), Cow::Borrowed("status 200")));
        assert_eq!(status_note(299), "status 299");
    }

    #[test]
    fn head_needs_the_blank_line() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"),
            Ok(None)
        );
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(3));
        assert_eq!(head.len, 38);
    }

    #[test]
    fn chunked_wins_over_length_and_204_has_no_body() {
        let h = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_response_head(b"HTTP/1.0 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert_eq!(
            parse_response_head(b"SSH-2.0-OpenSSH\r\n"),
            Err(ResponseError::StatusLine)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(ResponseError::StatusLine)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nbad\r\n\r\n"),
            Err(ResponseError::Header)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ResponseError::ContentLength)
        );
    }

    #[test]
    fn chunked_bodies_decode_incrementally() {
        let full = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n";
        for cut in 0..full.len() - 4 {
            assert_eq!(decode_chunked(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode_chunked(full), Ok(Some(b"Wikipedia".to_vec())));
        assert_eq!(decode_chunked(b"zz\r\n"), Err(ResponseError::ChunkSize));
        assert_eq!(
            decode_chunked(b"ffffffffffffffff\r\n"),
            Err(ResponseError::ChunkSize)
        );
    }

    #[test]
    fn digests_compare_whole_bodies() {
        let sha = Sha256::digest(b"hello");
        let mut want = [0u8; 32];
        want.copy_from_slice(&sha);
        assert!(digest_matches(&Digest::Sha256(want), b"hello"));
        assert!(!digest_matches(&Digest::Sha256(want), b"hellO"));
        let md = Md5::digest(b"hello");
        let mut want = [0u8; 16];
        want.copy_from_slice(&md);
        assert!(digest_matches(&Digest::Md5(want), b"hello"));
    }
}
