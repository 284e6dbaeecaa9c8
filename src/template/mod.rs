//! A small, safe subset of Go's `text/template` (plus the Sprig functions upstream's templates use).
//!
//! This module owns parsing and rendering of the operator-configured templates: the webhook
//! signature content and header templates (`DESTINATIONS_WEBHOOK_SIGNATURE_*_TEMPLATE`) and the
//! signing-secret template. It is pure: no I/O, no clock, no randomness — callers supply the data.
//!
//! One job per file: `lexer` turns source into tokens, `parser` builds the syntax tree and checks
//! names and arities, `exec` walks the tree against the data, `funcs` holds the built-in
//! functions, `value` the data types a template sees. This file is the public face: [`Template`]
//! (parse once, render many times), [`TemplateError`] and the limits.
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

mod exec;
mod funcs;
mod lexer;
mod parser;
#[cfg(test)]
mod test_support;
mod value;

pub use value::{TemplateTime, TemplateValue};

use exec::{Exec, Val};
use lexer::{Lexer, Token, TokenKind};
use parser::{Node, Parser};

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

#[cfg(test)]
mod tests {
    use crate::template::test_support::*;
    use crate::template::*;

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
    fn source_size_is_bounded() {
        let big = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert_parse_error(&big, "larger than");
    }
}
