//! Destination filter language (upstream-behaviour §3.5, `simplejsonmatch`).
//!
//! This module owns deciding whether a destination's `filter` (a JSON schema in
//! the simple-json-match syntax) matches an event's filter input document
//! `{"id","topic","time","metadata","data"}`. It is pure: no I/O, no allocation
//! beyond small work lists, and recursion is bounded by [`MAX_DEPTH`].
//!
//! Semantics, by schema kind (`input` is the value at the current level, which
//! may be *missing* when an object key is absent):
//!
//! * **Primitive schema** (string, number, bool, null): a primitive input must
//!   be equal (numbers compared as `f64`, no cross-type equality); an array
//!   input matches when any element matches; objects and missing values never
//!   match.
//! * **Array schema**: the input must be an array and every schema element must
//!   be matched by at least one input element.
//! * **Object schema**: every key must pass (implicit AND). Keys are field
//!   names, comparison operators (`$eq`, `$neq`, `$gt`, `$gte`, `$lt`, `$lte`,
//!   `$in`, `$nin`, `$startsWith`, `$endsWith`, `$exist`) or logical operators
//!   (`$or`, `$and`, `$not`). Any other `$`-key (e.g. `$ref`, `$regex`) makes
//!   the whole filter not match (not even an enclosing `$not` inverts that).
//!   * Field keys need an object input; an absent field is *missing*, which
//!     only a sub-schema such as `{"$exist": false}` accepts.
//!   * Against an array input, comparison operators apply to the array itself;
//!     the remaining keys (all of them when there is no comparison operator)
//!     must be matched, as one schema, by at least one element.
//!   * `$or` / `$and` take an array of sub-schemas evaluated against the same
//!     input (any / all). `$not` inverts its sub-schema and is only evaluated
//!     where the input is an object; elsewhere (e.g. a field-level `$not` on a
//!     primitive) it does not match, as upstream does.
//!   * An empty object schema matches an object input only.
//! * Type mismatches and operator type errors never match — `$neq` and `$nin`
//!   included.
//!
//! The top-level entry point [`matches`] treats an empty (or `null`) filter as
//! "match everything".

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Maximum schema/array nesting evaluated; deeper filters never match.
pub const MAX_DEPTH: usize = 64;

/// true when `filter` (a JSON object; an empty object = match all) matches
/// `input` (the document {"id","topic","time","metadata","data"}).
///
/// A `null` filter is treated like an absent one (match all). A filter nested
/// deeper than [`MAX_DEPTH`] never matches.
pub fn matches(filter: &Value, input: &Value) -> bool {
    match filter {
        Value::Null => true,
        Value::Object(map) if map.is_empty() => true,
        _ => check_schema(filter, 0).is_ok() && match_schema(Some(input), filter, 0) == Ok(true),
    }
}

/// Reject, before evaluating anything, a filter that uses an unknown
/// `$`-operator or nests deeper than [`MAX_DEPTH`], so the outcome does not
/// depend on evaluation order (`$or` short-circuiting) or on the input.
/// Comparison operator arguments are data, not schema, and are not inspected.
fn check_schema(schema: &Value, depth: usize) -> Result<(), Abort> {
    if depth > MAX_DEPTH {
        return Err(Abort::TooDeep);
    }
    match schema {
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_schema(item, depth + 1)),
        Value::Object(map) => {
            for (key, value) in map {
                match key_kind(key) {
                    KeyKind::UnknownOperator => return Err(Abort::UnknownOperator),
                    KeyKind::Comparison => {}
                    KeyKind::Field => check_schema(value, depth + 1)?,
                    KeyKind::Logical => match value {
                        Value::Array(conditions) if key != "$not" => conditions
                            .iter()
                            .try_for_each(|condition| check_schema(condition, depth + 1))?,
                        _ => check_schema(value, depth + 1)?,
                    },
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Evaluation was abandoned: the whole filter is then a non-match, never
/// inverted by an enclosing `$not`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    /// Nesting exceeded [`MAX_DEPTH`].
    TooDeep,
    /// The schema uses a `$`-key that is not a supported operator.
    UnknownOperator,
}

type Outcome = Result<bool, Abort>;

/// Which keys of an object schema take part in an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySelection {
    All,
    /// Everything except comparison operators (used for array elements once
    /// the comparison operators were applied to the array itself).
    NonComparison,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Comparison,
    Logical,
    Field,
    UnknownOperator,
}

const COMPARISON_OPERATORS: [&str; 11] = [
    "$eq",
    "$neq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$startsWith",
    "$endsWith",
    "$exist",
];

const LOGICAL_OPERATORS: [&str; 3] = ["$or", "$and", "$not"];

fn key_kind(key: &str) -> KeyKind {
    if !key.starts_with('$') {
        KeyKind::Field
    } else if COMPARISON_OPERATORS.contains(&key) {
        KeyKind::Comparison
    } else if LOGICAL_OPERATORS.contains(&key) {
        KeyKind::Logical
    } else {
        KeyKind::UnknownOperator
    }
}

fn is_primitive(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// Match `schema` against `input` (`None` = the key is absent).
fn match_schema(input: Option<&Value>, schema: &Value, depth: usize) -> Outcome {
    if depth > MAX_DEPTH {
        return Err(Abort::TooDeep);
    }
    match schema {
        Value::Object(map) => match_object_schema(input, map, KeySelection::All, depth),
        Value::Array(schema_items) => {
            let Some(Value::Array(elements)) = input else {
                return Ok(false);
            };
            for schema_item in schema_items {
                if !any_element_matches(elements, schema_item, depth)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => match input {
            Some(Value::Array(elements)) => any_element_matches(elements, schema, depth),
            Some(value) => Ok(primitive_equal(value, schema)),
            None => Ok(false),
        },
    }
}

fn any_element_matches(elements: &[Value], schema: &Value, depth: usize) -> Outcome {
    for element in elements {
        if match_schema(Some(element), schema, depth + 1)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn match_object_schema(
    input: Option<&Value>,
    schema: &Map<String, Value>,
    selection: KeySelection,
    depth: usize,
) -> Outcome {
    if depth > MAX_DEPTH {
        return Err(Abort::TooDeep);
    }
    let mut has_comparison = false;
    let mut has_other = false;
    for key in schema.keys() {
        match key_kind(key) {
            KeyKind::UnknownOperator => return Err(Abort::UnknownOperator),
            KeyKind::Comparison => has_comparison |= selection == KeySelection::All,
            KeyKind::Logical | KeyKind::Field => has_other = true,
        }
    }

    if let Some(Value::Array(elements)) = input {
        if has_comparison {
            // Comparison operators apply to the array itself...
            for (key, compare) in schema {
                if key_kind(key) == KeyKind::Comparison && !apply_operator(key, input, compare) {
                    return Ok(false);
                }
            }
            if !has_other {
                return Ok(true);
            }
            // ...and the rest of the schema to any element.
            return any_element_matches_object(
                elements,
                schema,
                KeySelection::NonComparison,
                depth,
            );
        }
        return any_element_matches_object(elements, schema, selection, depth);
    }

    if !has_comparison && !has_other {
        // An empty schema only accepts an object.
        return Ok(matches!(input, Some(Value::Object(_))));
    }
    for (key, value) in schema {
        let kind = key_kind(key);
        if kind == KeyKind::Comparison && selection == KeySelection::NonComparison {
            continue;
        }
        if !match_entry(input, key, kind, value, depth)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any_element_matches_object(
    elements: &[Value],
    schema: &Map<String, Value>,
    selection: KeySelection,
    depth: usize,
) -> Outcome {
    for element in elements {
        if match_object_schema(Some(element), schema, selection, depth + 1)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Evaluate one key of an object schema against a non-array (or missing) input.
fn match_entry(
    input: Option<&Value>,
    key: &str,
    kind: KeyKind,
    value: &Value,
    depth: usize,
) -> Outcome {
    match kind {
        KeyKind::Comparison => Ok(apply_operator(key, input, value)),
        KeyKind::Logical => match_logical(input, key, value, depth),
        KeyKind::Field => match input {
            Some(Value::Object(object)) => match_schema(object.get(key), value, depth + 1),
            _ => Ok(false),
        },
        KeyKind::UnknownOperator => Err(Abort::UnknownOperator),
    }
}

fn match_logical(input: Option<&Value>, operator: &str, value: &Value, depth: usize) -> Outcome {
    match operator {
        "$or" => {
            let Value::Array(conditions) = value else {
                return Ok(false);
            };
            for condition in conditions {
                if match_schema(input, condition, depth + 1)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        "$and" => {
            let Value::Array(conditions) = value else {
                return Ok(false);
            };
            for condition in conditions {
                if !match_schema(input, condition, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        "$not" => match input {
            Some(Value::Object(_)) => Ok(!match_schema(input, value, depth + 1)?),
            _ => Ok(false),
        },
        _ => Ok(false),
    }
}

/// Apply a comparison operator. `input` is `None` when the key is absent: only
/// `$exist` can then match.
fn apply_operator(operator: &str, input: Option<&Value>, compare: &Value) -> bool {
    if operator == "$exist" {
        return match compare {
            Value::Bool(must_exist) => *must_exist == input.is_some(),
            _ => false,
        };
    }
    let Some(value) = input else {
        return false;
    };
    match operator {
        "$eq" => values_equal(value, compare),
        "$neq" => !values_equal(value, compare),
        "$gt" => order(value, compare).is_some_and(Ordering::is_gt),
        "$gte" => order(value, compare).is_some_and(Ordering::is_ge),
        "$lt" => order(value, compare).is_some_and(Ordering::is_lt),
        "$lte" => order(value, compare).is_some_and(Ordering::is_le),
        "$in" => contains(value, compare).unwrap_or(false),
        "$nin" => contains(value, compare).is_some_and(|found| !found),
        "$startsWith" => affix_matches(value, compare, |text, affix| text.starts_with(affix)),
        "$endsWith" => affix_matches(value, compare, |text, affix| text.ends_with(affix)),
        _ => false,
    }
}

fn numbers_equal(left: &serde_json::Number, right: &serde_json::Number) -> bool {
    match (left.as_f64(), right.as_f64()) {
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

/// Equality of two primitives (numbers as `f64`); false when either side is an
/// array/object or the types differ.
fn primitive_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(left), Value::Bool(right)) => left == right,
        (Value::Number(left), Value::Number(right)) => numbers_equal(left, right),
        (Value::String(left), Value::String(right)) => left == right,
        _ => false,
    }
}

/// Deep equality (object key order ignored, numbers as `f64`). Iterative, so
/// arbitrarily nested values cannot exhaust the stack.
fn values_equal(left: &Value, right: &Value) -> bool {
    let mut pending = vec![(left, right)];
    while let Some((left, right)) = pending.pop() {
        match (left, right) {
            (Value::Array(left), Value::Array(right)) => {
                if left.len() != right.len() {
                    return false;
                }
                pending.extend(left.iter().zip(right.iter()));
            }
            (Value::Object(left), Value::Object(right)) => {
                if left.len() != right.len() {
                    return false;
                }
                for (key, left_value) in left {
                    match right.get(key) {
                        Some(right_value) => pending.push((left_value, right_value)),
                        None => return false,
                    }
                }
            }
            _ => {
                if !primitive_equal(left, right) {
                    return false;
                }
            }
        }
    }
    true
}

/// Ordering for `$gt`/`$gte`/`$lt`/`$lte`: both strings (lexicographic, by
/// bytes) or both numbers; anything else is a type mismatch (`None`).
fn order(value: &Value, compare: &Value) -> Option<Ordering> {
    match (value, compare) {
        (Value::String(value), Value::String(compare)) => Some(value.as_str().cmp(compare)),
        (Value::Number(value), Value::Number(compare)) => {
            value.as_f64()?.partial_cmp(&compare.as_f64()?)
        }
        _ => None,
    }
}

/// `$in` membership; `None` is a type error (so `$nin` fails too).
///
/// * compare is an array: the (primitive) input must equal one of its elements;
/// * input is a string: compare must be a string contained in it;
/// * input is an array: one of its elements must equal the (primitive) compare.
fn contains(value: &Value, compare: &Value) -> Option<bool> {
    if let Value::Array(candidates) = compare {
        if !is_primitive(value) {
            return None;
        }
        return Some(
            candidates
                .iter()
                .any(|candidate| primitive_equal(value, candidate)),
        );
    }
    match value {
        Value::String(text) => match compare {
            Value::String(needle) => Some(text.contains(needle.as_str())),
            _ => None,
        },
        Value::Array(elements) => Some(
            elements
                .iter()
                .any(|element| primitive_equal(element, compare)),
        ),
        _ => None,
    }
}

/// `$startsWith` / `$endsWith`: the input must be a string; compare is a
/// string or an array of strings (any may match). Any non-string is a type
/// error, i.e. no match.
fn affix_matches(value: &Value, compare: &Value, test: fn(&str, &str) -> bool) -> bool {
    let Value::String(text) = value else {
        return false;
    };
    match compare {
        Value::String(affix) => test(text, affix),
        Value::Array(affixes) => {
            let mut any = false;
            for affix in affixes {
                let Value::String(affix) = affix else {
                    return false;
                };
                any |= test(text, affix);
            }
            any
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The standard event document used by most tests.
    fn event() -> Value {
        json!({
            "id": "evt_123",
            "topic": "user.created",
            "time": "2024-05-01T10:00:00+02:00",
            "metadata": {"source": "api", "region": "eu-west-1"},
            "data": {
                "type": "order",
                "status": "paid",
                "amount": 42,
                "price": 19.5,
                "active": true,
                "deleted": false,
                "note": null,
                "tags": ["gift", "vip", "eu"],
                "counts": [1, 2, 3],
                "items": [
                    {"sku": "A-1", "qty": 1, "inventory": 9},
                    {"sku": "B-2", "qty": 5, "inventory": 11}
                ],
                "customer": {"name": "Ada", "address": {"city": "London", "zip": "N1"}},
                "empty_list": [],
                "empty_obj": {}
            }
        })
    }

    fn check(filter: Value) -> bool {
        matches(&filter, &event())
    }

    fn data(schema: Value) -> bool {
        check(json!({ "data": schema }))
    }

    /// Raw schema evaluation (no top-level "empty = match all" shortcut).
    fn raw(input: Value, schema: Value) -> bool {
        match_schema(Some(&input), &schema, 0).unwrap_or(false)
    }

    // ---- top level -------------------------------------------------------

    #[test]
    fn empty_filter_matches_everything() {
        assert!(check(json!({})));
        assert!(matches(&json!({}), &json!(1)));
        assert!(matches(&json!({}), &json!({})));
    }

    #[test]
    fn null_filter_matches_everything() {
        assert!(check(Value::Null));
    }

    #[test]
    fn top_level_fields() {
        assert!(check(json!({"topic": "user.created"})));
        assert!(!check(json!({"topic": "user.deleted"})));
        assert!(check(json!({"id": "evt_123", "topic": "user.created"})));
        assert!(check(json!({"time": {"$startsWith": "2024-05-01"}})));
        assert!(check(json!({"metadata": {"source": "api"}})));
        assert!(!check(json!({"metadata": {"source": "queue"}})));
    }

    #[test]
    fn non_object_filter_at_top_level() {
        assert!(!check(json!("user.created")));
        assert!(!check(json!(true)));
        assert!(!check(json!([{"topic": "user.created"}])));
    }

    // ---- implicit AND, missing keys ----------------------------------------

    #[test]
    fn implicit_and_of_keys() {
        assert!(data(json!({"type": "order", "status": "paid"})));
        assert!(!data(json!({"type": "order", "status": "refunded"})));
        assert!(!data(json!({"type": "invoice", "status": "paid"})));
    }

    #[test]
    fn missing_key_fails() {
        assert!(!data(json!({"nope": "x"})));
        assert!(!data(json!({"nope": null})));
        assert!(!data(json!({"nope": {}})));
        assert!(!data(json!({"nope": [1]})));
        assert!(!check(json!({"absent": {"$neq": "x"}})));
        assert!(!check(json!({"absent": {"$nin": ["x"]}})));
    }

    #[test]
    fn missing_key_with_exist_false_matches() {
        assert!(data(json!({"nope": {"$exist": false}})));
        assert!(data(json!({"customer": {"phone": {"$exist": false}}})));
        // Operators that need a value still fail on a missing key.
        assert!(!data(json!({"nope": {"$exist": false, "$eq": 1}})));
        // $or can offer "absent" as an alternative.
        assert!(data(json!({"nope": {"$or": [{"$exist": false}, "x"]}})));
    }

    #[test]
    fn missing_parent_fails_even_with_exist_false_below() {
        assert!(!data(json!({"nope": {"child": {"$exist": false}}})));
    }

    // ---- primitives ----------------------------------------------------------

    #[test]
    fn primitive_equality() {
        assert!(data(json!({"status": "paid"})));
        assert!(data(json!({"amount": 42})));
        assert!(data(json!({"price": 19.5})));
        assert!(data(json!({"active": true})));
        assert!(data(json!({"deleted": false})));
        assert!(data(json!({"note": null})));
        assert!(!data(json!({"active": false})));
        assert!(!data(json!({"price": 19.4})));
    }

    #[test]
    fn numbers_compare_as_float() {
        assert!(data(json!({"amount": 42.0})));
        assert!(raw(json!(-3), json!(-3.0)));
        assert!(raw(json!(u64::MAX), json!(u64::MAX as f64)));
    }

    #[test]
    fn primitive_type_mismatch() {
        assert!(!data(json!({"amount": "42"})));
        assert!(!data(json!({"active": 1})));
        assert!(!data(json!({"note": false})));
        assert!(!data(json!({"status": null})));
        assert!(!raw(json!(0), json!(false)));
        assert!(!raw(json!(""), json!(null)));
    }

    #[test]
    fn primitive_schema_against_object_fails() {
        assert!(!data(json!({"customer": "Ada"})));
        assert!(!raw(json!({"test": true}), json!(true)));
    }

    #[test]
    fn primitive_roots() {
        assert!(raw(json!("created"), json!("created")));
        assert!(!raw(json!(1), json!(2)));
        assert!(raw(json!(10), json!({"$gte": 5})));
        // An empty object schema does not accept a primitive.
        assert!(!raw(json!(1), json!({})));
    }

    // ---- arrays ------------------------------------------------------------------

    #[test]
    fn primitive_schema_vs_array_input_any_element() {
        assert!(data(json!({"tags": "vip"})));
        assert!(!data(json!({"tags": "nope"})));
        assert!(data(json!({"counts": 3})));
        assert!(!data(json!({"counts": 4})));
        assert!(!data(json!({"empty_list": "x"})));
        assert!(raw(json!([[1, 2], [3]]), json!(3)));
    }

    #[test]
    fn array_schema_vs_array_input_every_element_found() {
        assert!(data(json!({"tags": ["gift", "vip"]})));
        assert!(data(json!({"tags": ["eu", "gift"]})));
        assert!(!data(json!({"tags": ["gift", "whatever"]})));
        assert!(data(json!({"tags": []})));
        assert!(raw(json!([1, 2, 3]), json!([{"$eq": 3}])));
        assert!(!raw(json!([1, 2, 3]), json!([{"$eq": 4}])));
        assert!(data(json!({"items": [{"sku": "A-1"}, {"qty": 5}]})));
        assert!(!data(json!({"items": [{"sku": "A-1", "qty": 5}]})));
    }

    #[test]
    fn array_schema_vs_non_array_input_fails() {
        assert!(!data(json!({"status": ["paid"]})));
        assert!(!data(json!({"customer": ["Ada"]})));
        assert!(!data(json!({"nope": []})));
    }

    #[test]
    fn object_schema_vs_array_any_element_matches() {
        assert!(data(json!({"items": {"sku": "B-2"}})));
        assert!(!data(json!({"items": {"sku": "C-3"}})));
        // The whole schema must be matched by one element.
        assert!(data(json!({"items": {"sku": "B-2", "qty": 5}})));
        assert!(!data(json!({"items": {"sku": "A-1", "qty": 5}})));
        assert!(data(json!({"items": {"inventory": {"$lte": 10}}})));
        assert!(!data(json!({"items": {"inventory": {"$gt": 11}}})));
        assert!(!data(json!({"empty_list": {"sku": "A-1"}})));
    }

    #[test]
    fn object_schema_operators_apply_to_array_itself() {
        assert!(!raw(json!([1, 2, 3]), json!({"$eq": 3})));
        assert!(data(json!({"counts": {"$eq": [1, 2, 3]}})));
        assert!(!data(json!({"counts": {"$eq": [1, 2]}})));
        assert!(data(json!({"tags": {"$in": "vip"}})));
        assert!(!data(json!({"tags": {"$nin": "vip"}})));
        assert!(data(json!({"tags": {"$exist": true}})));
        // $gt on an array is a type mismatch.
        assert!(!data(json!({"counts": {"$gt": 0}})));
    }

    #[test]
    fn array_operators_plus_remaining_keys() {
        // Operators on the array, the field keys on some element.
        assert!(data(json!({"items": {"$exist": true, "sku": "B-2"}})));
        assert!(!data(json!({"items": {"$exist": true, "sku": "C-3"}})));
        assert!(!data(json!({"items": {"$exist": false, "sku": "B-2"}})));
        assert!(data(json!({"tags": {"$exist": true, "$or": ["x", "eu"]}})));
        assert!(!data(json!({"tags": {"$exist": true, "$or": ["x", "y"]}})));
    }

    #[test]
    fn empty_object_schema() {
        assert!(data(json!({"empty_obj": {}})));
        assert!(data(json!({"customer": {}})));
        assert!(!data(json!({"status": {}})));
        assert!(data(json!({"items": {}})));
        assert!(!data(json!({"empty_list": {}})));
        assert!(!data(json!({"tags": {}})));
    }

    // ---- nested objects ----------------------------------------------------------

    #[test]
    fn nested_objects() {
        assert!(data(json!({"customer": {"address": {"city": "London"}}})));
        assert!(!data(json!({"customer": {"address": {"city": "Paris"}}})));
        assert!(data(
            json!({"customer": {"name": "Ada", "address": {"zip": {"$startsWith": "N"}}}})
        ));
        assert!(!data(json!({"status": {"nested": "paid"}})));
    }

    // ---- $eq / $neq --------------------------------------------------------------

    #[test]
    fn op_eq() {
        assert!(data(json!({"status": {"$eq": "paid"}})));
        assert!(!data(json!({"status": {"$eq": "open"}})));
        assert!(data(json!({"amount": {"$eq": 42.0}})));
        assert!(data(json!({"note": {"$eq": null}})));
        assert!(!data(json!({"amount": {"$eq": "42"}})));
    }

    #[test]
    fn op_eq_deep() {
        assert!(data(json!({"customer": {"$eq": {
            "address": {"zip": "N1", "city": "London"}, "name": "Ada"
        }}})));
        assert!(!data(json!({"customer": {"$eq": {"name": "Ada"}}})));
        assert!(data(json!({"items": {"$eq": [
            {"sku": "A-1", "qty": 1.0, "inventory": 9},
            {"sku": "B-2", "qty": 5, "inventory": 11}
        ]}})));
        assert!(!data(json!({"tags": {"$eq": ["vip", "gift", "eu"]}})));
        assert!(!data(json!({"customer": {"$eq": "Ada"}})));
        assert!(!data(json!({"status": {"$eq": ["paid"]}})));
    }

    #[test]
    fn op_neq() {
        assert!(data(json!({"status": {"$neq": "open"}})));
        assert!(!data(json!({"status": {"$neq": "paid"}})));
        assert!(data(json!({"amount": {"$neq": "42"}})));
        assert!(!data(json!({"note": {"$neq": null}})));
        assert!(data(json!({"counts": {"$neq": [1, 2]}})));
        assert!(!data(json!({"counts": {"$neq": [1, 2, 3]}})));
    }

    // ---- ordering ------------------------------------------------------------------

    #[test]
    fn op_gt() {
        assert!(data(json!({"amount": {"$gt": 41}})));
        assert!(!data(json!({"amount": {"$gt": 42}})));
        assert!(data(json!({"price": {"$gt": 19.25}})));
        assert!(data(json!({"status": {"$gt": "open"}})));
        assert!(!data(json!({"status": {"$gt": "zzz"}})));
    }

    #[test]
    fn op_gte() {
        assert!(data(json!({"amount": {"$gte": 42}})));
        assert!(!data(json!({"amount": {"$gte": 42.5}})));
        assert!(data(json!({"status": {"$gte": "paid"}})));
        assert!(!data(json!({"status": {"$gte": "pay"}})));
    }

    #[test]
    fn op_lt() {
        assert!(data(json!({"amount": {"$lt": 43}})));
        assert!(!data(json!({"amount": {"$lt": 42}})));
        assert!(data(json!({"status": {"$lt": "pay"}})));
        assert!(!data(json!({"status": {"$lt": "open"}})));
    }

    #[test]
    fn op_lte() {
        assert!(data(json!({"amount": {"$lte": 42}})));
        assert!(!data(json!({"amount": {"$lte": 41.9}})));
        assert!(data(json!({"status": {"$lte": "paid"}})));
        assert!(!data(json!({"status": {"$lte": "P"}})));
    }

    #[test]
    fn range_combines_operators() {
        assert!(data(json!({"amount": {"$gt": 1, "$lt": 100}})));
        assert!(!data(json!({"amount": {"$gt": 1, "$lt": 10}})));
    }

    #[test]
    fn ordering_is_lexicographic_for_strings() {
        assert!(raw(json!("10"), json!({"$lt": "9"})));
        assert!(raw(json!("B"), json!({"$lt": "a"})));
        assert!(check(
            json!({"time": {"$gte": "2024-01-01", "$lt": "2025-01-01"}})
        ));
    }

    #[test]
    fn ordering_type_mismatch_never_matches() {
        for op in ["$gt", "$gte", "$lt", "$lte"] {
            assert!(
                !data(json!({"amount": {op: "41"}})),
                "{op} number vs string"
            );
            assert!(!data(json!({"status": {op: 1}})), "{op} string vs number");
            assert!(!data(json!({"active": {op: false}})), "{op} bools");
            assert!(!data(json!({"note": {op: null}})), "{op} nulls");
            assert!(!data(json!({"amount": {op: [1, 2, 3]}})), "{op} vs array");
            assert!(!data(json!({"customer": {op: {}}})), "{op} objects");
        }
    }

    // ---- $in / $nin -----------------------------------------------------------------

    #[test]
    fn op_in_with_array_compare() {
        assert!(data(json!({"status": {"$in": ["open", "paid"]}})));
        assert!(!data(json!({"status": {"$in": ["open", "void"]}})));
        assert!(data(json!({"amount": {"$in": [42.0, 7]}})));
        assert!(data(json!({"note": {"$in": [null]}})));
        assert!(!data(json!({"amount": {"$in": ["42"]}})));
        assert!(!data(json!({"status": {"$in": []}})));
    }

    #[test]
    fn op_in_substring() {
        assert!(data(json!({"status": {"$in": "ai"}})));
        assert!(data(json!({"status": {"$in": ""}})));
        assert!(!data(json!({"status": {"$in": "xyz"}})));
    }

    #[test]
    fn op_in_array_input_contains() {
        assert!(data(json!({"tags": {"$in": "gift"}})));
        assert!(!data(json!({"tags": {"$in": "gi"}})));
        assert!(data(json!({"counts": {"$in": 2}})));
        // Elements are compared as primitives only.
        assert!(!raw(
            json!({"a": [{"b": 1}]}),
            json!({"a": {"$in": {"b": 1}}})
        ));
    }

    #[test]
    fn op_in_type_errors() {
        // Array input with array compare: input must be primitive.
        assert!(!data(json!({"tags": {"$in": ["gift"]}})));
        // String input with non-string compare.
        assert!(!data(json!({"status": {"$in": 1}})));
        // Number / object input with non-array compare.
        assert!(!data(json!({"amount": {"$in": 42}})));
        assert!(!data(json!({"customer": {"$in": "Ada"}})));
    }

    #[test]
    fn op_nin() {
        assert!(data(json!({"status": {"$nin": ["open", "void"]}})));
        assert!(!data(json!({"status": {"$nin": ["open", "paid"]}})));
        assert!(data(json!({"status": {"$nin": "xyz"}})));
        assert!(!data(json!({"status": {"$nin": "ai"}})));
        assert!(data(json!({"tags": {"$nin": "other"}})));
        assert!(!data(json!({"tags": {"$nin": "eu"}})));
    }

    #[test]
    fn op_nin_type_errors_still_fail() {
        assert!(!data(json!({"tags": {"$nin": ["gift"]}})));
        assert!(!data(json!({"status": {"$nin": 1}})));
        assert!(!data(json!({"amount": {"$nin": 41}})));
        assert!(!data(json!({"customer": {"$nin": "Ada"}})));
    }

    // ---- $startsWith / $endsWith ------------------------------------------------------

    #[test]
    fn op_starts_with() {
        assert!(data(json!({"status": {"$startsWith": "pa"}})));
        assert!(!data(json!({"status": {"$startsWith": "id"}})));
        assert!(data(json!({"status": {"$startsWith": ["x", "pa"]}})));
        assert!(!data(json!({"status": {"$startsWith": ["x", "y"]}})));
        assert!(!data(json!({"status": {"$startsWith": []}})));
    }

    #[test]
    fn op_ends_with() {
        assert!(data(json!({"status": {"$endsWith": "id"}})));
        assert!(!data(json!({"status": {"$endsWith": "pa"}})));
        assert!(data(json!({"status": {"$endsWith": ["x", "aid"]}})));
        assert!(!data(json!({"status": {"$endsWith": ["x", "y"]}})));
    }

    #[test]
    fn affix_type_errors() {
        for op in ["$startsWith", "$endsWith"] {
            assert!(!data(json!({"amount": {op: "4"}})), "{op} on number");
            assert!(!data(json!({"customer": {op: "A"}})), "{op} on object");
            assert!(!data(json!({"status": {op: 1}})), "{op} number compare");
            assert!(
                !data(json!({"status": {op: ["paid", 1]}})),
                "{op} mixed array"
            );
            assert!(
                !data(json!({"status": {op: {"a": 1}}})),
                "{op} object compare"
            );
        }
        // On an array input the operator applies to the array: type error.
        assert!(!data(json!({"tags": {"$startsWith": "g"}})));
    }

    // ---- $exist ---------------------------------------------------------------------

    #[test]
    fn op_exist_true() {
        assert!(data(json!({"status": {"$exist": true}})));
        assert!(data(json!({"note": {"$exist": true}})));
        assert!(data(json!({"customer": {"$exist": true}})));
        assert!(!data(json!({"nope": {"$exist": true}})));
        assert!(!data(json!({"customer": {"phone": {"$exist": true}}})));
    }

    #[test]
    fn op_exist_false() {
        assert!(data(json!({"nope": {"$exist": false}})));
        assert!(!data(json!({"status": {"$exist": false}})));
        assert!(!data(json!({"note": {"$exist": false}})));
    }

    #[test]
    fn op_exist_non_bool_never_matches() {
        assert!(!data(json!({"status": {"$exist": "yes"}})));
        assert!(!data(json!({"nope": {"$exist": 0}})));
    }

    #[test]
    fn exist_combined_with_other_operators() {
        assert!(data(json!({"status": {"$exist": true, "$in": "ai"}})));
        assert!(!data(json!({"status": {"$exist": true, "$in": "zz"}})));
        assert!(data(
            json!({"status": {"$exist": true, "$or": ["open", "paid"]}})
        ));
    }

    #[test]
    fn key_named_exist_is_a_field() {
        assert!(raw(json!({"exist": true}), json!({"exist": true})));
        assert!(!raw(json!({"exist": true}), json!({"exist": false})));
        assert!(!raw(json!({"exist": null}), json!({"exist": false})));
    }

    // ---- $or / $and / $not ---------------------------------------------------------

    #[test]
    fn op_or() {
        assert!(check(
            json!({"$or": [{"topic": "x"}, {"data": {"status": "paid"}}]})
        ));
        assert!(!check(
            json!({"$or": [{"topic": "x"}, {"data": {"status": "open"}}]})
        ));
        assert!(data(json!({"status": {"$or": ["open", "paid"]}})));
        assert!(!data(json!({"status": {"$or": ["open", "void"]}})));
        assert!(data(
            json!({"customer": {"$or": [{"name": "Bob"}, {"name": {"$in": "d"}}]}})
        ));
        assert!(raw(json!(1), json!({"$or": [1, 2]})));
        assert!(!raw(json!(1), json!({"$or": [2, 3]})));
    }

    #[test]
    fn op_or_edge_cases() {
        assert!(!check(json!({"$or": []})));
        assert!(!check(json!({"$or": {"topic": "user.created"}})));
        assert!(!check(json!({"$or": "user.created"})));
    }

    #[test]
    fn op_and() {
        assert!(check(
            json!({"$and": [{"topic": "user.created"}, {"data": {"status": "paid"}}]})
        ));
        assert!(!check(
            json!({"$and": [{"topic": "user.created"}, {"data": {"status": "open"}}]})
        ));
        assert!(data(json!({"amount": {"$and": [{"$gt": 1}, {"$lt": 50}]}})));
        assert!(!data(json!({"amount": {"$and": [{"$gt": 1}, {"$lt": 5}]}})));
        assert!(!raw(json!(1), json!({"$and": [1, 2]})));
    }

    #[test]
    fn op_and_edge_cases() {
        assert!(check(json!({"$and": []})));
        assert!(!check(json!({"$and": {"topic": "user.created"}})));
        assert!(!check(json!({"$and": null})));
    }

    #[test]
    fn logical_operators_combine_with_fields() {
        assert!(data(json!({
            "customer": {"name": {"$exist": true}, "$and": [{"name": "Ada"}, {"address": {"city": "London"}}]}
        })));
        assert!(!data(json!({
            "customer": {"name": {"$exist": true}, "$and": [{"name": "Ada"}, {"address": {"city": "Rome"}}]}
        })));
        assert!(!data(json!({"status": "open", "$or": [{"type": "order"}]})));
    }

    #[test]
    fn op_not_top_level() {
        assert!(check(json!({"$not": {"topic": "user.deleted"}})));
        assert!(!check(json!({"$not": {"topic": "user.created"}})));
        assert!(check(
            json!({"$not": {"data": {"status": "open"}}, "topic": "user.created"})
        ));
        assert!(!check(
            json!({"$not": {"data": {"status": "open"}}, "topic": "x"})
        ));
        assert!(check(json!({"$not": {"$not": {"topic": "user.created"}}})));
    }

    #[test]
    fn op_not_nested_object() {
        assert!(data(json!({"$not": {"type": "invoice"}})));
        assert!(!data(json!({"$not": {"type": "order"}})));
        assert!(data(
            json!({"customer": {"$not": {"address": {"city": "Paris"}}}})
        ));
        assert!(!data(
            json!({"customer": {"$not": {"address": {"city": "London"}}}})
        ));
        assert!(data(json!({"$not": {"nope": {"$exist": true}}})));
        assert!(!data(json!({"$not": {"nope": {"$exist": false}}})));
    }

    #[test]
    fn op_not_field_level_on_primitive_never_matches() {
        assert!(!data(json!({"status": {"$not": "open"}})));
        assert!(!data(json!({"status": {"$not": "paid"}})));
        assert!(!data(json!({"status": {"$not": {"$eq": "open"}}})));
        assert!(!data(json!({"nope": {"$not": "x"}})));
        assert!(!data(json!({"status": {"$or": [{"$not": "open"}]}})));
    }

    #[test]
    fn op_not_on_array_applies_to_elements() {
        // Some item is not an A-1.
        assert!(data(json!({"items": {"$not": {"sku": "A-1"}}})));
        assert!(!data(json!({"items": {"$not": {"qty": {"$gte": 1}}}})));
        // Primitive elements: field-level $not never matches.
        assert!(!data(json!({"tags": {"$not": "x"}})));
    }

    #[test]
    fn op_not_accepts_any_schema() {
        assert!(data(json!({"$not": {"status": {"$in": ["open"]}}})));
        assert!(check(json!({"$not": "x"})));
        assert!(check(json!({"$not": [1]})));
    }

    // ---- unknown operators ---------------------------------------------------------

    #[test]
    fn unknown_operator_never_matches() {
        assert!(!data(json!({"status": {"$ref": "type"}})));
        assert!(!data(json!({"status": {"$regex": ".*"}})));
        assert!(!data(json!({"status": {"$eq": "paid", "$bogus": 1}})));
        assert!(!check(json!({"$nor": [{"topic": "x"}]})));
        assert!(!check(json!({"$exists": true})));
        assert!(!check(json!({"data": {"$ref": "x"}})));
    }

    #[test]
    fn unknown_operator_is_not_inverted_by_not() {
        assert!(!check(json!({"$not": {"$where": "1"}})));
        assert!(!check(
            json!({"$not": {"data": {"status": {"$regex": "x"}}}})
        ));
        assert!(!check(
            json!({"$or": [{"topic": "user.created"}, {"$foo": 1}]})
        ));
        assert!(!data(json!({"items": {"$not": {"sku": {"$like": "A"}}}})));
    }

    #[test]
    fn dollar_keys_inside_comparison_arguments_are_data() {
        let input = json!({"data": {"meta": {"$kind": "x"}, "tags": ["$a"]}});
        assert!(matches(
            &json!({"data": {"meta": {"$eq": {"$kind": "x"}}}}),
            &input
        ));
        assert!(!matches(
            &json!({"data": {"meta": {"$eq": {"$kind": "y"}}}}),
            &input
        ));
        assert!(matches(
            &json!({"data": {"meta": {"$neq": {"$kind": "y"}}}}),
            &input
        ));
        assert!(matches(&json!({"data": {"tags": {"$in": "$a"}}}), &input));
        // As a field key it is still an (unknown) operator.
        assert!(!matches(&json!({"data": {"meta": {"$kind": "x"}}}), &input));
    }

    // ---- depth bound ---------------------------------------------------------------

    /// Wrap `inner` as `[inner]` without `json!`, which would re-serialize
    /// (recursively) the already-deep value.
    fn in_array(inner: Value) -> Value {
        Value::Array(vec![inner])
    }

    /// Wrap `inner` as `{key: inner}` without `json!`.
    fn under(key: &str, inner: Value) -> Value {
        let mut map = Map::new();
        map.insert(key.to_owned(), inner);
        Value::Object(map)
    }

    /// serde_json drops values recursively; take very deep test values apart
    /// by hand so the tests exercise the evaluator, not `Drop`.
    fn drop_iteratively(value: Value) {
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            match value {
                Value::Array(items) => pending.extend(items),
                Value::Object(map) => pending.extend(map.into_iter().map(|(_, item)| item)),
                _ => {}
            }
        }
    }

    fn nest(levels: usize, leaf: Value, wrap: impl Fn(Value) -> Value) -> Value {
        let mut value = leaf;
        for _ in 0..levels {
            value = wrap(value);
        }
        value
    }

    #[test]
    fn deep_but_reasonable_filters_work() {
        let input = nest(20, json!("x"), |inner| under("a", inner));
        let filter = nest(20, json!("x"), |inner| under("a", inner));
        assert!(matches(&filter, &input));
    }

    #[test]
    fn depth_limit_boundary() {
        let input = nest(100, json!("x"), |inner| under("a", inner));
        let at_limit = nest(MAX_DEPTH, json!({"$exist": true}), |inner| {
            under("a", inner)
        });
        assert!(matches(&at_limit, &input));
        let over_limit = nest(MAX_DEPTH + 1, json!({"$exist": true}), |inner| {
            under("a", inner)
        });
        assert!(!matches(&over_limit, &input));
    }

    #[test]
    fn too_deep_filter_never_matches() {
        let input = nest(200, json!("x"), |inner| under("a", inner));
        let filter = nest(200, json!("x"), |inner| under("a", inner));
        assert!(!matches(&filter, &input));
    }

    #[test]
    fn too_deep_branch_fails_even_if_another_branch_matches() {
        let deep = nest(100, json!("x"), |inner| under("a", inner));
        let filter = json!({"$or": [{"topic": "user.created"}, deep]});
        assert!(!matches(&filter, &event()));
    }

    #[test]
    fn too_deep_is_not_inverted_by_not() {
        let filter = nest(300, json!({"topic": "nope"}), |inner| under("$not", inner));
        assert!(!matches(&filter, &event()));
        let filter = nest(301, json!({"topic": "nope"}), |inner| under("$not", inner));
        assert!(!matches(&filter, &event()));
    }

    #[test]
    fn deeply_nested_or_is_bounded() {
        let filter = nest(10_000, json!({"topic": "user.created"}), |inner| {
            under("$or", in_array(inner))
        });
        assert!(!matches(&filter, &event()));
        drop_iteratively(filter);
    }

    #[test]
    fn deeply_nested_arrays_are_bounded() {
        let input = nest(1_000, json!("x"), in_array);
        assert_eq!(
            match_schema(Some(&input), &json!("x"), 0),
            Err(Abort::TooDeep)
        );
        drop_iteratively(input);
        assert!(raw(nest(10, json!("x"), in_array), json!("x")));
    }

    #[test]
    fn deep_equality_is_iterative() {
        let left = nest(5_000, json!(1), in_array);
        let right = nest(5_000, json!(1), in_array);
        assert!(values_equal(&left, &right));
        let other = nest(5_000, json!(2), in_array);
        assert!(!values_equal(&left, &other));
        for value in [left, right, other] {
            drop_iteratively(value);
        }
    }

    // ---- upstream-style table --------------------------------------------------------

    #[test]
    fn upstream_style_cases() {
        let cases = [
            (json!({"type": "created"}), json!({"type": "created"}), true),
            (json!({}), json!({"type": "created"}), false),
            (json!({"type": 1}), json!({"type": "created"}), false),
            (
                json!({"count": 1, "type": "created"}),
                json!({"count": 1}),
                true,
            ),
            (
                json!({"count": 1}),
                json!({"count": 1, "type": "created"}),
                false,
            ),
            (json!({"count": 0}), json!({"count": {"$lt": 1}}), true),
            (json!({"title": "a"}), json!({"title": {"$gt": "b"}}), false),
            (
                json!({"type": {"something": "created"}}),
                json!({"type": {"something": "created"}}),
                true,
            ),
            (
                json!({"type": {"something": "created"}}),
                json!({"type": 1}),
                false,
            ),
            (
                json!({"test": "some-text"}),
                json!({"test": {"something": "text"}}),
                false,
            ),
            (
                json!({"test": {"more": true}}),
                json!({"test": {"$startsWith": "text"}}),
                false,
            ),
            (
                json!({"test": "some-text", "id": 123}),
                json!({"test": {"$in": "text"}, "id": {"$in": [123, 456]}}),
                true,
            ),
            (
                json!({"test": "some-text", "id": 123}),
                json!({"test": {"$in": ["some", "text"]}, "id": {"$nin": [123, 456]}}),
                false,
            ),
            (
                json!({"test": {"test1": "else", "test2": "not"}}),
                json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "else1"}}]}),
                true,
            ),
            (
                json!({"test": {"test2": "else"}}),
                json!({"$or": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": "else1"}}]}),
                false,
            ),
            (
                json!({"test": {"test1": "else"}}),
                json!({"$and": [{"test": {"test1": {"$exist": true}}}, {"test": {"test2": {"$exist": false}}}]}),
                true,
            ),
            (
                json!({"test": {"test1": "else", "test2": "not"}}),
                json!({"$not": {"test": {"test1": {"$exist": false}}},
                       "$or": [{"test": {"test3": {"$exist": true}}}, {"test": {"test2": "not"}}]}),
                true,
            ),
            (
                json!({"test": {"test1": "else", "test2": "not"}}),
                json!({"$not": {"test": {"test1": "else"}},
                       "$and": [{"test": {"test1": "else"}}, {"test": {"test2": "not"}}]}),
                false,
            ),
        ];
        for (index, (input, schema, expected)) in cases.iter().enumerate() {
            assert_eq!(
                raw(input.clone(), schema.clone()),
                *expected,
                "case {index}"
            );
            // Every case with an object input inverts under a top-level $not.
            let inverted = json!({ "$not": schema });
            assert_eq!(
                raw(input.clone(), inverted),
                !*expected,
                "case {index} with $not"
            );
        }
    }

    /// A filter is stored as compact JSON text and read back at fan-out; a number written with
    /// more digits than an f64 holds must read back as the same f64, or the stored filter
    /// decides otherwise than the one the client sent (found by the `filter` fuzz target).
    #[test]
    fn long_number_literals_survive_storage() {
        let long = format!("1.{}", "6".repeat(42));
        let filter: Value = serde_json::from_str(&long).unwrap();
        let stored: Value = serde_json::from_str(&filter.to_string()).unwrap();
        assert_eq!(stored, filter);
        let input: Value = serde_json::from_str(&format!("{long}1")).unwrap();
        assert_eq!(matches(&filter, &input), matches(&stored, &input));
    }
}
