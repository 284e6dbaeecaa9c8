//! Turning counted tuples into the rows of a metrics answer: keeps the tuples the filters
//! accept, groups them by the requested dimensions and bucket, computes the measures, and
//! zero-fills the buckets of every group seen (of the one empty group when no dimension is
//! asked for), ordered by dimension values, then time.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use super::request::{Dimension, Measure, MetricsError, MetricsRequest, ROW_LIMIT};
use crate::model::event::AttemptStatus;
use crate::store::{AttemptTuple, EventTuple};
use crate::time::Timestamp;

/// A dimension value as the answer shows it: `manual` a bool, `attempt_number` a number, the
/// rest strings. Ordered within one dimension as upstream's queries order them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum DimValue {
    Str(String),
    Bool(bool),
    Int(u32),
}

/// A dimension value borrowed from a tuple, for filtering without allocating.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(u32),
}

impl Value<'_> {
    fn matches(self, accepted: &[String]) -> bool {
        match self {
            Value::Str(s) => accepted.iter().any(|a| a == s),
            Value::Bool(b) => accepted
                .iter()
                .any(|a| a == if b { "true" } else { "false" }),
            Value::Int(n) => accepted.iter().any(|a| a.parse::<u32>() == Ok(n)),
        }
    }

    fn owned(self) -> DimValue {
        match self {
            Value::Str(s) => DimValue::Str(s.to_string()),
            Value::Bool(b) => DimValue::Bool(b),
            Value::Int(n) => DimValue::Int(n),
        }
    }
}

fn attempt_value<'a>(dimension: Dimension, tuple: &AttemptTuple<'a>) -> Value<'a> {
    match dimension {
        Dimension::TenantId => Value::Str(tuple.tenant_id),
        Dimension::DestinationId => Value::Str(tuple.destination_id),
        Dimension::DestinationType => Value::Str(tuple.destination_type),
        Dimension::Topic => Value::Str(tuple.topic),
        Dimension::Status => Value::Str(tuple.status.as_str()),
        Dimension::Code => Value::Str(tuple.code),
        Dimension::Manual => Value::Bool(tuple.manual),
        Dimension::AttemptNumber => Value::Int(tuple.attempt_number),
    }
}

/// What a group holds for one bucket; every measure derives from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub successful: u64,
    pub failed: u64,
    pub first_attempts: u64,
    pub retries: u64,
    pub manual: u64,
    pub attempt_number_sum: u64,
}

impl Totals {
    fn add_attempts(&mut self, tuple: &AttemptTuple<'_>, n: u64) {
        self.count += n;
        match tuple.status {
            AttemptStatus::Success => self.successful += n,
            AttemptStatus::Failed => self.failed += n,
        }
        if tuple.attempt_number == 1 && !tuple.manual {
            self.first_attempts += n;
        }
        if tuple.attempt_number > 1 {
            self.retries += n;
        }
        if tuple.manual {
            self.manual += n;
        }
        self.attempt_number_sum = self
            .attempt_number_sum
            .saturating_add(u64::from(tuple.attempt_number).saturating_mul(n));
    }
}

/// A measure's value: counts are integers, ratios and rates floats, latencies `null`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Number {
    Int(u64),
    Float(Box<RawValue>),
    Null,
}

/// `x` as Go's JSON encoder writes a float64: integral values without a fraction, decimals in
/// their shortest form, exponents (below 1e-6, from 1e21) as `1e-7` / `1e+21`.
pub fn go_float(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_string();
    }
    let abs = x.abs();
    if x == x.trunc() && abs < 1e21 {
        return format!("{}", x as i128);
    }
    if (1e-6..1e21).contains(&abs) {
        return format!("{x}");
    }
    let text = format!("{x:e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}e+{exponent:0>2}")
        }
        _ => text,
    }
}

fn float(x: f64) -> Number {
    match RawValue::from_string(go_float(x)) {
        Ok(raw) => Number::Float(raw),
        Err(_) => Number::Int(0),
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn measure(measure: Measure, totals: &Totals, seconds: f64) -> Number {
    let rate = |n: u64| {
        float(if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        })
    };
    match measure {
        Measure::Count => Number::Int(totals.count),
        Measure::SuccessfulCount => Number::Int(totals.successful),
        Measure::FailedCount => Number::Int(totals.failed),
        Measure::ErrorRate => float(ratio(totals.failed, totals.count)),
        Measure::FirstAttemptCount => Number::Int(totals.first_attempts),
        Measure::RetryCount => Number::Int(totals.retries),
        Measure::ManualRetryCount => Number::Int(totals.manual),
        Measure::AvgAttemptNumber => float(ratio(totals.attempt_number_sum, totals.count)),
        Measure::Rate => rate(totals.count),
        Measure::SuccessfulRate => rate(totals.successful),
        Measure::FailedRate => rate(totals.failed),
        Measure::AvgLatency | Measure::P50Latency | Measure::P95Latency | Measure::P99Latency => {
            Number::Null
        }
    }
}

/// One row of the answer.
#[derive(Debug, Serialize)]
pub struct DataPoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_bucket: Option<String>,
    pub dimensions: BTreeMap<&'static str, DimValue>,
    pub metrics: BTreeMap<&'static str, Number>,
}

/// The groups of one query, filled tuple by tuple.
pub struct Grouping<'r> {
    request: &'r MetricsRequest,
    /// Dimension values (in the requested order) → bucket → totals.
    groups: BTreeMap<Vec<DimValue>, BTreeMap<usize, Totals>>,
}

impl<'r> Grouping<'r> {
    pub fn new(request: &'r MetricsRequest) -> Grouping<'r> {
        Grouping {
            request,
            groups: BTreeMap::new(),
        }
    }

    fn totals(&mut self, key: Vec<DimValue>, bucket: usize) -> &mut Totals {
        self.groups
            .entry(key)
            .or_default()
            .entry(bucket)
            .or_default()
    }

    /// Counts `n` attempts of `tuple` in `bucket` if the filters accept it.
    pub fn add_attempts(&mut self, bucket: usize, tuple: &AttemptTuple<'_>, n: u64) {
        let accepted = self
            .request
            .filters
            .iter()
            .all(|(&d, values)| attempt_value(d, tuple).matches(values));
        if !accepted {
            return;
        }
        let key = self
            .request
            .dimensions
            .iter()
            .map(|&d| attempt_value(d, tuple).owned())
            .collect();
        self.totals(key, bucket).add_attempts(tuple, n);
    }

    /// Counts `n` events of `tuple` in `bucket` if the filters accept it: once, or once per
    /// matched destination when grouped by destination.
    pub fn add_events(&mut self, bucket: usize, tuple: &EventTuple<'_>, n: u64) {
        let accepted = self.request.filters.iter().all(|(d, values)| match d {
            Dimension::TenantId => Value::Str(tuple.tenant_id).matches(values),
            Dimension::Topic => Value::Str(tuple.topic).matches(values),
            Dimension::DestinationId => tuple
                .destination_ids
                .iter()
                .any(|id| Value::Str(id).matches(values)),
            _ => false,
        });
        if !accepted {
            return;
        }
        let dimensions = &self.request.dimensions;
        let key_for = |destination: &str| -> Vec<DimValue> {
            dimensions
                .iter()
                .map(|d| match d {
                    Dimension::TenantId => DimValue::Str(tuple.tenant_id.to_string()),
                    Dimension::Topic => DimValue::Str(tuple.topic.to_string()),
                    _ => DimValue::Str(destination.to_string()),
                })
                .collect()
        };
        if dimensions.contains(&Dimension::DestinationId) {
            let keys: Vec<_> = tuple.destination_ids.iter().map(|id| key_for(id)).collect();
            for key in keys {
                self.totals(key, bucket).count += n;
            }
        } else {
            let key = key_for("");
            self.totals(key, bucket).count += n;
        }
    }

    /// The rows of the answer, or `TooBroad` past the row limit.
    pub fn rows(mut self) -> Result<Vec<DataPoint>, MetricsError> {
        let request = self.request;
        let buckets = match request.granularity {
            Some(_) => {
                if request.dimensions.is_empty() {
                    self.groups.entry(Vec::new()).or_default();
                }
                request.bucket_starts.len()
            }
            None => 1,
        };
        if self.groups.len().saturating_mul(buckets) > ROW_LIMIT {
            return Err(MetricsError::TooBroad);
        }
        let mut rows = Vec::with_capacity(self.groups.len() * buckets);
        let zero = Totals::default();
        for (key, per_bucket) in &self.groups {
            for bucket in 0..buckets {
                let totals = per_bucket.get(&bucket).unwrap_or(&zero);
                let seconds = request.bucket_seconds(bucket);
                rows.push(DataPoint {
                    time_bucket: request.granularity.and(
                        request
                            .bucket_starts
                            .get(bucket)
                            .map(|&t| Timestamp { unix_nanos: t }.format_rfc3339_nano()),
                    ),
                    dimensions: request
                        .dimensions
                        .iter()
                        .map(|d| d.name())
                        .zip(key.iter().cloned())
                        .collect(),
                    metrics: request
                        .measures
                        .iter()
                        .map(|&m| (m.name(), measure(m, totals, seconds)))
                        .collect(),
                });
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Caller;
    use crate::api::metrics::request::Kind;
    use crate::api::query::Query;

    fn request(query: &str, kind: Kind) -> MetricsRequest {
        MetricsRequest::parse(&Query::parse(Some(query)), kind, &Caller::Admin).expect("valid")
    }

    fn attempt<'a>(
        destination: &'a str,
        status: AttemptStatus,
        number: u32,
        manual: bool,
    ) -> AttemptTuple<'a> {
        AttemptTuple {
            tenant_id: "t",
            destination_id: destination,
            destination_type: "webhook",
            topic: "a.b",
            status,
            code: if status == AttemptStatus::Success {
                "200"
            } else {
                "500"
            },
            manual,
            attempt_number: number,
        }
    }

    fn json(rows: &[DataPoint]) -> serde_json::Value {
        serde_json::to_value(rows).expect("rows serialize")
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(go_float(0.000001), "0.000001");
        assert_eq!(go_float(1.0 / 2_678_400.0), "3.733572281959379e-7");
        assert_eq!(go_float(1.5e21), "1.5e+21");
    }

    #[test]
    fn attempt_measures_derive_from_the_tuples() {
        let r = request(
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-01T00:00:10Z\
             &measures[]=count&measures[]=successful_count&measures[]=failed_count\
             &measures[]=error_rate&measures[]=first_attempt_count&measures[]=retry_count\
             &measures[]=manual_retry_count&measures[]=avg_attempt_number&measures[]=rate\
             &measures[]=successful_rate&measures[]=failed_rate&measures[]=p99_latency",
            Kind::Attempts,
        );
        let mut grouping = Grouping::new(&r);
        grouping.add_attempts(0, &attempt("d", AttemptStatus::Failed, 1, false), 3);
        grouping.add_attempts(0, &attempt("d", AttemptStatus::Success, 2, false), 1);
        grouping.add_attempts(0, &attempt("d", AttemptStatus::Success, 1, true), 1);
        let rows = grouping.rows().unwrap();
        assert_eq!(
            json(&rows),
            serde_json::json!([{"dimensions": {}, "metrics": {
                "count": 5, "successful_count": 2, "failed_count": 3, "error_rate": 0.6,
                "first_attempt_count": 3, "retry_count": 1, "manual_retry_count": 1,
                "avg_attempt_number": 1.2, "rate": 0.5, "successful_rate": 0.2,
                "failed_rate": 0.3, "p99_latency": null
            }}])
        );
    }

    #[test]
    fn groups_are_zero_filled_and_ordered_by_dimension_then_time() {
        let r = request(
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-01T03:00:00Z&granularity=1h\
             &measures[]=count&measures[]=error_rate&dimensions[]=manual&dimensions[]=destination_id\
             &filters[status]=failed",
            Kind::Attempts,
        );
        let mut grouping = Grouping::new(&r);
        grouping.add_attempts(2, &attempt("b", AttemptStatus::Failed, 1, true), 2);
        grouping.add_attempts(1, &attempt("a", AttemptStatus::Failed, 1, false), 1);
        grouping.add_attempts(1, &attempt("a", AttemptStatus::Success, 1, false), 7);
        let rows = json(&grouping.rows().unwrap());
        let summary: Vec<_> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["time_bucket"].as_str().unwrap().to_string(),
                    row["dimensions"].to_string(),
                    row["metrics"]["count"].as_u64().unwrap(),
                )
            })
            .collect();
        let a = r#"{"destination_id":"a","manual":false}"#;
        let b = r#"{"destination_id":"b","manual":true}"#;
        assert_eq!(
            summary,
            vec![
                ("2024-01-01T00:00:00Z".to_string(), a.to_string(), 0),
                ("2024-01-01T01:00:00Z".to_string(), a.to_string(), 1),
                ("2024-01-01T02:00:00Z".to_string(), a.to_string(), 0),
                ("2024-01-01T00:00:00Z".to_string(), b.to_string(), 0),
                ("2024-01-01T01:00:00Z".to_string(), b.to_string(), 0),
                ("2024-01-01T02:00:00Z".to_string(), b.to_string(), 2),
            ]
        );
        assert_eq!(rows[0]["metrics"]["error_rate"], serde_json::json!(0));
    }

    #[test]
    fn empty_answers_follow_upstream() {
        let base =
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-01T02:00:00Z&measures[]=count";
        let none = request(base, Kind::Events);
        assert!(Grouping::new(&none).rows().unwrap().is_empty());
        let bucketed = request(&format!("{base}&granularity=1h"), Kind::Events);
        let rows = json(&Grouping::new(&bucketed).rows().unwrap());
        assert_eq!(
            rows,
            serde_json::json!([
                {"time_bucket": "2024-01-01T00:00:00Z", "dimensions": {}, "metrics": {"count": 0}},
                {"time_bucket": "2024-01-01T01:00:00Z", "dimensions": {}, "metrics": {"count": 0}}
            ])
        );
        let grouped = request(
            &format!("{base}&granularity=1h&dimensions[]=topic"),
            Kind::Events,
        );
        assert!(Grouping::new(&grouped).rows().unwrap().is_empty());
    }

    #[test]
    fn events_count_once_or_once_per_matched_destination() {
        let tuple = EventTuple {
            tenant_id: "t",
            topic: "a.b",
            destination_ids: vec!["d1", "d2"],
        };
        let base =
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-01T02:00:00Z&measures[]=count";
        let plain = request(base, Kind::Events);
        let mut grouping = Grouping::new(&plain);
        grouping.add_events(0, &tuple, 4);
        assert_eq!(json(&grouping.rows().unwrap())[0]["metrics"]["count"], 4);

        let by_destination = request(
            &format!("{base}&dimensions[]=destination_id&filters[destination_id]=d2"),
            Kind::Events,
        );
        let mut grouping = Grouping::new(&by_destination);
        grouping.add_events(0, &tuple, 4);
        grouping.add_events(
            0,
            &EventTuple {
                destination_ids: vec!["d3"],
                ..tuple.clone()
            },
            9,
        );
        let rows = json(&grouping.rows().unwrap());
        assert_eq!(
            rows,
            serde_json::json!([
                {"dimensions": {"destination_id": "d1"}, "metrics": {"count": 4}},
                {"dimensions": {"destination_id": "d2"}, "metrics": {"count": 4}}
            ])
        );
    }

    #[test]
    fn too_many_rows_are_refused() {
        let r = request(
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-02T00:00:00Z&granularity=1s\
             &measures[]=count&dimensions[]=destination_id",
            Kind::Attempts,
        );
        let mut grouping = Grouping::new(&r);
        grouping.add_attempts(0, &attempt("a", AttemptStatus::Success, 1, false), 1);
        assert_eq!(grouping.rows().map(|r| r.len()), Ok(86_400));
        let mut grouping = Grouping::new(&r);
        grouping.add_attempts(0, &attempt("a", AttemptStatus::Success, 1, false), 1);
        grouping.add_attempts(0, &attempt("b", AttemptStatus::Success, 1, false), 1);
        assert!(matches!(grouping.rows(), Err(MetricsError::TooBroad)));
    }
}
