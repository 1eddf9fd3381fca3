//! Statements: the words of one source line, optionally followed by a `{ … }` block (whose `{`
//! may sit on the same line or the next one, as keepalived allows).

use super::ImportError;
use super::lex::{Loc, Sources, Tok, Token};

/// Deeper nesting than any keepalived config has; the limit keeps hostile input off the stack.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub(super) struct Stmt {
    /// Keyword and arguments; empty for a block with no keyword before it.
    pub(super) words: Vec<String>,
    pub(super) loc: Loc,
    pub(super) block: Option<Vec<Stmt>>,
    /// Where the block's `}` is.
    pub(super) end: Option<Loc>,
}

impl Stmt {
    pub(super) fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    pub(super) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or_default()
    }

    /// The statements of the block; empty when there is none.
    pub(super) fn body(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or_default()
    }
}

pub(super) fn parse(sources: &Sources, tokens: &[Token]) -> Result<Vec<Stmt>, ImportError> {
    let mut p = Parser {
        sources,
        tokens,
        pos: 0,
    };
    p.block(None, 0).map(|(stmts, _)| stmts)
}

struct Parser<'a> {
    sources: &'a Sources,
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    /// Statements up to the `}` closing the block opened at `open` (or to the end of input for
    /// the top level), and where that `}` is.
    fn block(
        &mut self,
        open: Option<Loc>,
        depth: usize,
    ) -> Result<(Vec<Stmt>, Option<Loc>), ImportError> {
        let mut stmts = Vec::new();
        loop {
            let Some(token) = self.tokens.get(self.pos) else {
                return match open {
                    Some(loc) => Err(self.error(loc, "`{` is never closed")),
                    None => Ok((stmts, None)),
                };
            };
            let loc = token.loc;
            match &token.tok {
                Tok::Close => {
                    self.pos += 1;
                    return match open {
                        Some(_) => Ok((stmts, Some(loc))),
                        None => Err(self.error(loc, "`}` without a matching `{`")),
                    };
                }
                Tok::Open => {
                    self.pos += 1;
                    let (block, end) = self.nested(loc, depth)?;
                    stmts.push(Stmt {
                        words: Vec::new(),
                        loc,
                        block: Some(block),
                        end,
                    });
                }
                Tok::Word(_) => {
                    let mut words = Vec::new();
                    while let Some(Token {
                        tok: Tok::Word(w),
                        loc: l,
                    }) = self.tokens.get(self.pos)
                        && *l == loc
                    {
                        words.push(w.clone());
                        self.pos += 1;
                    }
                    let (block, end) = match self.tokens.get(self.pos) {
                        Some(Token {
                            tok: Tok::Open,
                            loc: open_loc,
                        }) => {
                            let open_loc = *open_loc;
                            self.pos += 1;
                            let (block, end) = self.nested(open_loc, depth)?;
                            (Some(block), end)
                        }
                        _ => (None, None),
                    };
                    stmts.push(Stmt {
                        words,
                        loc,
                        block,
                        end,
                    });
                }
            }
        }
    }

    fn nested(&mut self, open: Loc, depth: usize) -> Result<(Vec<Stmt>, Option<Loc>), ImportError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(open, "blocks nested too deeply"));
        }
        self.block(Some(open), depth + 1)
    }

    fn error(&self, loc: Loc, message: &str) -> ImportError {
        ImportError::Syntax {
            file: self.sources.name(loc).to_owned(),
            line: loc.line,
            message: message.to_owned(),
        }
    }
}
