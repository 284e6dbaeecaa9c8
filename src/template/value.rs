//! The values a template sees: [`TemplateValue`] (strings, integers, lists, maps, times) and
//! [`TemplateTime`], an instant with Go's `Unix*` fields that prints as RFC 3339.

use std::collections::BTreeMap;
use std::fmt;

use crate::time::Timestamp;

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

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            TemplateValue::Str(_) => "string",
            TemplateValue::Int(_) => "int",
            TemplateValue::List(_) => "list",
            TemplateValue::Map(_) => "map",
            TemplateValue::Time(_) => "time",
        }
    }

    /// Total bytes of string content (keys included) — used to size the output budget.
    pub(super) fn string_weight(&self) -> usize {
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

/// An instant. Templates can read `.Unix`, `.UnixMilli`, `.UnixMicro` and `.UnixNano` (floored
/// like Go's methods); printed directly it renders as RFC 3339 UTC with whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateTime(Timestamp);

impl TemplateTime {
    pub fn from_unix_nanos(unix_nanos: i128) -> Self {
        TemplateTime(Timestamp { unix_nanos })
    }

    pub fn from_unix_seconds(seconds: i64) -> Self {
        TemplateTime(Timestamp::from_unix_seconds(seconds))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds dropped, like Go's `time.RFC3339`).
    pub fn to_rfc3339(self) -> String {
        self.0.format_rfc3339()
    }

    pub(super) fn field(&self, name: &str) -> Option<i128> {
        let divisor = match name {
            "Unix" => 1_000_000_000,
            "UnixMilli" => 1_000_000,
            "UnixMicro" => 1_000,
            "UnixNano" => 1,
            _ => return None,
        };
        Some(self.0.unix_nanos.div_euclid(divisor))
    }
}

impl From<Timestamp> for TemplateTime {
    fn from(timestamp: Timestamp) -> Self {
        TemplateTime(timestamp)
    }
}

impl fmt::Display for TemplateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::*;
    use crate::template::*;

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
}
