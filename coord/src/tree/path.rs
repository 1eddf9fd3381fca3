//! Znode paths: ZooKeeper's validation rules (`PathUtils.validatePath`) and the small helpers the
//! tree needs (parent, last component, depth).

/// Longest accepted path in bytes. ZooKeeper has no explicit limit (only the 1 MiB packet limit);
/// a bound keeps a hostile client from storing megabyte-long keys in every index.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path was refused. Every variant maps to [`crate::Error::BadArguments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// The path ends with `/` (only the root may).
    #[error("path must not end with '/'")]
    TrailingSlash,
    /// The path contains `//`.
    #[error("empty node name")]
    EmptyComponent,
    /// A component is `.` or `..`.
    #[error("relative component '.' or '..'")]
    RelativeComponent,
    /// The path contains a character ZooKeeper refuses (NUL, control characters, private use, …).
    #[error("invalid character {0:?}")]
    InvalidChar(char),
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("path longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

impl From<PathError> for crate::Error {
    fn from(_: PathError) -> Self {
        crate::Error::BadArguments
    }
}

/// Checks `path` against ZooKeeper's rules. A sequential create may end with `/` (the suffix
/// becomes the last component), as in ZooKeeper, which validates `path + "1"`.
pub fn validate(path: &str, sequential: bool) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path == "/" {
        // A sequential create under the root ("/" + suffix) is fine; the root itself is too.
        return Ok(());
    }
    let body = &path[1..];
    let components: Vec<&str> = body.split('/').collect();
    let last = components.len() - 1;
    for (i, component) in components.iter().enumerate() {
        if component.is_empty() {
            if i == last {
                if sequential {
                    continue;
                }
                return Err(PathError::TrailingSlash);
            }
            return Err(PathError::EmptyComponent);
        }
        // A sequential suffix turns "/a/." into "/a/.0000000001", which is a valid name.
        let completed = sequential && i == last;
        if !completed && (*component == "." || *component == "..") {
            return Err(PathError::RelativeComponent);
        }
        if let Some(c) = component.chars().find(|&c| invalid_char(c)) {
            return Err(PathError::InvalidChar(c));
        }
    }
    Ok(())
}

/// Checks one component (a node's name) against the rules [`validate`] applies to each component
/// of a path; used where names arrive without their path (snapshots).
pub fn validate_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::EmptyComponent);
    }
    if name.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if name == "." || name == ".." {
        return Err(PathError::RelativeComponent);
    }
    match name.chars().find(|&c| c == '/' || invalid_char(c)) {
        Some(c) => Err(PathError::InvalidChar(c)),
        None => Ok(()),
    }
}

/// ZooKeeper's forbidden characters. Java strings are UTF-16, so ZooKeeper's surrogate range
/// (U+D800..U+DFFF) refuses every character outside the Basic Multilingual Plane; so do we.
fn invalid_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
        || u32::from(c) > 0xffff
}

/// The parent of a valid non-root path (`/a/b` → `/a`, `/a` → `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a valid non-root path (`/a/b` → `b`).
pub fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Number of components: 0 for the root, 1 for `/a`, 2 for `/a/b`.
pub fn depth(path: &str) -> u16 {
    if path == "/" {
        0
    } else {
        path.bytes().filter(|&b| b == b'/').count() as u16
    }
}

/// `parent` + `/` + `name`, without doubling the root's slash.
pub fn join(parent: &str, name: &str) -> String {
    let mut s = String::with_capacity(parent.len() + 1 + name.len());
    s.push_str(parent);
    if parent != "/" {
        s.push('/');
    }
    s.push_str(name);
    s
}

/// Whether `path` is `ancestor` or lies below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::{PathError, depth, is_within, join, name, parent, validate};

    #[test]
    fn accepts_zookeeper_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b/c..d",
            "/ünï/日本",
            "/a/...",
            "/_-: x",
        ] {
            assert_eq!(validate(p, false), Ok(()), "{p}");
        }
        assert_eq!(validate("/a/", true), Ok(()));
        assert_eq!(validate("/a/.", true), Ok(()));
    }

    #[test]
    fn refuses_what_zookeeper_refuses() {
        let cases = [
            ("", PathError::Empty),
            ("a", PathError::NotAbsolute),
            ("/a/", PathError::TrailingSlash),
            ("//a", PathError::EmptyComponent),
            ("/a//b", PathError::EmptyComponent),
            ("/a/./b", PathError::RelativeComponent),
            ("/a/..", PathError::RelativeComponent),
            ("/a\u{0}b", PathError::InvalidChar('\u{0}')),
            ("/a\u{1f}", PathError::InvalidChar('\u{1f}')),
            ("/\u{7f}", PathError::InvalidChar('\u{7f}')),
            ("/\u{e000}", PathError::InvalidChar('\u{e000}')),
            ("/\u{fff0}", PathError::InvalidChar('\u{fff0}')),
            ("/😀", PathError::InvalidChar('😀')),
        ];
        for (p, want) in cases {
            assert_eq!(validate(p, false), Err(want), "{p:?}");
        }
        assert_eq!(validate("//", true), Err(PathError::EmptyComponent));
        let long = format!("/{}", "x".repeat(super::MAX_PATH_LEN));
        assert_eq!(validate(&long, false), Err(PathError::TooLong));
    }

    #[test]
    fn helpers() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b/c"), "c");
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/a/b"), 2);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/ab", "/"));
    }
}
