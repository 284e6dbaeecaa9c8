//! Shared fixtures for the template tests: a sample event as data and helpers that render or
//! expect a parse or render error.

use super::*;

pub(super) const EVENT_SECONDS: i64 = 1_717_230_216;

pub(super) fn data() -> TemplateValue {
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

pub(super) fn render(source: &str) -> String {
    match Template::parse(source) {
        Ok(template) => match template.render(&data()) {
            Ok(out) => out,
            Err(e) => panic!("render of {source:?} failed: {e}"),
        },
        Err(e) => panic!("parse of {source:?} failed: {e}"),
    }
}

pub(super) fn parse_failure(source: &str) -> (usize, usize, String) {
    match Template::parse(source) {
        Err(TemplateError::Parse {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a parse error for {source:?}, got {other:?}"),
    }
}

pub(super) fn render_failure(source: &str) -> (usize, usize, String) {
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

pub(super) fn assert_parse_error(source: &str, needle: &str) {
    let (_, _, message) = parse_failure(source);
    assert!(
        message.contains(needle),
        "parse error for {source:?} was {message:?}, expected it to contain {needle:?}"
    );
}

pub(super) fn assert_render_error(source: &str, needle: &str) {
    let (_, _, message) = render_failure(source);
    assert!(
        message.contains(needle),
        "render error for {source:?} was {message:?}, expected it to contain {needle:?}"
    );
}
