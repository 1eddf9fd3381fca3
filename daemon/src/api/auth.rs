//! Bearer-token authentication for the control API (`[api] token_file`).
//!
//! The token is compared in constant time, so response timing does not reveal how many leading
//! bytes of a guess were right.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Token files larger than this are refused: a token is a line, not a document, and the limit
/// keeps a wrong path (say, a log file) from being read into memory.
const MAX_TOKEN_FILE_LEN: u64 = 4096;

/// A secret the API requires as `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(Arc<[u8]>);

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be opened or read.
    #[error("{}: cannot read API token file: {source}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace; an empty token would let anyone in.
    #[error("{}: API token file is empty", path.display())]
    Empty {
        /// The token file.
        path: PathBuf,
    },
    /// The file is larger than 4 KiB.
    #[error("{}: API token file is larger than {MAX_TOKEN_FILE_LEN} bytes", path.display())]
    TooLarge {
        /// The token file.
        path: PathBuf,
    },
}

impl TokenError {
    /// Whether the OS refused access (vigilctl exits with EX_NOPERM then).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
    }
}

impl ApiToken {
    /// Reads a token file: surrounding whitespace (the trailing newline editors add) is ignored.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let read_err = |source| TokenError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut raw = Vec::new();
        file.take(MAX_TOKEN_FILE_LEN + 1)
            .read_to_end(&mut raw)
            .map_err(read_err)?;
        if raw.len() as u64 > MAX_TOKEN_FILE_LEN {
            return Err(TokenError::TooLarge {
                path: path.to_owned(),
            });
        }
        Self::from_bytes(raw.trim_ascii()).ok_or_else(|| TokenError::Empty {
            path: path.to_owned(),
        })
    }

    /// A token from its bytes; `None` when empty.
    pub fn from_bytes(token: &[u8]) -> Option<Self> {
        (!token.is_empty()).then(|| Self(token.into()))
    }

    /// The token's bytes, for the client side that sends it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        // RFC 9110 §11.1: the auth scheme is case-insensitive.
        let Some((scheme, presented)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && constant_time_eq(&self.0, presented.trim_ascii())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Compares `secret` with `presented`; the time taken depends only on `secret.len()`.
fn constant_time_eq(secret: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(secret.len() != presented.len());
    for (i, s) in secret.iter().enumerate() {
        diff |= s ^ presented.get(i).copied().unwrap_or(0);
    }
    // Keep the optimiser from turning the loop into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn constant_time_eq_matches_only_equal_slices() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
        // A guess padded with NULs must not match a shorter secret.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
    }

    #[test]
    fn bearer_header_is_checked() {
        let token = ApiToken::from_bytes(b"s3cr3t").unwrap();
        assert!(token.authorizes(&headers("Bearer s3cr3t")));
        assert!(token.authorizes(&headers("bearer s3cr3t")));
        assert!(!token.authorizes(&headers("Bearer wrong")));
        assert!(!token.authorizes(&headers("Basic s3cr3t")));
        assert!(!token.authorizes(&headers("Bearer")));
        assert!(!token.authorizes(&HeaderMap::new()));
    }

    #[test]
    fn empty_token_is_refused() {
        assert!(ApiToken::from_bytes(b"").is_none());
        let dir = std::env::temp_dir().join(format!("vigil-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            ApiToken::load(&path),
            Err(TokenError::Empty { .. })
        ));
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(ApiToken::load(&path).unwrap().as_bytes(), b"abc");
        std::fs::write(&path, vec![b'x'; 5000]).unwrap();
        assert!(matches!(
            ApiToken::load(&path),
            Err(TokenError::TooLarge { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            ApiToken::load(&path),
            Err(TokenError::Read { .. })
        ));
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let token = ApiToken::from_bytes(b"hunter2").unwrap();
        assert!(!format!("{token:?}").contains("hunter2"));
    }
}
