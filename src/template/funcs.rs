//! The built-in functions: Go's `index`, `slice`, `printf`, `print`, `len`, `not`, `and`, `or`
//! and the comparisons, plus Sprig's `join`, `lower` and `upper` — their names and argument
//! counts (checked at parse time) and their evaluation.

use std::cmp::Ordering;

use super::exec::{index_value, Bounded, Exec, Val};
use super::parser::Operand;
use super::{render_error, Pos, TemplateError, TemplateValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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
    pub(super) fn lookup(name: &str) -> Option<Func> {
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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn arity(self) -> (usize, usize) {
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

impl<'a> Exec<'a> {
    pub(super) fn call(
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

fn describe_val(value: &Val<'_>) -> String {
    match value.value() {
        Some(TemplateValue::Str(s)) => format!("string {s:?}"),
        Some(TemplateValue::Int(i)) => format!("int {i}"),
        Some(other) => other.type_name().to_owned(),
        None => format!("bool {}", value.is_true()),
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
    use crate::template::test_support::*;

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
}
