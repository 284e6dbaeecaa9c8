//! A small, safe subset of Go's `text/template` (plus the Sprig functions upstream's templates use).
//!
//! This module owns parsing and rendering of the operator-configured templates: the webhook
//! signature content and header templates (`DESTINATIONS_WEBHOOK_SIGNATURE_*_TEMPLATE`) and the
//! signing-secret template. It is pure: no I/O, no clock, no randomness — callers supply the data.
//!
//! Supported syntax:
//! - literal text, `{{/* comments */}}`, trim markers `{{- ` and ` -}}`;
//! - `{{.}}`, fields `{{.A}}`, nested `{{.A.B}}`, `{{.Timestamp.Unix}}` (also `UnixMilli`,
//!   `UnixMicro`, `UnixNano`), variables `{{$}}`, `{{$x := …}}`, `{{$x = …}}`, `{{$x.A}}`;
//! - pipelines `{{.Signatures | join ","}}` (the piped value becomes the last argument) and
//!   parenthesised sub-pipelines `{{(index .L 0).A}}`;
//! - `{{if}}`, `{{else if}}`, `{{with}}`, `{{else with}}`, `{{range}}` (lists, maps, integers), with
//!   `{{range $i, $s := …}}`, `{{else}}` and `{{end}}`;
//! - literals: `"quoted"` strings with Go escapes, `` `raw` `` strings, decimal/hex integers,
//!   `true`, `false`;
//! - functions: `join` (Sprig: `join sep list`), `index`, `slice`, `printf` (`%s %d %v %%`),
//!   `print`, `lower`, `upper`, `len`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or`.
//!
//! Deliberate differences from Go: unknown fields are render errors (upstream's data is a struct,
//! not a map); calling a non-function with arguments, piping into a non-function, unknown
//! functions, wrong argument counts and undefined variables are parse errors; `printf`
//! mismatches are errors instead of `%!d(…)` noise; a time printed directly renders as RFC 3339
//! UTC with whole seconds (`2024-06-01T08:23:36Z`) rather than Go's `time.Time.String()`.
//!
//! Hostile templates are bounded: source size, nesting depth, evaluation steps, and output size
//! (see [`MAX_NESTING_DEPTH`], [`MAX_EVALUATION_STEPS`], [`BASE_OUTPUT_LIMIT_BYTES`]).

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// Largest accepted template source.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
/// Deepest nesting of `if`/`with`/`range` blocks and parenthesised pipelines.
pub const MAX_NESTING_DEPTH: usize = 64;
/// Most evaluation steps (nodes, commands and loop iterations) one render may take.
pub const MAX_EVALUATION_STEPS: u64 = 1_000_000;
/// Output (and intermediate string) budget for one render. The budget grows by twice the
/// total size of the strings in the data, so a template like `{{.Body}}` never fails on a large
/// body while amplification stays bounded.
pub const BASE_OUTPUT_LIMIT_BYTES: usize = 1 << 20;

/// A value a template can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateValue {
    Str(String),
    Int(i64),
    List(Vec<TemplateValue>),
    Map(BTreeMap<String, TemplateValue>),
    Time(TemplateTime),
}

impl TemplateValue {
    /// Builds a `Map` from `(name, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, TemplateValue)>) -> Self {
        TemplateValue::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn type_name(&self) -> &'static str {
        match self {
            TemplateValue::Str(_) => "string",
            TemplateValue::Int(_) => "int",
            TemplateValue::List(_) => "list",
            TemplateValue::Map(_) => "map",
            TemplateValue::Time(_) => "time",
        }
    }

    /// Total bytes of string content (keys included) — used to size the output budget.
    fn string_weight(&self) -> usize {
        match self {
            TemplateValue::Str(s) => s.len(),
            TemplateValue::Int(_) | TemplateValue::Time(_) => 0,
            TemplateValue::List(items) => items
                .iter()
                .fold(0usize, |acc, v| acc.saturating_add(v.string_weight())),
            TemplateValue::Map(map) => map.iter().fold(0usize, |acc, (k, v)| {
                acc.saturating_add(k.len())
                    .saturating_add(v.string_weight())
            }),
        }
    }
}

impl From<&str> for TemplateValue {
    fn from(value: &str) -> Self {
        TemplateValue::Str(value.to_owned())
    }
}

impl From<String> for TemplateValue {
    fn from(value: String) -> Self {
        TemplateValue::Str(value)
    }
}

impl From<i64> for TemplateValue {
    fn from(value: i64) -> Self {
        TemplateValue::Int(value)
    }
}

impl From<TemplateTime> for TemplateValue {
    fn from(value: TemplateTime) -> Self {
        TemplateValue::Time(value)
    }
}

impl<T: Into<TemplateValue>> From<Vec<T>> for TemplateValue {
    fn from(value: Vec<T>) -> Self {
        TemplateValue::List(value.into_iter().map(Into::into).collect())
    }
}

/// An instant, as nanoseconds since the Unix epoch. Templates can read `.Unix`, `.UnixMilli`,
/// `.UnixMicro` and `.UnixNano` (floored like Go's methods); printed directly it renders as
/// RFC 3339 UTC with whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateTime {
    pub unix_nanos: i128,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl TemplateTime {
    pub fn from_unix_nanos(unix_nanos: i128) -> Self {
        TemplateTime { unix_nanos }
    }

    pub fn from_unix_seconds(seconds: i64) -> Self {
        TemplateTime {
            unix_nanos: i128::from(seconds) * NANOS_PER_SECOND,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds dropped, like Go's `time.RFC3339`).
    pub fn to_rfc3339(self) -> String {
        let seconds = self.unix_nanos.div_euclid(NANOS_PER_SECOND);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (
            second_of_day / 3600,
            (second_of_day / 60) % 60,
            second_of_day % 60,
        );
        let year_text = if year < 0 {
            format!("-{:04}", -year)
        } else {
            format!("{year:04}")
        };
        format!("{year_text}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }

    fn field(&self, name: &str) -> Option<i128> {
        let divisor = match name {
            "Unix" => NANOS_PER_SECOND,
            "UnixMilli" => 1_000_000,
            "UnixMicro" => 1_000,
            "UnixNano" => 1,
            _ => return None,
        };
        Some(self.unix_nanos.div_euclid(divisor))
    }
}

impl fmt::Display for TemplateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

/// A parse or render failure, with the 1-based line and column (in characters) it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template parse error at line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("template render error at line {line}, column {column}: {message}")]
    Render {
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

fn parse_error(pos: Pos, message: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        line: pos.line,
        column: pos.column,
        message: message.into(),
    }
}

fn render_error(pos: Pos, message: impl Into<String>) -> TemplateError {
    TemplateError::Render {
        line: pos.line,
        column: pos.column,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
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
    fn describe(&self) -> String {
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
struct Token {
    kind: TokenKind,
    pos: Pos,
    /// Whether whitespace separated this token from the previous one inside an action.
    spaced: bool,
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

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line_starts: Vec<usize>,
    /// The last computed (offset, position), so columns on long lines are counted incrementally.
    last_position: Cell<(usize, Pos)>,
    tokens: Vec<Token>,
    trim_next_text: bool,
}

impl<'s> Lexer<'s> {
    fn new(src: &'s str) -> Self {
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

    fn run(mut self) -> Result<Vec<Token>, TemplateError> {
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

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Text(String, Pos),
    Action(Pipeline),
    Control(Box<Control>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlKind {
    If,
    With,
    Range,
}

impl ControlKind {
    fn keyword(self) -> &'static str {
        match self {
            ControlKind::If => "if",
            ControlKind::With => "with",
            ControlKind::Range => "range",
        }
    }
}

#[derive(Debug, Clone)]
struct Control {
    kind: ControlKind,
    pipe: Pipeline,
    body: Vec<Node>,
    else_body: Vec<Node>,
    pos: Pos,
}

#[derive(Debug, Clone)]
struct Pipeline {
    pos: Pos,
    /// Declared or assigned variables (`$x :=`, `$i, $e :=`, `$x =`).
    decl: Vec<String>,
    assign: bool,
    commands: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    pos: Pos,
    kind: CommandKind,
}

#[derive(Debug, Clone)]
enum CommandKind {
    Call { func: Func, args: Vec<Operand> },
    Value(Operand),
}

#[derive(Debug, Clone)]
struct Operand {
    pos: Pos,
    kind: OperandKind,
}

#[derive(Debug, Clone)]
enum OperandKind {
    Dot,
    /// Fields of dot: `.A.B`.
    Field(Vec<String>),
    Variable {
        name: String,
        fields: Vec<String>,
    },
    Str(String),
    Int(i64),
    Bool(bool),
    Sub {
        pipe: Box<Pipeline>,
        fields: Vec<String>,
    },
}

impl OperandKind {
    fn describe(&self) -> String {
        match self {
            OperandKind::Dot => "\".\"".to_owned(),
            OperandKind::Field(fields) => format!("field .{}", fields.join(".")),
            OperandKind::Variable { name, .. } => format!("variable {name}"),
            OperandKind::Str(s) => format!("string {s:?}"),
            OperandKind::Int(i) => format!("number {i}"),
            OperandKind::Bool(b) => format!("{b}"),
            OperandKind::Sub { .. } => "parenthesized pipeline".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Join,
    Index,
    Slice,
    Printf,
    Print,
    Lower,
    Upper,
    Len,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Not,
    And,
    Or,
}

impl Func {
    fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "join" => Func::Join,
            "index" => Func::Index,
            "slice" => Func::Slice,
            "printf" => Func::Printf,
            "print" => Func::Print,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "len" => Func::Len,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "not" => Func::Not,
            "and" => Func::And,
            "or" => Func::Or,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Join => "join",
            Func::Index => "index",
            Func::Slice => "slice",
            Func::Printf => "printf",
            Func::Print => "print",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Len => "len",
            Func::Eq => "eq",
            Func::Ne => "ne",
            Func::Lt => "lt",
            Func::Le => "le",
            Func::Gt => "gt",
            Func::Ge => "ge",
            Func::Not => "not",
            Func::And => "and",
            Func::Or => "or",
        }
    }

    /// Accepted argument counts (inclusive), counting a piped-in value.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Join => (2, 2),
            Func::Index => (1, usize::MAX),
            Func::Slice => (1, 4),
            Func::Printf => (1, usize::MAX),
            Func::Print => (0, usize::MAX),
            Func::Lower | Func::Upper | Func::Len | Func::Not => (1, 1),
            Func::Eq => (2, usize::MAX),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, 2),
            Func::And | Func::Or => (1, usize::MAX),
        }
    }
}

const UNSUPPORTED_KEYWORDS: &[&str] = &["define", "template", "block", "break", "continue"];

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

enum ListEnd {
    Eof,
    End,
    Else,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DeclMode {
    /// One variable (`{{$x := …}}`, `{{if $x := …}}`).
    Single,
    /// Up to two (`{{range $i, $e := …}}`).
    Range,
    /// None (parenthesised pipelines).
    Forbidden,
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    eof: Token,
    vars: Vec<String>,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.next).unwrap_or(&self.eof)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        self.tokens.get(self.next + ahead).unwrap_or(&self.eof)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn enter(&mut self, pos: Pos) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(parse_error(
                pos,
                format!("template nesting is deeper than {MAX_NESTING_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), TemplateError> {
        let token = self.advance();
        if token.kind == TokenKind::RightDelim {
            Ok(())
        } else {
            Err(parse_error(
                token.pos,
                format!("unexpected {} in {context}", token.kind.describe()),
            ))
        }
    }

    fn parse_list(&mut self, in_control: bool) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let token = self.advance();
            match token.kind {
                TokenKind::Text(text) => nodes.push(Node::Text(text, token.pos)),
                // An unclosed block is reported by `parse_control`, at its keyword.
                TokenKind::Eof => return Ok((nodes, ListEnd::Eof)),
                TokenKind::LeftDelim => {
                    let keyword = self.peek().clone();
                    if let TokenKind::Ident(name) = &keyword.kind {
                        let control = match name.as_str() {
                            "if" => Some(ControlKind::If),
                            "with" => Some(ControlKind::With),
                            "range" => Some(ControlKind::Range),
                            _ => None,
                        };
                        if let Some(kind) = control {
                            self.advance();
                            nodes.push(self.parse_control(kind, keyword.pos)?);
                            continue;
                        }
                        match name.as_str() {
                            "end" => {
                                self.advance();
                                if !in_control {
                                    return Err(parse_error(keyword.pos, "unexpected {{end}}"));
                                }
                                self.expect_right_delim("end")?;
                                return Ok((nodes, ListEnd::End));
                            }
                            "else" => {
                                self.advance();
                                if !in_control {
                                    return Err(parse_error(keyword.pos, "unexpected {{else}}"));
                                }
                                return Ok((nodes, ListEnd::Else));
                            }
                            other if UNSUPPORTED_KEYWORDS.contains(&other) => {
                                return Err(parse_error(
                                    keyword.pos,
                                    format!("{{{{{other}}}}} is not supported"),
                                ));
                            }
                            _ => {}
                        }
                    }
                    let pipe = self.parse_pipeline("command", DeclMode::Single, true)?;
                    nodes.push(Node::Action(pipe));
                }
                other => {
                    return Err(parse_error(
                        token.pos,
                        format!("unexpected {}", other.describe()),
                    ));
                }
            }
        }
    }

    fn parse_control(&mut self, kind: ControlKind, pos: Pos) -> Result<Node, TemplateError> {
        self.enter(pos)?;
        let vars_mark = self.vars.len();
        let decl_mode = if kind == ControlKind::Range {
            DeclMode::Range
        } else {
            DeclMode::Single
        };
        let pipe = self.parse_pipeline(kind.keyword(), decl_mode, true)?;
        let (body, end) = self.parse_list(true)?;
        let else_body = match end {
            ListEnd::End => Vec::new(),
            ListEnd::Eof => return Err(unclosed(kind, pos)),
            ListEnd::Else => {
                let next = self.peek().clone();
                let chained = match &next.kind {
                    TokenKind::Ident(name) if name == "if" => Some(ControlKind::If),
                    TokenKind::Ident(name) if name == "with" => Some(ControlKind::With),
                    _ => None,
                };
                match chained {
                    Some(chained) if chained == kind => {
                        // `{{else if b}}…{{end}}` is `{{else}}{{if b}}…{{end}}{{end}}` sharing one end.
                        self.advance();
                        vec![self.parse_control(chained, next.pos)?]
                    }
                    Some(chained) => {
                        return Err(parse_error(
                            next.pos,
                            format!(
                                "{{{{else {}}}}} is only allowed inside {{{{{}}}}}",
                                chained.keyword(),
                                chained.keyword()
                            ),
                        ));
                    }
                    None => {
                        self.expect_right_delim("else")?;
                        let (else_body, end) = self.parse_list(true)?;
                        if let ListEnd::Eof = end {
                            return Err(unclosed(kind, pos));
                        }
                        if let ListEnd::Else = end {
                            return Err(parse_error(
                                self.peek().pos,
                                format!(
                                    "expected {{{{end}}}}; found a second {{{{else}}}} in {{{{{}}}}}",
                                    kind.keyword()
                                ),
                            ));
                        }
                        else_body
                    }
                }
            }
        };
        self.vars.truncate(vars_mark);
        self.leave();
        Ok(Node::Control(Box::new(Control {
            kind,
            pipe,
            body,
            else_body,
            pos,
        })))
    }

    fn is_end(kind: &TokenKind, in_action: bool) -> bool {
        if in_action {
            *kind == TokenKind::RightDelim
        } else {
            *kind == TokenKind::RightParen
        }
    }

    /// Parses `[decl] command { | command }` and consumes the closing `}}` (or `)`).
    fn parse_pipeline(
        &mut self,
        context: &str,
        decl_mode: DeclMode,
        in_action: bool,
    ) -> Result<Pipeline, TemplateError> {
        let pos = self.peek().pos;
        let (decl, assign) = self.parse_declaration(context, decl_mode)?;
        let mut commands = Vec::new();
        loop {
            commands.push(self.parse_command(context, commands.len())?);
            let token = self.advance();
            match token.kind {
                TokenKind::Pipe => continue,
                ref kind if Self::is_end(kind, in_action) => break,
                other => {
                    return Err(parse_error(
                        token.pos,
                        format!("unexpected {} in {context}", other.describe()),
                    ));
                }
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            pos,
            decl,
            assign,
            commands,
        })
    }

    fn parse_declaration(
        &mut self,
        context: &str,
        decl_mode: DeclMode,
    ) -> Result<(Vec<String>, bool), TemplateError> {
        let TokenKind::Variable(first) = self.peek().kind.clone() else {
            return Ok((Vec::new(), false));
        };
        let follower = self.peek_at(1);
        if !matches!(
            follower.kind,
            TokenKind::Declare | TokenKind::Assign | TokenKind::Comma
        ) {
            return Ok((Vec::new(), false));
        }
        let first_token = self.advance();
        if decl_mode == DeclMode::Forbidden {
            return Err(parse_error(
                first_token.pos,
                format!("variable declarations are not allowed in a {context}"),
            ));
        }
        let mut names = vec![first];
        let mut operator = self.advance();
        if operator.kind == TokenKind::Comma {
            if decl_mode != DeclMode::Range {
                return Err(parse_error(
                    operator.pos,
                    format!("too many declarations in {context}"),
                ));
            }
            let second = self.advance();
            let TokenKind::Variable(second_name) = second.kind else {
                return Err(parse_error(
                    second.pos,
                    format!(
                        "expected a variable after \",\", found {}",
                        second.kind.describe()
                    ),
                ));
            };
            names.push(second_name);
            operator = self.advance();
        }
        let assign = match operator.kind {
            TokenKind::Declare => false,
            TokenKind::Assign => true,
            other => {
                return Err(parse_error(
                    operator.pos,
                    format!("expected \":=\" or \"=\", found {}", other.describe()),
                ));
            }
        };
        for name in &names {
            if name == "$" {
                return Err(parse_error(
                    first_token.pos,
                    "cannot declare or assign \"$\"",
                ));
            }
            if assign && !self.vars.contains(name) {
                return Err(parse_error(
                    first_token.pos,
                    format!("undefined variable {name:?}"),
                ));
            }
        }
        Ok((names, assign))
    }

    /// Whether another operand follows in the current command.
    fn operand_follows(&self) -> Result<bool, TemplateError> {
        let token = self.peek();
        if matches!(
            token.kind,
            TokenKind::Pipe | TokenKind::Eof | TokenKind::RightDelim | TokenKind::RightParen
        ) {
            return Ok(false);
        }
        if !token.spaced {
            return Err(parse_error(
                token.pos,
                format!("unexpected {} in operand", token.kind.describe()),
            ));
        }
        Ok(true)
    }

    fn parse_command(&mut self, context: &str, stage: usize) -> Result<Command, TemplateError> {
        let first = self.peek().clone();
        if matches!(
            first.kind,
            TokenKind::Pipe | TokenKind::RightDelim | TokenKind::RightParen | TokenKind::Eof
        ) {
            let message = if stage == 0 {
                format!("missing value for {context}")
            } else {
                "missing command after \"|\"".to_owned()
            };
            return Err(parse_error(first.pos, message));
        }
        if let TokenKind::Ident(name) = &first.kind {
            if !matches!(name.as_str(), "true" | "false" | "nil") {
                self.advance();
                let Some(func) = Func::lookup(name) else {
                    return Err(parse_error(first.pos, unknown_identifier(name)));
                };
                let mut args = Vec::new();
                while self.operand_follows()? {
                    args.push(self.parse_operand()?);
                }
                let count = args.len() + usize::from(stage > 0);
                let (min, max) = func.arity();
                if count < min || count > max {
                    let wanted = if min == max {
                        format!("{min}")
                    } else if max == usize::MAX {
                        format!("at least {min}")
                    } else {
                        format!("{min} to {max}")
                    };
                    return Err(parse_error(
                        first.pos,
                        format!(
                            "wrong number of arguments for {}: want {wanted}, got {count}",
                            func.name()
                        ),
                    ));
                }
                return Ok(Command {
                    pos: first.pos,
                    kind: CommandKind::Call { func, args },
                });
            }
        }
        let operand = self.parse_operand()?;
        if self.operand_follows()? {
            return Err(parse_error(
                operand.pos,
                format!(
                    "{} is not a function and cannot take arguments",
                    operand.kind.describe()
                ),
            ));
        }
        if stage > 0 {
            return Err(parse_error(
                operand.pos,
                format!(
                    "cannot pipe into {}: only a function can follow \"|\"",
                    operand.kind.describe()
                ),
            ));
        }
        Ok(Command {
            pos: first.pos,
            kind: CommandKind::Value(operand),
        })
    }

    fn parse_operand(&mut self) -> Result<Operand, TemplateError> {
        let token = self.advance();
        let pos = token.pos;
        let mut kind = match token.kind {
            TokenKind::Dot => OperandKind::Dot,
            TokenKind::Field(name) => OperandKind::Field(vec![name]),
            TokenKind::Variable(name) => {
                if name != "$" && !self.vars.contains(&name) {
                    return Err(parse_error(pos, format!("undefined variable {name:?}")));
                }
                OperandKind::Variable {
                    name,
                    fields: Vec::new(),
                }
            }
            TokenKind::Str(s) => OperandKind::Str(s),
            TokenKind::Int(i) => OperandKind::Int(i),
            TokenKind::Ident(name) => match name.as_str() {
                "true" => OperandKind::Bool(true),
                "false" => OperandKind::Bool(false),
                "nil" => return Err(parse_error(pos, "nil is not supported")),
                other if Func::lookup(other).is_some() => {
                    return Err(parse_error(
                        pos,
                        format!(
                            "function {other:?} must start a command; wrap it in parentheses to use its result as an argument"
                        ),
                    ));
                }
                other => return Err(parse_error(pos, unknown_identifier(other))),
            },
            TokenKind::LeftParen => {
                self.enter(pos)?;
                let pipe =
                    self.parse_pipeline("parenthesized pipeline", DeclMode::Forbidden, false)?;
                self.leave();
                OperandKind::Sub {
                    pipe: Box::new(pipe),
                    fields: Vec::new(),
                }
            }
            other => {
                return Err(parse_error(
                    pos,
                    format!("unexpected {} in operand", other.describe()),
                ));
            }
        };
        loop {
            let next = self.peek();
            let TokenKind::Field(name) = &next.kind else {
                break;
            };
            if next.spaced {
                break;
            }
            let name = name.clone();
            let field_pos = next.pos;
            match &mut kind {
                OperandKind::Field(fields)
                | OperandKind::Variable { fields, .. }
                | OperandKind::Sub { fields, .. } => fields.push(name),
                other => {
                    return Err(parse_error(
                        field_pos,
                        format!("unexpected .{name} after {}", other.describe()),
                    ));
                }
            }
            self.advance();
        }
        Ok(Operand { pos, kind })
    }
}

fn unclosed(kind: ControlKind, pos: Pos) -> TemplateError {
    parse_error(
        pos,
        format!(
            "unclosed {{{{{}}}}}: unexpected end of template, missing {{{{end}}}}",
            kind.keyword()
        ),
    )
}

fn unknown_identifier(name: &str) -> String {
    match name {
        "if" | "else" | "end" | "range" | "with" => {
            format!("unexpected keyword {name:?} inside an action")
        }
        other if UNSUPPORTED_KEYWORDS.contains(&other) => format!("{other:?} is not supported"),
        other => format!("function {other:?} not defined"),
    }
}

// ---------------------------------------------------------------------------------------------
// Template
// ---------------------------------------------------------------------------------------------

/// A parsed template, ready to render any number of times (it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `source`, reporting syntax errors, unknown functions, wrong argument counts and
    /// undefined variables.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(parse_error(
                Pos { line: 1, column: 1 },
                format!("template is larger than {MAX_SOURCE_BYTES} bytes"),
            ));
        }
        let tokens = Lexer::new(source).run()?;
        let eof_pos = tokens
            .last()
            .map_or(Pos { line: 1, column: 1 }, |token| token.pos);
        let mut parser = Parser {
            tokens,
            next: 0,
            eof: Token {
                kind: TokenKind::Eof,
                pos: eof_pos,
                spaced: false,
            },
            vars: Vec::new(),
            depth: 0,
        };
        let (nodes, _) = parser.parse_list(false)?;
        Ok(Template { nodes })
    }

    /// Renders with `data` as dot (and `$`).
    pub fn render(&self, data: &TemplateValue) -> Result<String, TemplateError> {
        let limit = BASE_OUTPUT_LIMIT_BYTES.saturating_add(data.string_weight().saturating_mul(2));
        let mut exec = Exec {
            vars: vec![("$".to_owned(), Val::Ref(data))],
            out: String::new(),
            steps: 0,
            limit,
        };
        exec.walk(&self.nodes, &Val::Ref(data))?;
        Ok(exec.out)
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// A value during evaluation: borrowed from the data, computed, or a boolean.
#[derive(Debug, Clone)]
enum Val<'a> {
    Ref(&'a TemplateValue),
    Own(TemplateValue),
    Bool(bool),
}

impl Val<'_> {
    fn value(&self) -> Option<&TemplateValue> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
            Val::Bool(_) => None,
        }
    }

    fn type_name(&self) -> &'static str {
        self.value().map_or("bool", TemplateValue::type_name)
    }

    fn is_true(&self) -> bool {
        match self.value() {
            None => matches!(self, Val::Bool(true)),
            Some(TemplateValue::Str(s)) => !s.is_empty(),
            Some(TemplateValue::Int(i)) => *i != 0,
            Some(TemplateValue::List(items)) => !items.is_empty(),
            Some(TemplateValue::Map(map)) => !map.is_empty(),
            Some(TemplateValue::Time(_)) => true,
        }
    }
}

/// A string builder that refuses to grow past a byte limit.
struct Bounded {
    buf: String,
    limit: usize,
}

struct LimitExceeded;

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded {
            buf: String::new(),
            limit,
        }
    }

    fn push_str(&mut self, s: &str) -> Result<(), LimitExceeded> {
        if self.buf.len().saturating_add(s.len()) > self.limit {
            return Err(LimitExceeded);
        }
        self.buf.push_str(s);
        Ok(())
    }

    fn push_value(&mut self, value: &Val<'_>) -> Result<(), LimitExceeded> {
        match value.value() {
            Some(v) => self.push_template_value(v),
            None => self.push_str(if value.is_true() { "true" } else { "false" }),
        }
    }

    /// Go's `%v` formatting: `[a b]` for lists, `map[k:v]` for maps.
    fn push_template_value(&mut self, value: &TemplateValue) -> Result<(), LimitExceeded> {
        match value {
            TemplateValue::Str(s) => self.push_str(s),
            TemplateValue::Int(i) => self.push_str(&i.to_string()),
            TemplateValue::Time(t) => self.push_str(&t.to_rfc3339()),
            TemplateValue::List(items) => {
                self.push_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push_str(" ")?;
                    }
                    self.push_template_value(item)?;
                }
                self.push_str("]")
            }
            TemplateValue::Map(map) => {
                self.push_str("map[")?;
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        self.push_str(" ")?;
                    }
                    self.push_str(key)?;
                    self.push_str(":")?;
                    self.push_template_value(item)?;
                }
                self.push_str("]")
            }
        }
    }
}

struct Exec<'a> {
    vars: Vec<(String, Val<'a>)>,
    out: String,
    steps: u64,
    limit: usize,
}

impl<'a> Exec<'a> {
    fn tick(&mut self, pos: Pos) -> Result<(), TemplateError> {
        self.steps += 1;
        if self.steps > MAX_EVALUATION_STEPS {
            return Err(render_error(
                pos,
                format!("template exceeded the limit of {MAX_EVALUATION_STEPS} evaluation steps"),
            ));
        }
        Ok(())
    }

    fn limit_error(&self, pos: Pos) -> TemplateError {
        render_error(
            pos,
            format!("template output exceeds the limit of {} bytes", self.limit),
        )
    }

    fn emit(&mut self, text: &str, pos: Pos) -> Result<(), TemplateError> {
        if self.out.len().saturating_add(text.len()) > self.limit {
            return Err(self.limit_error(pos));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn format(&self, value: &Val<'_>, pos: Pos) -> Result<String, TemplateError> {
        let mut buf = Bounded::new(self.limit);
        buf.push_value(value).map_err(|_| self.limit_error(pos))?;
        Ok(buf.buf)
    }

    fn walk(&mut self, nodes: &[Node], dot: &Val<'a>) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(text, pos) => {
                    self.tick(*pos)?;
                    self.emit(text, *pos)?;
                }
                Node::Action(pipe) => {
                    self.tick(pipe.pos)?;
                    let value = self.eval_pipeline(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let text = self.format(&value, pipe.pos)?;
                        self.emit(&text, pipe.pos)?;
                    } else {
                        self.bind(&pipe.decl[0], pipe.assign, value);
                    }
                }
                Node::Control(control) => {
                    self.tick(control.pos)?;
                    let vars_mark = self.vars.len();
                    let result = self.walk_control(control, dot);
                    self.vars.truncate(vars_mark);
                    result?;
                }
            }
        }
        Ok(())
    }

    fn walk_control(&mut self, control: &Control, dot: &Val<'a>) -> Result<(), TemplateError> {
        if control.kind == ControlKind::Range {
            return self.walk_range(control, dot);
        }
        let value = self.eval_pipeline(&control.pipe, dot)?;
        if let Some(name) = control.pipe.decl.first() {
            self.bind(name, control.pipe.assign, value.clone());
        }
        if !value.is_true() {
            return self.walk(&control.else_body, dot);
        }
        if control.kind == ControlKind::With {
            self.walk(&control.body, &value)
        } else {
            self.walk(&control.body, dot)
        }
    }

    fn walk_range(&mut self, control: &Control, dot: &Val<'a>) -> Result<(), TemplateError> {
        let value = self.eval_pipeline(&control.pipe, dot)?;
        let pos = control.pipe.pos;
        let mut iterations = 0usize;
        if let Some(TemplateValue::Int(count)) = value.value() {
            if control.pipe.decl.len() > 1 {
                return Err(render_error(
                    pos,
                    "can't use two variables when ranging over an integer",
                ));
            }
            for i in 0..(*count).max(0) {
                iterations += 1;
                let item = Val::Own(TemplateValue::Int(i));
                self.range_iteration(control, item.clone(), item)?;
            }
            if iterations == 0 {
                self.walk(&control.else_body, dot)?;
            }
            return Ok(());
        }
        match value {
            Val::Ref(TemplateValue::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    iterations += 1;
                    self.range_iteration(control, index_value(i), Val::Ref(item))?;
                }
            }
            Val::Own(TemplateValue::List(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    iterations += 1;
                    self.range_iteration(control, index_value(i), Val::Own(item))?;
                }
            }
            Val::Ref(TemplateValue::Map(map)) => {
                for (key, item) in map {
                    iterations += 1;
                    self.range_iteration(control, Val::Own(key.as_str().into()), Val::Ref(item))?;
                }
            }
            Val::Own(TemplateValue::Map(map)) => {
                for (key, item) in map {
                    iterations += 1;
                    self.range_iteration(control, Val::Own(key.into()), Val::Own(item))?;
                }
            }
            other => {
                return Err(render_error(
                    pos,
                    format!("range can't iterate over a {}", other.type_name()),
                ));
            }
        }
        if iterations == 0 {
            self.walk(&control.else_body, dot)?;
        }
        Ok(())
    }

    fn range_iteration(
        &mut self,
        control: &Control,
        key: Val<'a>,
        item: Val<'a>,
    ) -> Result<(), TemplateError> {
        self.tick(control.pos)?;
        let vars_mark = self.vars.len();
        let assign = control.pipe.assign;
        match control.pipe.decl.as_slice() {
            [] => {}
            [element] => self.bind(element, assign, item.clone()),
            [index, element, ..] => {
                self.bind(index, assign, key);
                self.bind(element, assign, item.clone());
            }
        }
        let result = self.walk(&control.body, &item);
        self.vars.truncate(vars_mark);
        result
    }

    fn bind(&mut self, name: &str, assign: bool, value: Val<'a>) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = value;
                return;
            }
        }
        self.vars.push((name.to_owned(), value));
    }

    fn lookup(&self, name: &str, pos: Pos) -> Result<Val<'a>, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| render_error(pos, format!("undefined variable {name:?}")))
    }

    fn eval_pipeline(&mut self, pipe: &Pipeline, dot: &Val<'a>) -> Result<Val<'a>, TemplateError> {
        let mut value = None;
        for command in &pipe.commands {
            value = Some(self.eval_command(command, dot, value.take())?);
        }
        value.ok_or_else(|| render_error(pipe.pos, "empty pipeline"))
    }

    fn eval_command(
        &mut self,
        command: &Command,
        dot: &Val<'a>,
        piped: Option<Val<'a>>,
    ) -> Result<Val<'a>, TemplateError> {
        self.tick(command.pos)?;
        match &command.kind {
            CommandKind::Value(operand) => self.eval_operand(operand, dot),
            CommandKind::Call { func, args } => self.call(*func, args, piped, dot, command.pos),
        }
    }

    fn eval_operand(&mut self, operand: &Operand, dot: &Val<'a>) -> Result<Val<'a>, TemplateError> {
        let pos = operand.pos;
        match &operand.kind {
            OperandKind::Dot => Ok(dot.clone()),
            OperandKind::Field(fields) => chain(dot.clone(), fields, pos),
            OperandKind::Variable { name, fields } => chain(self.lookup(name, pos)?, fields, pos),
            OperandKind::Str(s) => Ok(Val::Own(TemplateValue::Str(s.clone()))),
            OperandKind::Int(i) => Ok(Val::Own(TemplateValue::Int(*i))),
            OperandKind::Bool(b) => Ok(Val::Bool(*b)),
            OperandKind::Sub { pipe, fields } => {
                let value = self.eval_pipeline(pipe, dot)?;
                chain(value, fields, pos)
            }
        }
    }

    fn call(
        &mut self,
        func: Func,
        args: &[Operand],
        piped: Option<Val<'a>>,
        dot: &Val<'a>,
        pos: Pos,
    ) -> Result<Val<'a>, TemplateError> {
        if matches!(func, Func::And | Func::Or) {
            // Short-circuit: return the first deciding argument, else the last one.
            let mut last = None;
            for arg in args {
                let value = self.eval_operand(arg, dot)?;
                if value.is_true() == (func == Func::Or) {
                    return Ok(value);
                }
                last = Some(value);
            }
            return piped
                .or(last)
                .ok_or_else(|| render_error(pos, format!("{} needs an argument", func.name())));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_operand(arg, dot)?);
        }
        values.extend(piped);
        self.builtin(func, values, pos)
    }

    fn builtin(
        &self,
        func: Func,
        mut args: Vec<Val<'a>>,
        pos: Pos,
    ) -> Result<Val<'a>, TemplateError> {
        let name = func.name();
        match func {
            Func::Join => {
                let list = args.pop();
                let separator = args.pop();
                let (Some(separator), Some(list)) = (separator, list) else {
                    return Err(render_error(pos, "join needs a separator and a list"));
                };
                let Some(TemplateValue::Str(separator)) = separator.value() else {
                    return Err(render_error(
                        pos,
                        format!(
                            "join: separator must be a string, got {}",
                            separator.type_name()
                        ),
                    ));
                };
                let mut buf = Bounded::new(self.limit);
                let written = match list.value() {
                    Some(TemplateValue::List(items)) => {
                        items.iter().enumerate().try_for_each(|(i, item)| {
                            if i > 0 {
                                buf.push_str(separator)?;
                            }
                            buf.push_template_value(item)
                        })
                    }
                    _ => buf.push_value(&list),
                };
                written.map_err(|_| self.limit_error(pos))?;
                Ok(Val::Own(TemplateValue::Str(buf.buf)))
            }
            Func::Index => {
                let mut items = args.into_iter();
                let Some(mut item) = items.next() else {
                    return Err(render_error(pos, "index needs an item to index"));
                };
                for key in items {
                    item = index_one(item, &key, pos)?;
                }
                Ok(item)
            }
            Func::Slice => self.slice(args, pos),
            Func::Printf => self.printf(args, pos),
            Func::Print => {
                let mut buf = Bounded::new(self.limit);
                let mut previous_was_string = true;
                for (i, arg) in args.iter().enumerate() {
                    let is_string = matches!(arg.value(), Some(TemplateValue::Str(_)));
                    if i > 0 && !is_string && !previous_was_string {
                        buf.push_str(" ").map_err(|_| self.limit_error(pos))?;
                    }
                    buf.push_value(arg).map_err(|_| self.limit_error(pos))?;
                    previous_was_string = is_string;
                }
                Ok(Val::Own(TemplateValue::Str(buf.buf)))
            }
            Func::Lower | Func::Upper => {
                let Some(TemplateValue::Str(s)) = args.first().and_then(Val::value) else {
                    let got = args.first().map_or("nothing", Val::type_name);
                    return Err(render_error(
                        pos,
                        format!("{name} expects a string, got {got}"),
                    ));
                };
                let converted = if func == Func::Lower {
                    s.to_lowercase()
                } else {
                    s.to_uppercase()
                };
                if converted.len() > self.limit {
                    return Err(self.limit_error(pos));
                }
                Ok(Val::Own(TemplateValue::Str(converted)))
            }
            Func::Len => {
                let length = match args.first().and_then(Val::value) {
                    Some(TemplateValue::Str(s)) => s.len(),
                    Some(TemplateValue::List(items)) => items.len(),
                    Some(TemplateValue::Map(map)) => map.len(),
                    _ => {
                        let got = args.first().map_or("nothing", Val::type_name);
                        return Err(render_error(pos, format!("len of {got} is not defined")));
                    }
                };
                Ok(index_value(length))
            }
            Func::Not => Ok(Val::Bool(!args.first().is_some_and(Val::is_true))),
            Func::Eq => {
                let mut items = args.iter();
                let Some(first) = items.next() else {
                    return Err(render_error(pos, "eq needs arguments"));
                };
                for other in items {
                    if compare(first, other, true, pos)? == Ordering::Equal {
                        return Ok(Val::Bool(true));
                    }
                }
                Ok(Val::Bool(false))
            }
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => {
                let (Some(a), Some(b)) = (args.first(), args.get(1)) else {
                    return Err(render_error(pos, format!("{name} needs two arguments")));
                };
                let ordering = compare(a, b, func == Func::Ne, pos)?;
                Ok(Val::Bool(match func {
                    Func::Ne => ordering != Ordering::Equal,
                    Func::Lt => ordering == Ordering::Less,
                    Func::Le => ordering != Ordering::Greater,
                    Func::Gt => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                }))
            }
            Func::And | Func::Or => Err(render_error(pos, format!("{name} is evaluated lazily"))),
        }
    }

    fn slice(&self, args: Vec<Val<'a>>, pos: Pos) -> Result<Val<'a>, TemplateError> {
        let mut items = args.into_iter();
        let Some(item) = items.next() else {
            return Err(render_error(pos, "slice needs an item to slice"));
        };
        let mut indexes = Vec::new();
        for index in items {
            match index.value() {
                Some(TemplateValue::Int(i)) if *i >= 0 => {
                    indexes.push(usize::try_from(*i).unwrap_or(usize::MAX));
                }
                _ => {
                    return Err(render_error(
                        pos,
                        format!(
                            "slice index must be a non-negative integer, got {}",
                            describe_val(&index)
                        ),
                    ));
                }
            }
        }
        let length = match item.value() {
            Some(TemplateValue::Str(s)) => s.len(),
            Some(TemplateValue::List(l)) => l.len(),
            _ => {
                return Err(render_error(
                    pos,
                    format!("can't slice item of type {}", item.type_name()),
                ));
            }
        };
        let start = indexes.first().copied().unwrap_or(0);
        let end = indexes.get(1).copied().unwrap_or(length);
        let capacity = indexes.get(2).copied().unwrap_or(length);
        if start > end || end > capacity || capacity > length {
            return Err(render_error(
                pos,
                format!("slice bounds out of range [{start}:{end}] with length {length}"),
            ));
        }
        match item.value() {
            Some(TemplateValue::Str(s)) => {
                if indexes.len() > 2 {
                    return Err(render_error(pos, "cannot 3-index slice a string"));
                }
                match s.get(start..end) {
                    Some(part) => Ok(Val::Own(TemplateValue::Str(part.to_owned()))),
                    None => Err(render_error(
                        pos,
                        format!("slice [{start}:{end}] splits a UTF-8 character"),
                    )),
                }
            }
            Some(TemplateValue::List(l)) => Ok(Val::Own(TemplateValue::List(
                l.get(start..end)
                    .map(<[TemplateValue]>::to_vec)
                    .unwrap_or_default(),
            ))),
            _ => Err(render_error(pos, "can't slice this item")),
        }
    }

    fn printf(&self, args: Vec<Val<'a>>, pos: Pos) -> Result<Val<'a>, TemplateError> {
        let mut items = args.iter();
        let Some(TemplateValue::Str(format)) = items.next().and_then(Val::value) else {
            return Err(render_error(pos, "printf: the format must be a string"));
        };
        let mut buf = Bounded::new(self.limit);
        let mut chars = format.chars();
        let mut literal_start = 0usize;
        let mut offset = 0usize;
        while let Some(c) = chars.next() {
            let here = offset;
            offset += c.len_utf8();
            if c != '%' {
                continue;
            }
            buf.push_str(&format[literal_start..here])
                .map_err(|_| self.limit_error(pos))?;
            let verb = chars.next();
            offset += verb.map_or(0, char::len_utf8);
            literal_start = offset;
            let written = match verb {
                Some('%') => buf.push_str("%"),
                Some(verb @ ('s' | 'd' | 'v')) => {
                    let Some(arg) = items.next() else {
                        return Err(render_error(
                            pos,
                            format!("printf: missing argument for %{verb}"),
                        ));
                    };
                    match (verb, arg.value()) {
                        ('d', Some(TemplateValue::Int(i))) => buf.push_str(&i.to_string()),
                        ('d', _) => {
                            return Err(render_error(
                                pos,
                                format!("printf: %d needs an int, got {}", arg.type_name()),
                            ));
                        }
                        ('s', None | Some(TemplateValue::Int(_))) => {
                            return Err(render_error(
                                pos,
                                format!("printf: %s needs a string, got {}", arg.type_name()),
                            ));
                        }
                        _ => buf.push_value(arg),
                    }
                }
                Some(other) => {
                    return Err(render_error(
                        pos,
                        format!("printf: unsupported verb %{other} (supported: %s, %d, %v, %%)"),
                    ));
                }
                None => return Err(render_error(pos, "printf: format ends with a lone %")),
            };
            written.map_err(|_| self.limit_error(pos))?;
        }
        buf.push_str(&format[literal_start..])
            .map_err(|_| self.limit_error(pos))?;
        let unused = items.count();
        if unused > 0 {
            return Err(render_error(
                pos,
                format!("printf: {unused} unused argument(s)"),
            ));
        }
        Ok(Val::Own(TemplateValue::Str(buf.buf)))
    }
}

fn index_value(i: usize) -> Val<'static> {
    Val::Own(TemplateValue::Int(i64::try_from(i).unwrap_or(i64::MAX)))
}

fn describe_val(value: &Val<'_>) -> String {
    match value.value() {
        Some(TemplateValue::Str(s)) => format!("string {s:?}"),
        Some(TemplateValue::Int(i)) => format!("int {i}"),
        Some(other) => other.type_name().to_owned(),
        None => format!("bool {}", value.is_true()),
    }
}

fn chain<'a>(mut value: Val<'a>, fields: &[String], pos: Pos) -> Result<Val<'a>, TemplateError> {
    for name in fields {
        value = field(value, name, pos)?;
    }
    Ok(value)
}

fn field<'a>(value: Val<'a>, name: &str, pos: Pos) -> Result<Val<'a>, TemplateError> {
    let missing = |map: &BTreeMap<String, TemplateValue>| {
        let known: Vec<&str> = map.keys().map(String::as_str).collect();
        render_error(
            pos,
            format!(
                "can't evaluate field {name}: no such field (available: {})",
                known.join(", ")
            ),
        )
    };
    if let Some(TemplateValue::Time(time)) = value.value() {
        let Some(result) = time.field(name) else {
            return Err(render_error(
                pos,
                format!(
                    "can't evaluate field {name} in type time (supported: Unix, UnixMilli, UnixMicro, UnixNano)"
                ),
            ));
        };
        return i64::try_from(result)
            .map(|v| Val::Own(TemplateValue::Int(v)))
            .map_err(|_| render_error(pos, format!("time .{name} overflows a 64-bit integer")));
    }
    match value {
        Val::Ref(TemplateValue::Map(map)) => {
            map.get(name).map(Val::Ref).ok_or_else(|| missing(map))
        }
        Val::Own(TemplateValue::Map(mut map)) => match map.remove(name) {
            Some(found) => Ok(Val::Own(found)),
            None => Err(missing(&map)),
        },
        other => Err(render_error(
            pos,
            format!("can't evaluate field {name} in type {}", other.type_name()),
        )),
    }
}

fn index_one<'a>(item: Val<'a>, key: &Val<'_>, pos: Pos) -> Result<Val<'a>, TemplateError> {
    let position = |length: usize| -> Result<usize, TemplateError> {
        match key.value() {
            Some(TemplateValue::Int(i)) => usize::try_from(*i)
                .ok()
                .filter(|i| *i < length)
                .ok_or_else(|| render_error(pos, format!("index out of range: {i}"))),
            _ => Err(render_error(
                pos,
                format!("cannot index with {}: need an integer", describe_val(key)),
            )),
        }
    };
    let map_key = || -> Result<&str, TemplateError> {
        match key.value() {
            Some(TemplateValue::Str(s)) => Ok(s.as_str()),
            _ => Err(render_error(
                pos,
                format!(
                    "cannot index a map with {}: need a string",
                    describe_val(key)
                ),
            )),
        }
    };
    let missing_key = |k: &str| render_error(pos, format!("map has no key {k:?}"));
    if let Some(TemplateValue::Str(s)) = item.value() {
        let i = position(s.len())?;
        return Ok(Val::Own(TemplateValue::Int(i64::from(s.as_bytes()[i]))));
    }
    match item {
        Val::Ref(TemplateValue::List(items)) => Ok(Val::Ref(&items[position(items.len())?])),
        Val::Own(TemplateValue::List(mut items)) => {
            let i = position(items.len())?;
            Ok(Val::Own(items.swap_remove(i)))
        }
        Val::Ref(TemplateValue::Map(map)) => {
            let k = map_key()?;
            map.get(k).map(Val::Ref).ok_or_else(|| missing_key(k))
        }
        Val::Own(TemplateValue::Map(mut map)) => {
            let k = map_key()?;
            map.remove(k).map(Val::Own).ok_or_else(|| missing_key(k))
        }
        other => Err(render_error(
            pos,
            format!("can't index item of type {}", other.type_name()),
        )),
    }
}

/// Compares two values. `equality_only` allows bools and times (which have no order).
fn compare(
    a: &Val<'_>,
    b: &Val<'_>,
    equality_only: bool,
    pos: Pos,
) -> Result<Ordering, TemplateError> {
    let ordering = match (a.value(), b.value(), a, b) {
        (Some(TemplateValue::Int(x)), Some(TemplateValue::Int(y)), _, _) => x.cmp(y),
        (Some(TemplateValue::Str(x)), Some(TemplateValue::Str(y)), _, _) => x.cmp(y),
        (Some(TemplateValue::Time(x)), Some(TemplateValue::Time(y)), _, _) if equality_only => {
            x.cmp(y)
        }
        (None, None, Val::Bool(x), Val::Bool(y)) if equality_only => x.cmp(y),
        (Some(TemplateValue::List(_) | TemplateValue::Map(_)), _, _, _)
        | (_, Some(TemplateValue::List(_) | TemplateValue::Map(_)), _, _) => {
            return Err(render_error(
                pos,
                format!("cannot compare {} with {}", a.type_name(), b.type_name()),
            ));
        }
        _ if a.type_name() == b.type_name() => {
            return Err(render_error(
                pos,
                format!("{} values have no order", a.type_name()),
            ));
        }
        _ => {
            return Err(render_error(
                pos,
                format!(
                    "incompatible types for comparison: {} and {}",
                    a.type_name(),
                    b.type_name()
                ),
            ));
        }
    };
    Ok(ordering)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT_SECONDS: i64 = 1_717_230_216;

    fn data() -> TemplateValue {
        let timestamp =
            TemplateTime::from_unix_nanos(i128::from(EVENT_SECONDS) * 1_000_000_000 + 123_456_789);
        TemplateValue::map([
            ("EventID", "evt_123".into()),
            ("Topic", "user.created".into()),
            ("Timestamp", timestamp.into()),
            ("Body", r#"{"id":1}"#.into()),
            ("Signatures", vec!["abc", "def"].into()),
            ("One", vec!["only"].into()),
            ("None", TemplateValue::List(Vec::new())),
            ("Empty", "".into()),
            ("Zero", 0i64.into()),
            ("Three", 3i64.into()),
            ("Nums", vec![1i64, 2, 3].into()),
            ("Unicode", "héllo".into()),
            (
                "Items",
                TemplateValue::List(vec![
                    TemplateValue::map([("Name", "first".into())]),
                    TemplateValue::map([("Name", "second".into())]),
                ]),
            ),
            (
                "Meta",
                TemplateValue::map([("b", "2".into()), ("a", "1".into())]),
            ),
            (
                "Nested",
                TemplateValue::map([("Inner", TemplateValue::map([("Leaf", "deep".into())]))]),
            ),
        ])
    }

    fn render(source: &str) -> String {
        match Template::parse(source) {
            Ok(template) => match template.render(&data()) {
                Ok(out) => out,
                Err(e) => panic!("render of {source:?} failed: {e}"),
            },
            Err(e) => panic!("parse of {source:?} failed: {e}"),
        }
    }

    fn parse_failure(source: &str) -> (usize, usize, String) {
        match Template::parse(source) {
            Err(TemplateError::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("expected a parse error for {source:?}, got {other:?}"),
        }
    }

    fn render_failure(source: &str) -> (usize, usize, String) {
        let template = match Template::parse(source) {
            Ok(t) => t,
            Err(e) => panic!("parse of {source:?} failed: {e}"),
        };
        match template.render(&data()) {
            Err(TemplateError::Render {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("expected a render error for {source:?}, got {other:?}"),
        }
    }

    fn assert_parse_error(source: &str, needle: &str) {
        let (_, _, message) = parse_failure(source);
        assert!(
            message.contains(needle),
            "parse error for {source:?} was {message:?}, expected it to contain {needle:?}"
        );
    }

    fn assert_render_error(source: &str, needle: &str) {
        let (_, _, message) = render_failure(source);
        assert!(
            message.contains(needle),
            "render error for {source:?} was {message:?}, expected it to contain {needle:?}"
        );
    }

    // --- upstream's templates -------------------------------------------------------------

    #[test]
    fn default_content_template_is_the_body() {
        assert_eq!(render("{{.Body}}"), r#"{"id":1}"#);
    }

    #[test]
    fn default_header_template_joins_signatures() {
        assert_eq!(render(r#"v0={{.Signatures | join ","}}"#), "v0=abc,def");
        assert_eq!(render(r#"v0={{.One | join ","}}"#), "v0=only");
        assert_eq!(render(r#"v0={{.None | join ","}}"#), "v0=");
    }

    #[test]
    fn documented_timestamped_templates() {
        assert_eq!(
            render("{{.Timestamp.Unix}}.{{.Body}}"),
            format!(r#"{EVENT_SECONDS}.{{"id":1}}"#)
        );
        assert_eq!(
            render(r#"t={{.Timestamp.Unix}},v0={{.Signatures | join ","}}"#),
            format!("t={EVENT_SECONDS},v0=abc,def")
        );
    }

    #[test]
    fn fields_of_the_event() {
        assert_eq!(render("{{.EventID}} {{.Topic}}"), "evt_123 user.created");
        assert_eq!(render("{{ .EventID }}"), "evt_123");
        assert_eq!(render("{{\n.EventID\n}}"), "evt_123");
        assert_eq!(render("{{.Nested.Inner.Leaf}}"), "deep");
    }

    #[test]
    fn literal_text_and_empty_template() {
        assert_eq!(render(""), "");
        assert_eq!(render("plain text } { }"), "plain text } { }");
    }

    #[test]
    fn parsed_template_renders_repeatedly_with_different_data() {
        let template = Template::parse("{{.A}}").unwrap();
        let first = template
            .render(&TemplateValue::map([("A", "1".into())]))
            .unwrap();
        let second = template
            .render(&TemplateValue::map([("A", "2".into())]))
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("1", "2"));
    }

    #[test]
    fn template_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Template>();
    }

    // --- time -------------------------------------------------------------------------------

    #[test]
    fn time_fields() {
        assert_eq!(render("{{.Timestamp.Unix}}"), "1717230216");
        assert_eq!(render("{{.Timestamp.UnixMilli}}"), "1717230216123");
        assert_eq!(render("{{.Timestamp.UnixMicro}}"), "1717230216123456");
        assert_eq!(render("{{.Timestamp.UnixNano}}"), "1717230216123456789");
    }

    #[test]
    fn time_prints_as_rfc3339_utc() {
        assert_eq!(render("{{.Timestamp}}"), "2024-06-01T08:23:36Z");
        assert_eq!(
            render("{{printf \"%v\" .Timestamp}}"),
            "2024-06-01T08:23:36Z"
        );
    }

    #[test]
    fn rfc3339_known_values() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_717_230_216, "2024-06-01T08:23:36Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-62_135_596_800, "0001-01-01T00:00:00Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(
                TemplateTime::from_unix_seconds(seconds).to_rfc3339(),
                expected
            );
            assert_eq!(
                TemplateTime::from_unix_seconds(seconds).to_string(),
                expected
            );
        }
    }

    #[test]
    fn time_fields_floor_before_the_epoch() {
        let t = TemplateTime::from_unix_nanos(-1);
        let data = TemplateValue::map([("T", t.into())]);
        let template =
            Template::parse("{{.T.Unix}} {{.T.UnixMilli}} {{.T.UnixNano}} {{.T}}").unwrap();
        assert_eq!(
            template.render(&data).unwrap(),
            "-1 -1 -1 1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn time_nanos_overflowing_i64_is_a_render_error() {
        let t = TemplateTime::from_unix_nanos(i128::from(i64::MAX) + 1);
        let data = TemplateValue::map([("T", t.into())]);
        let template = Template::parse("{{.T.UnixNano}}").unwrap();
        let err = template.render(&data).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        assert_eq!(
            Template::parse("{{.T.Unix}}")
                .unwrap()
                .render(&data)
                .unwrap(),
            "9223372036"
        );
    }

    #[test]
    fn unknown_time_field_is_a_render_error() {
        assert_render_error(
            "{{.Timestamp.Year}}",
            "can't evaluate field Year in type time",
        );
    }

    // --- functions --------------------------------------------------------------------------

    #[test]
    fn index_lists_maps_and_strings() {
        assert_eq!(render("{{index .Signatures 0}}"), "abc");
        assert_eq!(render("{{index .Signatures 1}}"), "def");
        assert_eq!(render(r#"{{index .Meta "a"}}"#), "1");
        assert_eq!(render("{{index .Items 1 \"Name\"}}"), "second");
        assert_eq!(render("{{index .EventID 0}}"), "101");
        assert_eq!(render("{{index .Signatures}}"), "[abc def]");
        assert_eq!(render("{{0 | index .Signatures}}"), "abc");
    }

    #[test]
    fn index_errors() {
        assert_render_error("{{index .Signatures 2}}", "index out of range: 2");
        assert_render_error("{{index .Signatures -1}}", "index out of range: -1");
        assert_render_error(r#"{{index .Signatures "0"}}"#, "need an integer");
        assert_render_error(r#"{{index .Meta "zz"}}"#, "map has no key \"zz\"");
        assert_render_error("{{index .Meta 0}}", "need a string");
        assert_render_error("{{index .Three 0}}", "can't index item of type int");
    }

    #[test]
    fn slice_lists_and_strings() {
        assert_eq!(render("{{slice .Signatures 1 2}}"), "[def]");
        assert_eq!(render("{{slice .Signatures 1}}"), "[def]");
        assert_eq!(render("{{slice .Signatures}}"), "[abc def]");
        assert_eq!(render("{{slice .Signatures 0 1 2}}"), "[abc]");
        assert_eq!(render(r#"{{slice .Signatures 0 1 | join ","}}"#), "abc");
        assert_eq!(render("{{slice .EventID 4}}"), "123");
        assert_eq!(render("{{slice .EventID 0 3}}"), "evt");
        assert_eq!(render("{{slice .EventID 2 2}}"), "");
        assert_eq!(render("{{slice .Unicode 0 3}}"), "hé");
        assert_eq!(render("{{range slice .Nums 1}}{{.}};{{end}}"), "2;3;");
    }

    #[test]
    fn slice_errors() {
        assert_render_error(
            "{{slice .Signatures 1 3}}",
            "out of range [1:3] with length 2",
        );
        assert_render_error("{{slice .Signatures 2 1}}", "out of range");
        assert_render_error("{{slice .EventID 1 2 3}}", "cannot 3-index slice a string");
        assert_render_error("{{slice .Unicode 0 2}}", "splits a UTF-8 character");
        assert_render_error("{{slice .Signatures -1}}", "non-negative integer");
        assert_render_error("{{slice .Three 0}}", "can't slice item of type int");
    }

    #[test]
    fn printf_supported_verbs() {
        assert_eq!(
            render(r#"{{printf "%s-%d-%v-%v%%" .EventID .Three .Nums .Body}}"#),
            r#"evt_123-3-[1 2 3]-{"id":1}%"#
        );
        assert_eq!(
            render(r#"{{printf "%s.%s" .EventID .Body}}"#),
            r#"evt_123.{"id":1}"#
        );
        assert_eq!(
            render(r#"{{.Topic | printf "topic=%s"}}"#),
            "topic=user.created"
        );
        assert_eq!(render(r#"{{printf "%v" true}}"#), "true");
        assert_eq!(render(r#"{{printf "héllo %s" "wörld"}}"#), "héllo wörld");
        assert_eq!(render(r#"{{printf "no verbs"}}"#), "no verbs");
    }

    #[test]
    fn printf_errors() {
        assert_render_error(r#"{{printf "%x" 1}}"#, "unsupported verb %x");
        assert_render_error(r#"{{printf "%5d" 1}}"#, "unsupported verb %5");
        assert_render_error(r#"{{printf "%s %s" "a"}}"#, "missing argument for %s");
        assert_render_error(r#"{{printf "%s" "a" "b"}}"#, "1 unused argument");
        assert_render_error(r#"{{printf "%d" "a"}}"#, "%d needs an int, got string");
        assert_render_error(r#"{{printf "%s" 1}}"#, "%s needs a string, got int");
        assert_render_error(r#"{{printf "100%"}}"#, "lone %");
        assert_render_error("{{printf .Three}}", "format must be a string");
    }

    #[test]
    fn lower_and_upper() {
        assert_eq!(render("{{lower \"AbC\"}}"), "abc");
        assert_eq!(render("{{.Topic | upper}}"), "USER.CREATED");
        assert_render_error("{{upper .Three}}", "upper expects a string, got int");
    }

    #[test]
    fn join_formats_items_and_accepts_a_single_string() {
        assert_eq!(render(r#"{{join "-" .Nums}}"#), "1-2-3");
        assert_eq!(render(r#"{{join "-" .EventID}}"#), "evt_123");
        assert_eq!(render(r#"{{join ", " .Signatures}}"#), "abc, def");
        assert_render_error("{{join 1 .Signatures}}", "separator must be a string");
    }

    #[test]
    fn print_len_and_comparisons() {
        assert_eq!(render(r#"{{print "a" "b" 1 2 "c"}}"#), "ab1 2c");
        assert_eq!(render("{{print}}"), "");
        assert_eq!(
            render("{{len .Signatures}} {{len .EventID}} {{len .Meta}}"),
            "2 7 2"
        );
        assert_eq!(render(r#"{{eq .Topic "user.created"}}"#), "true");
        assert_eq!(render(r#"{{eq .Topic "a" "b" "user.created"}}"#), "true");
        assert_eq!(
            render("{{ne .Three 3}} {{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 .Three}}"),
            "false true true false true"
        );
        assert_eq!(render(r#"{{lt "a" "b"}}"#), "true");
        assert_eq!(
            render("{{eq true true}} {{eq .Timestamp .Timestamp}}"),
            "true true"
        );
        assert_render_error(
            r#"{{eq .Three "3"}}"#,
            "incompatible types for comparison: int and string",
        );
        assert_render_error("{{eq .Nums .Nums}}", "cannot compare list with list");
        assert_render_error("{{lt true false}}", "bool values have no order");
        assert_render_error("{{len .Three}}", "len of int is not defined");
    }

    #[test]
    fn boolean_functions_short_circuit() {
        assert_eq!(render("{{not .Empty}} {{not .EventID}}"), "true false");
        assert_eq!(render("{{and .EventID .Topic}}"), "user.created");
        assert_eq!(render("{{and .Empty .Topic}}"), "");
        assert_eq!(render("{{or .Empty .Zero .Topic}}"), "user.created");
        assert_eq!(render("{{or .Empty .Zero}}"), "0");
        // The unknown field is never evaluated.
        assert_eq!(render("{{or .EventID .NoSuchField}}"), "evt_123");
        assert_eq!(render("{{and .Zero .NoSuchField}}"), "0");
        assert_eq!(render("{{.Topic | and .EventID}}"), "user.created");
    }

    #[test]
    fn parenthesized_pipelines_and_chains() {
        assert_eq!(render("{{(index .Items 0).Name}}"), "first");
        assert_eq!(render("{{(index .Items 1).Name | upper}}"), "SECOND");
        assert_eq!(
            render(r#"{{printf "%s/%s" (index .Signatures 1) (lower "X")}}"#),
            "def/x"
        );
        assert_eq!(render("{{(.Nested).Inner.Leaf}}"), "deep");
    }

    // --- control structures ------------------------------------------------------------------

    #[test]
    fn range_over_lists() {
        assert_eq!(render("{{range .Signatures}}[{{.}}]{{end}}"), "[abc][def]");
        assert_eq!(
            render("{{range $i, $s := .Signatures}}{{if $i}},{{end}}v1={{$s}}{{end}}"),
            "v1=abc,v1=def"
        );
        assert_eq!(
            render("{{range $s := .Signatures}}{{$s}};{{end}}"),
            "abc;def;"
        );
        assert_eq!(render("{{range .Items}}{{.Name}} {{end}}"), "first second ");
        assert_eq!(render("{{range .None}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(
            render("{{range .Signatures}}{{$.EventID}}{{end}}"),
            "evt_123evt_123"
        );
    }

    #[test]
    fn range_over_maps_and_integers() {
        assert_eq!(
            render("{{range $k, $v := .Meta}}{{$k}}={{$v}};{{end}}"),
            "a=1;b=2;"
        );
        assert_eq!(render("{{range .Meta}}{{.}}{{end}}"), "12");
        assert_eq!(render("{{range .Three}}{{.}}{{end}}"), "012");
        assert_eq!(render("{{range $i := 2}}<{{$i}}>{{end}}"), "<0><1>");
        assert_eq!(render("{{range 0}}x{{else}}none{{end}}"), "none");
        assert_render_error("{{range $i, $v := 3}}{{end}}", "two variables");
        assert_render_error(
            "{{range .EventID}}{{end}}",
            "range can't iterate over a string",
        );
        assert_render_error(
            "{{range .Timestamp}}{{end}}",
            "range can't iterate over a time",
        );
    }

    #[test]
    fn if_else_chains_and_truthiness() {
        assert_eq!(render("{{if .EventID}}yes{{end}}"), "yes");
        assert_eq!(render("{{if .Empty}}yes{{else}}no{{end}}"), "no");
        assert_eq!(render("{{if .Zero}}yes{{else}}no{{end}}"), "no");
        assert_eq!(render("{{if .None}}yes{{else}}no{{end}}"), "no");
        assert_eq!(render("{{if .Signatures}}yes{{else}}no{{end}}"), "yes");
        assert_eq!(render("{{if .Timestamp}}yes{{end}}"), "yes");
        assert_eq!(
            render("{{if false}}a{{else if .Zero}}b{{else if .Topic}}c{{else}}d{{end}}"),
            "c"
        );
        assert_eq!(
            render("{{if false}}a{{else if false}}b{{else}}d{{end}}"),
            "d"
        );
        assert_eq!(render("{{if eq (len .Signatures) 2}}two{{end}}"), "two");
        assert_eq!(
            render("{{if $s := index .Signatures 0}}{{$s}}{{else}}{{$s}}!{{end}}"),
            "abc"
        );
    }

    #[test]
    fn with_sets_dot() {
        assert_eq!(render("{{with .Nested.Inner}}{{.Leaf}}{{end}}"), "deep");
        assert_eq!(
            render("{{with .Empty}}x{{else}}fallback {{.Topic}}{{end}}"),
            "fallback user.created"
        );
        assert_eq!(
            render("{{with .Empty}}x{{else with .Topic}}{{.}}{{end}}"),
            "user.created"
        );
    }

    #[test]
    fn variables_declare_and_assign() {
        assert_eq!(render("{{$x := .Body}}{{$x}}"), r#"{"id":1}"#);
        assert_eq!(render("{{$x := 1}}"), "");
        assert_eq!(
            render("{{$x := \"a\"}}{{range .Signatures}}{{$x = .}}{{end}}{{$x}}"),
            "def"
        );
        assert_eq!(render("{{$}}").len(), render("{{.}}").len());
        assert_eq!(render("{{$.Nested.Inner.Leaf}}"), "deep");
        assert_eq!(render("{{$n := .Nested}}{{$n.Inner.Leaf}}"), "deep");
    }

    #[test]
    fn printing_composite_values_like_go() {
        assert_eq!(render("{{.Signatures}}"), "[abc def]");
        assert_eq!(render("{{.Meta}}"), "map[a:1 b:2]");
        assert_eq!(render("{{.Nums}}"), "[1 2 3]");
        assert_eq!(
            render("{{true}} {{false}} {{-7}} {{0x1F}}"),
            "true false -7 31"
        );
    }

    // --- lexical details ----------------------------------------------------------------------

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

    // --- errors -----------------------------------------------------------------------------

    #[test]
    fn unknown_field_is_a_render_error_with_position() {
        let (line, column, message) = render_failure("line one\n  {{.Nope}}");
        assert_eq!((line, column), (2, 5));
        assert!(message.contains("can't evaluate field Nope"), "{message}");
        assert!(message.contains("available: Body,"), "{message}");
        assert_render_error(
            "{{.EventID.Foo}}",
            "can't evaluate field Foo in type string",
        );
        assert_render_error("{{.Nested.Missing.Leaf}}", "can't evaluate field Missing");
    }

    #[test]
    fn error_display_names_kind_and_position() {
        let err = Template::parse("ab\ncd{{nope}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "template parse error at line 2, column 5: function \"nope\" not defined"
        );
        let err = Template::parse("{{.X}}")
            .unwrap()
            .render(&data())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("template render error at line 1, column 3: "),
            "{err}"
        );
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

    #[test]
    fn structural_parse_errors() {
        assert_parse_error("{{.Topic", "unclosed action");
        assert_parse_error(
            "{{if .Topic}}x",
            "unclosed {{if}}: unexpected end of template, missing {{end}}",
        );
        assert_parse_error("{{range .A}}x{{else}}y", "unclosed {{range}}");
        assert_parse_error("{{with .A}}x{{else with .B}}y", "unclosed {{with}}");
        assert_parse_error("x{{end}}", "unexpected {{end}}");
        assert_parse_error("x{{else}}", "unexpected {{else}}");
        assert_parse_error("{{if .A}}{{else}}{{else}}{{end}}", "second {{else}}");
        assert_parse_error(
            "{{range .A}}{{else if .B}}{{end}}",
            "{{else if}} is only allowed inside {{if}}",
        );
        assert_parse_error(
            "{{if .A}}{{else with .B}}{{end}}",
            "{{else with}} is only allowed inside {{with}}",
        );
        assert_parse_error("{{define \"x\"}}{{end}}", "not supported");
        assert_parse_error("{{template \"x\"}}", "not supported");
        assert_parse_error("{{}}", "missing value for command");
        assert_parse_error("{{if}}{{end}}", "missing value for if");
        assert_parse_error("{{.A |}}", "missing command after \"|\"");
        assert_parse_error("{{.A )}}", "unexpected \")\" in command");
        assert_parse_error("{{(.A}}", "unexpected \"}}\" in parenthesized pipeline");
        assert_parse_error(
            "{{.A .B}}",
            "field .A is not a function and cannot take arguments",
        );
        assert_parse_error("{{\"x\" .B}}", "not a function");
        assert_parse_error("{{.A | .B}}", "cannot pipe into field .B");
        assert_parse_error("{{.A | \"x\"}}", "cannot pipe into string");
        assert_parse_error("{{.A.B.C\"x\"}}", "unexpected string \"x\" in operand");
        assert_parse_error("{{\"x\".A}}", "unexpected .A after string");
        assert_parse_error("{{nil}}", "nil is not supported");
        assert_parse_error("{{.A ; }}", "unexpected character ';'");
        assert_parse_error("{{.A : }}", "expected \":=\"");
        assert_parse_error("{{{.A}}", "unexpected character '{'");
    }

    #[test]
    fn function_errors_are_parse_errors() {
        assert_parse_error("{{nope .A}}", "function \"nope\" not defined");
        assert_parse_error("{{.A | sha256sum}}", "function \"sha256sum\" not defined");
        assert_parse_error(
            "{{join \",\"}}",
            "wrong number of arguments for join: want 2, got 1",
        );
        assert_parse_error("{{.A | join \",\" .B}}", "want 2, got 3");
        assert_parse_error("{{upper}}", "want 1, got 0");
        assert_parse_error("{{slice .A 1 2 3 4}}", "want 1 to 4, got 5");
        assert_parse_error("{{eq .A}}", "want at least 2, got 1");
        assert_parse_error("{{printf \"%s\" upper}}", "must start a command");
        assert_parse_error("{{end .A}}", "unexpected {{end}}");
        assert_parse_error("{{if .A}}{{end .B}}", "unexpected field .B in end");
        assert_parse_error("{{.A | if}}", "unexpected keyword \"if\"");
    }

    #[test]
    fn variable_errors() {
        assert_parse_error("{{$x}}", "undefined variable \"$x\"");
        assert_parse_error("{{$x = 1}}", "undefined variable \"$x\"");
        assert_parse_error(
            "{{if true}}{{$x := 1}}{{end}}{{$x}}",
            "undefined variable \"$x\"",
        );
        assert_parse_error(
            "{{range $i, $s := .A}}{{end}}{{$s}}",
            "undefined variable \"$s\"",
        );
        assert_parse_error("{{$x := $x}}", "undefined variable \"$x\"");
        assert_parse_error("{{$a, $b := .A}}", "too many declarations in command");
        assert_parse_error("{{(index $x := .A)}}", "undefined variable \"$x\"");
        assert_parse_error("{{($x := .A)}}", "not allowed in a parenthesized pipeline");
        assert_parse_error("{{$ := 1}}", "cannot declare or assign \"$\"");
        assert_parse_error("{{range $i, 3 := .A}}{{end}}", "expected a variable");
    }

    // --- limits -----------------------------------------------------------------------------

    #[test]
    fn nesting_depth_is_bounded() {
        let deep_ifs = format!(
            "{}x{}",
            "{{if true}}".repeat(MAX_NESTING_DEPTH + 1),
            "{{end}}".repeat(MAX_NESTING_DEPTH + 1)
        );
        assert_parse_error(&deep_ifs, "nesting is deeper than");
        let ok_ifs = format!(
            "{}x{}",
            "{{if true}}".repeat(MAX_NESTING_DEPTH),
            "{{end}}".repeat(MAX_NESTING_DEPTH)
        );
        assert_eq!(render(&ok_ifs), "x");
        let deep_parens = format!(
            "{{{{{}.Topic{}}}}}",
            "(".repeat(MAX_NESTING_DEPTH + 1),
            ")".repeat(MAX_NESTING_DEPTH + 1)
        );
        assert_parse_error(&deep_parens, "nesting is deeper than");
        let else_ifs = format!(
            "{{{{if false}}}}{}{{{{end}}}}",
            "{{else if false}}".repeat(MAX_NESTING_DEPTH + 1)
        );
        assert_parse_error(&else_ifs, "nesting is deeper than");
    }

    #[test]
    fn source_size_is_bounded() {
        let big = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert_parse_error(&big, "larger than");
    }

    #[test]
    fn output_size_is_bounded() {
        // 1000^2 iterations of a 10-byte string: 10 MB.
        let source = "{{range 1000}}{{range 1000}}0123456789{{end}}{{end}}";
        assert_render_error(source, "output exceeds the limit");
    }

    #[test]
    fn intermediate_values_are_bounded() {
        let source = "{{$x := \"ab\"}}{{range 64}}{{$x = printf \"%s%s\" $x $x}}{{end}}";
        assert_render_error(source, "exceeds the limit");
        let joined = "{{$x := \"abcdefgh\"}}{{range 40}}{{$x = print $x $x}}{{end}}";
        assert_render_error(joined, "exceeds the limit");
    }

    #[test]
    fn evaluation_steps_are_bounded() {
        let source = "{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}";
        assert_render_error(source, "evaluation steps");
    }

    #[test]
    fn large_bodies_still_render() {
        let body = "x".repeat(3 * BASE_OUTPUT_LIMIT_BYTES);
        let data = TemplateValue::map([
            ("Body", body.clone().into()),
            ("Timestamp", TemplateTime::from_unix_seconds(5).into()),
        ]);
        let template = Template::parse("{{.Timestamp.Unix}}.{{.Body}}").unwrap();
        assert_eq!(template.render(&data).unwrap(), format!("5.{body}"));
        let twice = Template::parse("{{.Body}}{{.Body}}").unwrap();
        assert_eq!(twice.render(&data).unwrap().len(), 2 * body.len());
    }

    #[test]
    fn dot_can_be_any_value() {
        let template = Template::parse("<{{.}}>").unwrap();
        assert_eq!(template.render(&"plain".into()).unwrap(), "<plain>");
        assert_eq!(template.render(&TemplateValue::Int(4)).unwrap(), "<4>");
    }
}
