//! Coercion of JSON objects into `map<string,string>` fields, as upstream's decoder does:
//! strings as-is, booleans as `true`/`false`, numbers as Go's `%v` prints a float64, `null` as
//! the empty string and nested objects or arrays as their compact JSON text.

use serde_json::Value;

use super::StrMap;

/// Renders a JSON number the way Go's `%v` prints the float64 it decodes to.
fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        if u < (1u64 << 53) {
            return u.to_string();
        }
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Go switches to exponent form with a signed, at-least-two-digit exponent.
        let text = format!("{f:e}");
        if let Some((mantissa, exp)) = text.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return text;
    }
    if f.fract() == 0.0 {
        return format!("{f:.0}");
    }
    format!("{f}")
}

/// Coerces one JSON value to the string upstream would store.
pub fn coerce_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Coerces a JSON object to a string map; `None` when the value is not an object.
pub fn coerce_object(value: &Value) -> Option<StrMap> {
    let object = value.as_object()?;
    Some(
        object
            .iter()
            .map(|(k, v)| (k.clone(), coerce_value(v)))
            .collect(),
    )
}

/// Applies an RFC 7396 merge patch to a string map: `null` clears everything, an object sets
/// each key (a `null` value deletes it). Returns `None` when the patch is neither.
pub fn merge_patch(current: &StrMap, patch: &Value) -> Option<StrMap> {
    match patch {
        Value::Null => Some(StrMap::new()),
        Value::Object(entries) => {
            let mut merged = current.clone();
            for (key, value) in entries {
                if value.is_null() {
                    merged.remove(key);
                } else {
                    merged.insert(key.clone(), coerce_value(value));
                }
            }
            Some(merged)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coerces_like_upstream() {
        let map = coerce_object(&json!({
            "s": "x", "t": true, "i": 1, "f": 1.5, "whole": 2.0, "n": null,
            "o": {"a": "b"}, "a": [1, "x"], "big": 1e21, "small": 0.00001
        }))
        .unwrap();
        assert_eq!(map["s"], "x");
        assert_eq!(map["t"], "true");
        assert_eq!(map["i"], "1");
        assert_eq!(map["f"], "1.5");
        assert_eq!(map["whole"], "2");
        assert_eq!(map["n"], "");
        assert_eq!(map["o"], r#"{"a":"b"}"#);
        assert_eq!(map["a"], r#"[1,"x"]"#);
        assert_eq!(map["big"], "1e+21");
        assert_eq!(map["small"], "1e-05");
        assert!(coerce_object(&json!([1])).is_none());
    }

    #[test]
    fn merge_patch_follows_rfc7396() {
        let current: StrMap = [("a".to_string(), "1".to_string()), ("b".into(), "2".into())]
            .into_iter()
            .collect();
        let merged = merge_patch(&current, &json!({"a": null, "c": 3})).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged["b"], "2");
        assert_eq!(merged["c"], "3");
        assert!(merge_patch(&current, &Value::Null).unwrap().is_empty());
        assert_eq!(merge_patch(&current, &json!({})).unwrap(), current);
        assert!(merge_patch(&current, &json!("x")).is_none());
    }
}
