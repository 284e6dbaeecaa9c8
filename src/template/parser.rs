//! The syntax tree and the parser that builds it from tokens: actions, pipelines, commands,
//! operands and the `if`/`with`/`range` blocks. Function names, argument counts and variable
//! scopes are checked here, so a template that parses only fails at render time on the data.

use super::funcs::Func;
use super::lexer::{Token, TokenKind};
use super::{parse_error, Pos, TemplateError, MAX_NESTING_DEPTH};

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String, Pos),
    Action(Pipeline),
    Control(Box<Control>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ControlKind {
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
pub(super) struct Control {
    pub(super) kind: ControlKind,
    pub(super) pipe: Pipeline,
    pub(super) body: Vec<Node>,
    pub(super) else_body: Vec<Node>,
    pub(super) pos: Pos,
}

#[derive(Debug, Clone)]
pub(super) struct Pipeline {
    pub(super) pos: Pos,
    /// Declared or assigned variables (`$x :=`, `$i, $e :=`, `$x =`).
    pub(super) decl: Vec<String>,
    pub(super) assign: bool,
    pub(super) commands: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(super) struct Command {
    pub(super) pos: Pos,
    pub(super) kind: CommandKind,
}

#[derive(Debug, Clone)]
pub(super) enum CommandKind {
    Call { func: Func, args: Vec<Operand> },
    Value(Operand),
}

#[derive(Debug, Clone)]
pub(super) struct Operand {
    pub(super) pos: Pos,
    pub(super) kind: OperandKind,
}

#[derive(Debug, Clone)]
pub(super) enum OperandKind {
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

const UNSUPPORTED_KEYWORDS: &[&str] = &["define", "template", "block", "break", "continue"];

pub(super) enum ListEnd {
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

pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) next: usize,
    pub(super) eof: Token,
    pub(super) vars: Vec<String>,
    pub(super) depth: usize,
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

    pub(super) fn parse_list(
        &mut self,
        in_control: bool,
    ) -> Result<(Vec<Node>, ListEnd), TemplateError> {
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

#[cfg(test)]
mod tests {
    use crate::template::test_support::*;
    use crate::template::*;

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
}
