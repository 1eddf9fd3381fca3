//! keepalived tokens: words (with `"…"` quoting), `{`, `}`; `#`/`!` comments; `include GLOB`
//! spliced in place, so every token keeps the file and line it really comes from.

use std::path::{Path, PathBuf};

use super::{ImportError, Unconverted};

/// Includes nested deeper than this are surely a mistake (keepalived itself stops far earlier).
const MAX_INCLUDE_DEPTH: usize = 32;

/// Every file read, with its lines (for the text of unconverted statements).
pub(super) struct Sources {
    files: Vec<SourceFile>,
}

struct SourceFile {
    name: String,
    lines: Vec<String>,
}

impl Sources {
    pub(super) fn name(&self, loc: Loc) -> &str {
        self.files.get(loc.file).map_or("?", |f| f.name.as_str())
    }

    /// The trimmed source line at `loc`.
    pub(super) fn text(&self, loc: Loc) -> &str {
        self.files
            .get(loc.file)
            .and_then(|f| f.lines.get(loc.line.wrapping_sub(1)))
            .map_or("", |l| l.trim())
    }

    /// Position of `name` in reading order (unknown names sort last).
    pub(super) fn index_of(&self, name: &str) -> usize {
        self.files
            .iter()
            .position(|f| f.name == name)
            .unwrap_or(usize::MAX)
    }

    fn add(&mut self, name: String, src: &str) -> usize {
        self.files.push(SourceFile {
            name,
            lines: src.lines().map(str::to_owned).collect(),
        });
        self.files.len() - 1
    }
}

/// Where a token is: index into [`Sources`] and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) file: usize,
    pub(super) line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Word(String),
    Open,
    Close,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) loc: Loc,
}

/// Lexes `src` and everything it includes. Missing include targets are listed as unconverted;
/// unreadable files, unterminated quotes and include cycles are errors.
pub(super) fn lex(
    src: &str,
    file_name: &str,
) -> Result<(Sources, Vec<Token>, Vec<Unconverted>), ImportError> {
    let mut lx = Lexer {
        sources: Sources { files: Vec::new() },
        tokens: Vec::new(),
        unconverted: Vec::new(),
        stack: Vec::new(),
    };
    let path = PathBuf::from(file_name);
    lx.stack
        .push(path.canonicalize().unwrap_or_else(|_| path.clone()));
    lx.file(src, file_name, &path)?;
    Ok((lx.sources, lx.tokens, lx.unconverted))
}

struct Lexer {
    sources: Sources,
    tokens: Vec<Token>,
    unconverted: Vec<Unconverted>,
    /// Canonical paths of the files being read, outermost first: an include of one of them is
    /// a cycle.
    stack: Vec<PathBuf>,
}

impl Lexer {
    fn file(&mut self, src: &str, name: &str, path: &Path) -> Result<(), ImportError> {
        let file = self.sources.add(name.to_owned(), src);
        for (i, line) in src.lines().enumerate() {
            let loc = Loc { file, line: i + 1 };
            let words = split_line(line).map_err(|message| ImportError::Syntax {
                file: name.to_owned(),
                line: loc.line,
                message,
            })?;
            if matches!(words.first(), Some(Tok::Word(w)) if w == "include") {
                self.include(&words[1..], loc, name, path)?;
                continue;
            }
            self.tokens
                .extend(words.into_iter().map(|tok| Token { tok, loc }));
        }
        Ok(())
    }

    fn include(
        &mut self,
        args: &[Tok],
        loc: Loc,
        name: &str,
        path: &Path,
    ) -> Result<(), ImportError> {
        let [Tok::Word(pattern)] = args else {
            self.skip(loc, "`include` takes exactly one file name or pattern");
            return Ok(());
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let targets = match expand(base, pattern) {
            Ok(t) if t.is_empty() => {
                self.skip(
                    loc,
                    format!("no file matches include pattern \"{pattern}\""),
                );
                return Ok(());
            }
            Ok(t) => t,
            Err(reason) => {
                self.skip(loc, reason);
                return Ok(());
            }
        };
        for target in targets {
            let canon = target.canonicalize().unwrap_or_else(|_| target.clone());
            let syntax = |message: String| ImportError::Syntax {
                file: name.to_owned(),
                line: loc.line,
                message,
            };
            if self.stack.contains(&canon) {
                return Err(syntax(format!(
                    "include cycle: {} is already being read",
                    target.display()
                )));
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                return Err(syntax(format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} deep"
                )));
            }
            let text = std::fs::read_to_string(&target).map_err(|source| ImportError::Read {
                path: target.clone(),
                source,
            })?;
            self.stack.push(canon);
            self.file(&text, &target.display().to_string(), &target)?;
            self.stack.pop();
        }
        Ok(())
    }

    fn skip(&mut self, loc: Loc, reason: impl Into<String>) {
        self.unconverted.push(Unconverted {
            file: self.sources.name(loc).to_owned(),
            line: loc.line,
            text: self.sources.text(loc).to_owned(),
            reason: reason.into(),
        });
    }
}

/// Splits one line into tokens. `#` and `!` start a comment where a token could start; braces
/// are tokens of their own; `"…"` quotes (with `\"` and `\\`) may hold spaces and braces.
fn split_line(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { break };
        match c {
            '#' | '!' => break,
            '{' | '}' => {
                chars.next();
                out.push(if c == '{' { Tok::Open } else { Tok::Close });
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    chars.next();
                    if c != '"' {
                        word.push(c);
                        continue;
                    }
                    loop {
                        match chars.next() {
                            None => return Err("unterminated quoted string".to_owned()),
                            Some('"') => break,
                            Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                                word.extend(chars.next());
                            }
                            Some(c) => word.push(c),
                        }
                    }
                }
                out.push(Tok::Word(word));
            }
        }
    }
    Ok(out)
}

/// The files an include pattern names, sorted. Wildcards (`*`, `?`) are supported in the last
/// path component only, as in keepalived's common usage (`conf.d/*.conf`).
fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = base.join(pattern);
    let is_glob = |s: &str| s.contains(['*', '?', '[']);
    let last = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = full.parent().unwrap_or(Path::new(""));
    if is_glob(&dir.to_string_lossy()) {
        return Err(format!(
            "include pattern \"{pattern}\": wildcards are supported in the file name only"
        ));
    }
    if last.contains('[') {
        return Err(format!(
            "include pattern \"{pattern}\": `[…]` classes are not supported (use * or ?)"
        ));
    }
    if !is_glob(&last) {
        return Ok(if full.is_file() {
            vec![full]
        } else {
            Vec::new()
        });
    }
    let dir_for_read = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir_for_read) else {
        return Ok(Vec::new());
    };
    let pat: Vec<char> = last.chars().collect();
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // Like shells, a wildcard does not match a leading dot.
            (!name.starts_with('.') || last.starts_with('.'))
                && wildcard(&pat, &name.chars().collect::<Vec<_>>())
        })
        .map(|e| dir.join(e.file_name()))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

/// `*` matches any run of characters, `?` exactly one. Iterative with one backtrack point, so
/// linear-ish and never recursive.
fn wildcard(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        wildcard(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn wildcards() {
        assert!(m("*.conf", "a.conf"));
        assert!(m("*.conf", ".conf"));
        assert!(!m("*.conf", "a.conf.bak"));
        assert!(m("vs-?.conf", "vs-1.conf"));
        assert!(!m("vs-?.conf", "vs-10.conf"));
        assert!(m("*a*b*", "xxaybz"));
        assert!(!m("*a*b", "xxaybz"));
        assert!(m("*", ""));
    }

    #[test]
    fn tokens() {
        let t = split_line(r#"  misc_path "/bin/x \"a b\" {" weird{x}  # c"#).expect("valid");
        assert_eq!(
            t,
            vec![
                Tok::Word("misc_path".into()),
                Tok::Word(r#"/bin/x "a b" {"#.into()),
                Tok::Word("weird".into()),
                Tok::Open,
                Tok::Word("x".into()),
                Tok::Close,
            ]
        );
        assert_eq!(split_line("! all comment").expect("valid"), vec![]);
        assert!(split_line("script \"unterminated").is_err());
    }
}
