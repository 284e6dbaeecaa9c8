//! Validation failures and the metadata-driven field checks shared by every destination type
//! (`required`, `pattern`, numeric `min`/`max`, `minlength`/`maxlength`).

use super::pattern::PatternCheck;
use super::schema::{FieldSchema, TypeMetadata};
use crate::model::StrMap;

/// One failed rule on one field, e.g. (`config.url`, `pattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Violation {
    field: String,
    rule: &'static str,
}

/// Outcome of a check: the violations found, if any.
pub(super) type Checked = Result<(), Vec<Violation>>;

impl Violation {
    pub fn new(field: impl Into<String>, rule: &'static str) -> Violation {
        Violation {
            field: field.into(),
            rule,
        }
    }

    /// A failed check with exactly this one violation.
    pub fn fail(field: impl Into<String>, rule: &'static str) -> Checked {
        Err(vec![Violation::new(field, rule)])
    }

    /// The API message: lower-cased field name plus a suffix chosen by the rule.
    pub fn message(&self) -> String {
        let field = self.field.to_lowercase();
        match self.rule {
            "required" => format!("{field} is required"),
            "forbidden" => format!("{field} is forbidden"),
            rule => format!("{field} failed {rule} validation"),
        }
    }
}

/// Looks a key up in a string map, treating a missing key like an empty value.
pub(super) fn value_of<'a>(map: &'a StrMap, key: &str) -> &'a str {
    map.get(key).map(String::as_str).unwrap_or("")
}

/// Checks every config and credential field declared in the metadata and reports all failures,
/// config fields first, each in declaration order.
pub(super) fn check_fields(
    metadata: &TypeMetadata,
    config: &StrMap,
    credentials: &StrMap,
) -> Checked {
    let config_violations = metadata
        .config_fields
        .iter()
        .filter_map(|field| check_field(field, value_of(config, &field.key), "config"));
    let credential_violations = metadata
        .credential_fields
        .iter()
        .filter_map(|field| check_field(field, value_of(credentials, &field.key), "credentials"));
    let violations: Vec<Violation> = config_violations.chain(credential_violations).collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// The first rule a single value breaks. Empty values only fail `required`.
fn check_field(field: &FieldSchema, value: &str, section: &str) -> Option<Violation> {
    let path = || format!("{section}.{}", field.key);
    if value.is_empty() {
        return field.required.then(|| Violation::new(path(), "required"));
    }

    if field.min.is_some() || field.max.is_some() {
        let Ok(number) = value.parse::<i64>() else {
            return Some(Violation::new(path(), "type"));
        };
        if field.min.is_some_and(|min| number < min) {
            return Some(Violation::new(path(), "min"));
        }
        if field.max.is_some_and(|max| number > max) {
            return Some(Violation::new(path(), "max"));
        }
        return None;
    }

    let length = value.chars().count();
    if field.minlength.is_some_and(|min| length < min) {
        return Some(Violation::new(path(), "minlength"));
    }
    if field.maxlength.is_some_and(|max| length > max) {
        return Some(Violation::new(path(), "maxlength"));
    }
    if let Some(pattern) = &field.pattern {
        let matched = PatternCheck::from_pattern(pattern).is_some_and(|check| check.matches(value));
        if !matched {
            return Some(Violation::new(path(), "pattern"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(fields_json: &str) -> TypeMetadata {
        serde_json::from_str(&format!(
            r#"{{"type":"t","label":"T","description":"d","config_fields":{fields_json},"credential_fields":[
                {{"key":"token","type":"text","label":"Token","description":"t","required":true}}
            ]}}"#
        ))
        .expect("test metadata")
    }

    fn map(pairs: &[(&str, &str)]) -> StrMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn messages(result: Checked) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .iter()
            .map(Violation::message)
            .collect()
    }

    #[test]
    fn message_formats() {
        assert_eq!(
            Violation::new("config.URL", "required").message(),
            "config.url is required"
        );
        assert_eq!(
            Violation::new("credentials.secret", "forbidden").message(),
            "credentials.secret is forbidden"
        );
        assert_eq!(
            Violation::new("config.custom_headers.X-Foo", "pattern").message(),
            "config.custom_headers.x-foo failed pattern validation"
        );
    }

    #[test]
    fn reports_all_required_fields_in_order() {
        let meta = metadata(
            r#"[{"key":"a","type":"text","label":"A","description":"a","required":true},
                {"key":"b","type":"text","label":"B","description":"b","required":false},
                {"key":"c","type":"text","label":"C","description":"c","required":true}]"#,
        );
        assert_eq!(
            messages(check_fields(&meta, &map(&[("a", "")]), &StrMap::new())),
            [
                "config.a is required",
                "config.c is required",
                "credentials.token is required"
            ]
        );
        assert!(check_fields(
            &meta,
            &map(&[("a", "x"), ("c", "y")]),
            &map(&[("token", "t")])
        )
        .is_ok());
    }

    #[test]
    fn numeric_bounds() {
        let meta = metadata(
            r#"[{"key":"n","type":"text","label":"N","description":"n","required":false,"min":1,"max":10}]"#,
        );
        let creds = map(&[("token", "t")]);
        let check = |value: &str| messages(check_fields(&meta, &map(&[("n", value)]), &creds));
        assert_eq!(check("abc"), ["config.n failed type validation"]);
        assert_eq!(check("0"), ["config.n failed min validation"]);
        assert_eq!(check("11"), ["config.n failed max validation"]);
        assert!(check("5").is_empty());
        assert!(check("").is_empty());
    }

    #[test]
    fn length_and_pattern() {
        let meta = metadata(
            r#"[{"key":"s","type":"text","label":"S","description":"s","required":false,
                 "minlength":3,"maxlength":6,"pattern":"^[a-zA-Z0-9_.-]+$"}]"#,
        );
        let creds = map(&[("token", "t")]);
        let check = |value: &str| messages(check_fields(&meta, &map(&[("s", value)]), &creds));
        assert_eq!(check("ab"), ["config.s failed minlength validation"]);
        assert_eq!(check("abcdefg"), ["config.s failed maxlength validation"]);
        assert_eq!(check("ab cd"), ["config.s failed pattern validation"]);
        assert!(check("ab-cd").is_empty());
    }
}
