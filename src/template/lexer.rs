//! The lexer: splits template source into literal text and the tokens inside `{{ }}` actions
//! (identifiers, fields, variables, string and number literals, punctuation), applying trim
//! markers and dropping comments; every token carries its line and column.

use std::cell::Cell;

use super::{parse_error, Pos, TemplateError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    Text(String),
    LeftDelim,
    RightDelim,
    /// `.Name` (stored without the dot).
    Field(String),
    Dot,
    /// `$` or `$name` (stored with the `$`).
    Variable(String),
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
    LeftParen,
    RightParen,
    Comma,
    Declare,
    Assign,
    Eof,
}

impl TokenKind {
    pub(super) fn describe(&self) -> String {
        match self {
            TokenKind::Text(_) => "text".to_owned(),
            TokenKind::LeftDelim => "\"{{\"".to_owned(),
            TokenKind::RightDelim => "\"}}\"".to_owned(),
            TokenKind::Field(name) => format!("field .{name}"),
            TokenKind::Dot => "\".\"".to_owned(),
            TokenKind::Variable(name) => format!("variable {name}"),
            TokenKind::Ident(name) => format!("identifier {name:?}"),
            TokenKind::Str(s) => format!("string {s:?}"),
            TokenKind::Int(i) => format!("number {i}"),
            TokenKind::Pipe => "\"|\"".to_owned(),
            TokenKind::LeftParen => "\"(\"".to_owned(),
            TokenKind::RightParen => "\")\"".to_owned(),
            TokenKind::Comma => "\",\"".to_owned(),
            TokenKind::Declare => "\":=\"".to_owned(),
            TokenKind::Assign => "\"=\"".to_owned(),
            TokenKind::Eof => "end of template".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    pub(super) pos: Pos,
    /// Whether whitespace separated this token from the previous one inside an action.
    pub(super) spaced: bool,
}

fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

pub(super) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line_starts: Vec<usize>,
    /// The last computed (offset, position), so columns on long lines are counted incrementally.
    last_position: Cell<(usize, Pos)>,
    tokens: Vec<Token>,
    trim_next_text: bool,
}

impl<'s> Lexer<'s> {
    pub(super) fn new(src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lexer {
            src,
            pos: 0,
            line_starts,
            last_position: Cell::new((0, Pos { line: 1, column: 1 })),
            tokens: Vec::new(),
            trim_next_text: false,
        }
    }

    fn position(&self, offset: usize) -> Pos {
        let line_index = self
            .line_starts
            .partition_point(|start| *start <= offset)
            .saturating_sub(1);
        let line = line_index + 1;
        let (cached_offset, cached) = self.last_position.get();
        let (from, base_column) = if cached.line == line && cached_offset <= offset {
            (cached_offset, cached.column)
        } else {
            (self.line_starts.get(line_index).copied().unwrap_or(0), 1)
        };
        let column = base_column + self.src.get(from..offset).map_or(0, |s| s.chars().count());
        let pos = Pos { line, column };
        self.last_position.set((offset, pos));
        pos
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> TemplateError {
        parse_error(self.position(offset), message)
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn push(&mut self, kind: TokenKind, offset: usize, spaced: bool) {
        let pos = self.position(offset);
        self.tokens.push(Token { kind, pos, spaced });
    }

    pub(super) fn run(mut self) -> Result<Vec<Token>, TemplateError> {
        loop {
            let rest = self.rest();
            let Some(open_at) = rest.find("{{") else {
                self.push_text(rest.len());
                break;
            };
            self.push_text(open_at);
            let open = self.pos;
            self.pos += 2;
            let bytes = self.src.as_bytes();
            if bytes.get(self.pos) == Some(&b'-')
                && bytes.get(self.pos + 1).copied().is_some_and(is_space_byte)
            {
                self.trim_previous_text();
                self.pos += 2;
            }
            if self.rest().starts_with("/*") {
                self.lex_comment(open)?;
                continue;
            }
            self.push(TokenKind::LeftDelim, open, false);
            self.lex_action(open)?;
        }
        let end = self.src.len();
        self.push(TokenKind::Eof, end, false);
        Ok(self.tokens)
    }

    /// Emits `len` bytes of literal text starting at the cursor, applying a pending `-}}` trim.
    fn push_text(&mut self, len: usize) {
        let start = self.pos;
        let mut text = self.src.get(start..start + len).unwrap_or("");
        self.pos = start + len;
        if self.trim_next_text {
            text = text.trim_start_matches(is_space);
            self.trim_next_text = false;
        }
        if !text.is_empty() {
            self.push(TokenKind::Text(text.to_owned()), start, false);
        }
    }

    /// Applies a `{{- ` trim to the text just before it.
    fn trim_previous_text(&mut self) {
        if let Some(Token {
            kind: TokenKind::Text(text),
            ..
        }) = self.tokens.last_mut()
        {
            let trimmed_len = text.trim_end_matches(is_space).len();
            text.truncate(trimmed_len);
            if text.is_empty() {
                self.tokens.pop();
            }
        }
    }

    /// Tries to consume a closing delimiter (`}}` or ` -}}`) at the cursor.
    fn take_right_delim(&mut self) -> bool {
        let rest = self.rest();
        if rest.starts_with("}}") {
            self.pos += 2;
            return true;
        }
        if rest.bytes().next().is_some_and(is_space_byte)
            && rest.get(1..).is_some_and(|r| r.starts_with("-}}"))
        {
            self.pos += 4;
            self.trim_next_text = true;
            return true;
        }
        false
    }

    fn lex_comment(&mut self, open: usize) -> Result<(), TemplateError> {
        let body_start = self.pos + 2;
        let Some(end) = self.src.get(body_start..).and_then(|r| r.find("*/")) else {
            return Err(self.error(open, "unclosed comment"));
        };
        self.pos = body_start + end + 2;
        if self.take_right_delim() {
            Ok(())
        } else {
            Err(self.error(self.pos, "comment ends before closing delimiter"))
        }
    }

    fn lex_action(&mut self, open: usize) -> Result<(), TemplateError> {
        let mut spaced = true;
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error(open, "unclosed action: missing \"}}\""));
            };
            let start = self.pos;
            if is_space(c) {
                if self.take_right_delim() {
                    self.push(TokenKind::RightDelim, start, true);
                    return Ok(());
                }
                self.pos += 1;
                spaced = true;
                continue;
            }
            if self.take_right_delim() {
                self.push(TokenKind::RightDelim, start, spaced);
                return Ok(());
            }
            let kind = match c {
                '|' => self.single(TokenKind::Pipe),
                '(' => self.single(TokenKind::LeftParen),
                ')' => self.single(TokenKind::RightParen),
                ',' => self.single(TokenKind::Comma),
                '=' => self.single(TokenKind::Assign),
                ':' => {
                    if self.rest().starts_with(":=") {
                        self.pos += 2;
                        TokenKind::Declare
                    } else {
                        return Err(self.error(start, "expected \":=\" after \":\""));
                    }
                }
                '"' => TokenKind::Str(self.lex_quoted()?),
                '`' => TokenKind::Str(self.lex_raw()?),
                '\'' => {
                    return Err(self.error(start, "character constants are not supported"));
                }
                '$' => {
                    self.pos += 1;
                    let name_len = self.ident_len();
                    self.pos += name_len;
                    TokenKind::Variable(self.src.get(start..self.pos).unwrap_or("$").to_owned())
                }
                '.' => self.lex_dot()?,
                '0'..='9' | '-' | '+' => TokenKind::Int(self.lex_number()?),
                c if is_ident_start(c) => {
                    let len = self.ident_len();
                    self.pos += len;
                    TokenKind::Ident(self.src.get(start..self.pos).unwrap_or("").to_owned())
                }
                other => {
                    return Err(
                        self.error(start, format!("unexpected character {other:?} in action"))
                    );
                }
            };
            self.push(kind, start, spaced);
            spaced = false;
        }
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    /// Length in bytes of the identifier characters at the cursor.
    fn ident_len(&self) -> usize {
        let rest = self.rest();
        rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len())
    }

    fn lex_dot(&mut self) -> Result<TokenKind, TemplateError> {
        let start = self.pos;
        self.pos += 1;
        match self.rest().chars().next() {
            Some(c) if c.is_ascii_digit() => {
                Err(self.error(start, "floating-point numbers are not supported"))
            }
            Some(c) if is_ident_start(c) => {
                let len = self.ident_len();
                let name = self.rest().get(..len).unwrap_or("").to_owned();
                self.pos += len;
                Ok(TokenKind::Field(name))
            }
            _ => Ok(TokenKind::Dot),
        }
    }

    fn lex_number(&mut self) -> Result<i64, TemplateError> {
        let start = self.pos;
        let rest = self.rest();
        let (negative, unsigned) = match rest.as_bytes().first() {
            Some(b'-') => (true, &rest[1..]),
            Some(b'+') => (false, &rest[1..]),
            _ => (false, rest),
        };
        if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error(start, format!("unexpected {:?} in action", &rest[..1])));
        }
        let len = unsigned
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(unsigned.len());
        let literal = &unsigned[..len];
        self.pos += (rest.len() - unsigned.len()) + len;
        let full = &rest[..(rest.len() - unsigned.len()) + len];
        if literal.contains('.') {
            return Err(self.error(start, "floating-point numbers are not supported"));
        }
        let (radix, digits) = match literal.get(..2) {
            Some("0x") | Some("0X") => (16, &literal[2..]),
            _ => (10, literal),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(self.error(start, format!("bad number syntax: {full:?}")));
        }
        let magnitude = u128::from_str_radix(digits, radix)
            .ok()
            .and_then(|m| i128::try_from(m).ok());
        let value = magnitude
            .map(|m| if negative { -m } else { m })
            .and_then(|v| i64::try_from(v).ok());
        value.ok_or_else(|| self.error(start, format!("integer literal {full} is out of range")))
    }

    fn lex_raw(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        let body_start = start + 1;
        let Some(len) = self.src.get(body_start..).and_then(|r| r.find('`')) else {
            return Err(self.error(start, "unterminated raw quoted string"));
        };
        let body = self.src.get(body_start..body_start + len).unwrap_or("");
        self.pos = body_start + len + 1;
        Ok(body.replace('\r', ""))
    }

    fn lex_quoted(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        let src = self.src;
        let mut bytes: Vec<u8> = Vec::new();
        let mut i = start + 1;
        loop {
            let Some(c) = src.get(i..).and_then(|r| r.chars().next()) else {
                return Err(self.error(start, "unterminated quoted string"));
            };
            match c {
                '"' => {
                    self.pos = i + 1;
                    break;
                }
                '\n' => return Err(self.error(start, "unterminated quoted string")),
                '\\' => {
                    let escape_at = i;
                    let Some(e) = src.get(i + 1..).and_then(|r| r.chars().next()) else {
                        return Err(self.error(start, "unterminated quoted string"));
                    };
                    i += 1 + e.len_utf8();
                    match e {
                        'a' => bytes.push(0x07),
                        'b' => bytes.push(0x08),
                        'f' => bytes.push(0x0c),
                        'n' => bytes.push(b'\n'),
                        'r' => bytes.push(b'\r'),
                        't' => bytes.push(b'\t'),
                        'v' => bytes.push(0x0b),
                        '\\' => bytes.push(b'\\'),
                        '"' => bytes.push(b'"'),
                        'x' => {
                            let value = self.radix_digits(i, 2, 16, escape_at)?;
                            i += 2;
                            bytes.push(value as u8);
                        }
                        '0'..='7' => {
                            let value = self.radix_digits(i - 1, 3, 8, escape_at)?;
                            i += 2;
                            let byte = u8::try_from(value).map_err(|_| {
                                self.error(escape_at, "octal escape value is greater than 255")
                            })?;
                            bytes.push(byte);
                        }
                        'u' | 'U' => {
                            let width = if e == 'u' { 4 } else { 8 };
                            let value = self.radix_digits(i, width, 16, escape_at)?;
                            i += width;
                            let ch = char::from_u32(value).ok_or_else(|| {
                                self.error(
                                    escape_at,
                                    format!("invalid Unicode code point {value:#x}"),
                                )
                            })?;
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            return Err(
                                self.error(escape_at, format!("unknown escape sequence \\{other}"))
                            );
                        }
                    }
                }
                c => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += c.len_utf8();
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error(start, "string literal is not valid UTF-8"))
    }

    fn radix_digits(
        &self,
        at: usize,
        count: usize,
        radix: u32,
        escape_at: usize,
    ) -> Result<u32, TemplateError> {
        self.src
            .get(at..at + count)
            .filter(|digits| digits.chars().all(|c| c.is_digit(radix)))
            .and_then(|digits| u32::from_str_radix(digits, radix).ok())
            .ok_or_else(|| {
                self.error(
                    escape_at,
                    format!("invalid escape: expected {count} base-{radix} digits"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::*;
    use crate::template::*;

    #[test]
    fn trim_markers() {
        assert_eq!(render("a  \n {{- .Topic -}} \n  b"), "auser.createdb");
        assert_eq!(render("a {{- .Topic}} b"), "auser.created b");
        assert_eq!(render("a {{.Topic -}} b"), "a user.createdb");
        assert_eq!(render("{{-3}}"), "-3");
        assert_eq!(render("{{3 -}}  x"), "3x");
        assert_eq!(
            render("{{range .Signatures -}}\n  {{.}}\n{{- end}}"),
            "abcdef"
        );
    }

    #[test]
    fn comments() {
        assert_eq!(render("a{{/* ignored }} */}}b"), "ab");
        assert_eq!(render("a {{- /* trimmed */ -}} b"), "ab");
        assert_parse_error("{{/* never closed", "unclosed comment");
        assert_parse_error("{{/* x */ .A}}", "comment ends before closing delimiter");
    }

    #[test]
    fn string_literals() {
        assert_eq!(
            render(r#"{{"tab\tnl\nq\"bs\\hex\x41oct\101u\u00e9U\U0001F600"}}"#),
            "tab\tnl\nq\"bs\\hexAoctAuéU😀"
        );
        assert_eq!(render(r#"{{"}}"}}"#), "}}");
        assert_eq!(render("{{`raw \\n {{x}}`}}"), "raw \\n {{x}}");
        assert_eq!(render("{{`a\r\nb`}}"), "a\nb");
        assert_eq!(render(r#"{{"\a\b\f\v"}}"#), "\x07\x08\x0c\x0b");
    }

    #[test]
    fn bad_string_literals() {
        assert_parse_error(r#"{{"abc}}"#, "unterminated quoted string");
        assert_parse_error("{{\"a\nb\"}}", "unterminated quoted string");
        assert_parse_error(r#"{{"\q"}}"#, "unknown escape sequence \\q");
        assert_parse_error(r#"{{"\xZZ"}}"#, "invalid escape");
        assert_parse_error(r#"{{"\400"}}"#, "greater than 255");
        assert_parse_error(r#"{{"\uD800"}}"#, "invalid Unicode code point");
        assert_parse_error(r#"{{"\xff"}}"#, "not valid UTF-8");
        assert_parse_error("{{`abc}}", "unterminated raw quoted string");
        assert_parse_error("{{'a'}}", "character constants are not supported");
    }

    #[test]
    fn number_literals() {
        assert_eq!(
            render("{{9223372036854775807}} {{-9223372036854775808}}"),
            "9223372036854775807 -9223372036854775808"
        );
        assert_parse_error("{{9223372036854775808}}", "out of range");
        assert_parse_error("{{1.5}}", "floating-point");
        assert_parse_error("{{.5}}", "floating-point");
        assert_parse_error("{{12ab}}", "bad number syntax");
        assert_parse_error("{{0x}}", "bad number syntax");
        assert_parse_error("{{- -}}", "unexpected \"-\"");
    }

    #[test]
    fn positions_after_earlier_errors_and_on_later_lines() {
        let (line, column, _) = parse_failure("{{.A}}{{.B}}\nxx{{.C}}{{\"\\q\"}}");
        // Points at the backslash of the bad escape.
        assert_eq!((line, column), (2, 12));
        let (line, column, _) = parse_failure("aé{{.A}} {{if .B}}");
        assert_eq!((line, column), (1, 12));
    }

    #[test]
    fn long_single_line_templates_parse_quickly() {
        let mut source = "{{.EventID}}".repeat(MAX_SOURCE_BYTES / 12 - 1);
        source.push_str("{{nope}}");
        let started = std::time::Instant::now();
        let (line, column, _) = parse_failure(&source);
        assert_eq!((line, column), (1, 12 * (MAX_SOURCE_BYTES / 12 - 1) + 3));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        source.truncate(source.len() - "{{nope}}".len());
        assert_eq!(render(&source).len(), 7 * (MAX_SOURCE_BYTES / 12 - 1));
    }

    #[test]
    fn column_counts_characters_not_bytes() {
        let (line, column, _) = parse_failure("héé {{nope}}");
        assert_eq!((line, column), (1, 7));
    }
}
