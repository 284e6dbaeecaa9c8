//! The executor: walks the syntax tree against the data, binding variables, evaluating
//! pipelines and field chains, and printing values the way Go's `%v` does. It enforces the
//! step and output limits; the built-in functions live in `funcs`.

use std::collections::BTreeMap;

use super::parser::{
    Command, CommandKind, Control, ControlKind, Node, Operand, OperandKind, Pipeline,
};
use super::{render_error, Pos, TemplateError, TemplateValue, MAX_EVALUATION_STEPS};

/// A value during evaluation: borrowed from the data, computed, or a boolean.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    Ref(&'a TemplateValue),
    Own(TemplateValue),
    Bool(bool),
}

impl Val<'_> {
    pub(super) fn value(&self) -> Option<&TemplateValue> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
            Val::Bool(_) => None,
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        self.value().map_or("bool", TemplateValue::type_name)
    }

    pub(super) fn is_true(&self) -> bool {
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
pub(super) struct Bounded {
    pub(super) buf: String,
    pub(super) limit: usize,
}

pub(super) struct LimitExceeded;

impl Bounded {
    pub(super) fn new(limit: usize) -> Self {
        Bounded {
            buf: String::new(),
            limit,
        }
    }

    pub(super) fn push_str(&mut self, s: &str) -> Result<(), LimitExceeded> {
        if self.buf.len().saturating_add(s.len()) > self.limit {
            return Err(LimitExceeded);
        }
        self.buf.push_str(s);
        Ok(())
    }

    pub(super) fn push_value(&mut self, value: &Val<'_>) -> Result<(), LimitExceeded> {
        match value.value() {
            Some(v) => self.push_template_value(v),
            None => self.push_str(if value.is_true() { "true" } else { "false" }),
        }
    }

    /// Go's `%v` formatting: `[a b]` for lists, `map[k:v]` for maps.
    pub(super) fn push_template_value(
        &mut self,
        value: &TemplateValue,
    ) -> Result<(), LimitExceeded> {
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

pub(super) struct Exec<'a> {
    pub(super) vars: Vec<(String, Val<'a>)>,
    pub(super) out: String,
    pub(super) steps: u64,
    pub(super) limit: usize,
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

    pub(super) fn limit_error(&self, pos: Pos) -> TemplateError {
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

    pub(super) fn walk(&mut self, nodes: &[Node], dot: &Val<'a>) -> Result<(), TemplateError> {
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

    pub(super) fn eval_operand(
        &mut self,
        operand: &Operand,
        dot: &Val<'a>,
    ) -> Result<Val<'a>, TemplateError> {
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
}

pub(super) fn index_value(i: usize) -> Val<'static> {
    Val::Own(TemplateValue::Int(i64::try_from(i).unwrap_or(i64::MAX)))
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

#[cfg(test)]
mod tests {
    use crate::template::test_support::*;
    use crate::template::*;

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
