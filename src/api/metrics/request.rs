//! A metrics query as the client wrote it, checked in upstream's order with upstream's
//! messages: the tenant-JWT `tenant_id` dimension refusal (403), then `time[start]`,
//! `time[end]`, `granularity`, `measures[]`, `dimensions[]` and the `filters[<key>]` of the
//! endpoint's keys (unknown filter keys are ignored), then the JWT's tenant filter (403 or
//! injected), then the time range and the bucket count.

use std::collections::BTreeMap;

use hyper::StatusCode;

use super::granularity::{go_quote, Granularity, GranularityError};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::time::parse_rfc3339;

/// Most buckets (and result rows) a query may produce.
pub const ROW_LIMIT: usize = 100_000;

/// Which of the two endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Events,
    Attempts,
}

/// What can be grouped or filtered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    TenantId,
    DestinationId,
    DestinationType,
    Topic,
    Status,
    Code,
    Manual,
    AttemptNumber,
}

impl Dimension {
    const ALL: [Dimension; 8] = [
        Dimension::TenantId,
        Dimension::DestinationId,
        Dimension::DestinationType,
        Dimension::Topic,
        Dimension::Status,
        Dimension::Code,
        Dimension::Manual,
        Dimension::AttemptNumber,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::TenantId => "tenant_id",
            Dimension::DestinationId => "destination_id",
            Dimension::DestinationType => "destination_type",
            Dimension::Topic => "topic",
            Dimension::Status => "status",
            Dimension::Code => "code",
            Dimension::Manual => "manual",
            Dimension::AttemptNumber => "attempt_number",
        }
    }

    /// Whether the endpoint groups and filters by it.
    fn allowed(self, kind: Kind) -> bool {
        match kind {
            Kind::Events => matches!(
                self,
                Dimension::TenantId | Dimension::Topic | Dimension::DestinationId
            ),
            Kind::Attempts => true,
        }
    }

    fn parse(name: &str, kind: Kind) -> Option<Dimension> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.name() == name && d.allowed(kind))
    }
}

/// What can be measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Count,
    SuccessfulCount,
    FailedCount,
    ErrorRate,
    FirstAttemptCount,
    RetryCount,
    ManualRetryCount,
    AvgAttemptNumber,
    Rate,
    SuccessfulRate,
    FailedRate,
    /// The latency measures of upstream's newer releases: accepted, always `null` (attempts
    /// carry no latency; upstream answers `null` for buckets without one).
    AvgLatency,
    P50Latency,
    P95Latency,
    P99Latency,
}

impl Measure {
    const ALL: [Measure; 15] = [
        Measure::Count,
        Measure::SuccessfulCount,
        Measure::FailedCount,
        Measure::ErrorRate,
        Measure::FirstAttemptCount,
        Measure::RetryCount,
        Measure::ManualRetryCount,
        Measure::AvgAttemptNumber,
        Measure::Rate,
        Measure::SuccessfulRate,
        Measure::FailedRate,
        Measure::AvgLatency,
        Measure::P50Latency,
        Measure::P95Latency,
        Measure::P99Latency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Count => "count",
            Measure::SuccessfulCount => "successful_count",
            Measure::FailedCount => "failed_count",
            Measure::ErrorRate => "error_rate",
            Measure::FirstAttemptCount => "first_attempt_count",
            Measure::RetryCount => "retry_count",
            Measure::ManualRetryCount => "manual_retry_count",
            Measure::AvgAttemptNumber => "avg_attempt_number",
            Measure::Rate => "rate",
            Measure::SuccessfulRate => "successful_rate",
            Measure::FailedRate => "failed_rate",
            Measure::AvgLatency => "avg_latency",
            Measure::P50Latency => "p50_latency",
            Measure::P95Latency => "p95_latency",
            Measure::P99Latency => "p99_latency",
        }
    }

    fn allowed(self, kind: Kind) -> bool {
        match kind {
            Kind::Events => matches!(self, Measure::Count | Measure::Rate),
            Kind::Attempts => true,
        }
    }

    fn parse(name: &str, kind: Kind) -> Option<Measure> {
        Measure::ALL
            .into_iter()
            .find(|m| m.name() == name && m.allowed(kind))
    }
}

/// A checked metrics query.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRequest {
    /// `[start, end)`, unix nanoseconds.
    pub start: i128,
    pub end: i128,
    pub granularity: Option<Granularity>,
    pub measures: Vec<Measure>,
    pub dimensions: Vec<Dimension>,
    /// Accepted values per filtered dimension (the tenant's own id injected for a JWT).
    pub filters: BTreeMap<Dimension, Vec<String>>,
    /// The starts of the buckets (one, at `start`, without a granularity).
    pub bucket_starts: Vec<i128>,
}

/// Why a query was refused: the status and upstream's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("tenant_id dimension is not allowed for tenant-scoped requests")]
    TenantDimension,
    #[error("filters[tenant_id] does not match authenticated tenant")]
    TenantFilter,
    #[error("time[start] and time[end] are required")]
    TimeRequired,
    #[error("invalid time[{0}]: expected RFC3339 (e.g. 2024-01-15T09:30:00Z or 2024-01-15T09:30:00.123Z)")]
    InvalidTime(&'static str),
    #[error(transparent)]
    Granularity(#[from] GranularityError),
    #[error("at least one measures[] is required")]
    NoMeasures,
    #[error("unknown measure {0}")]
    UnknownMeasure(String),
    #[error("unknown dimension {0}")]
    UnknownDimension(String),
    #[error("invalid time range: start must be before end")]
    TimeRange,
    #[error("query too broad: try fewer dimensions, more filters, or a shorter time range")]
    TooBroad,
}

impl From<MetricsError> for ApiError {
    fn from(error: MetricsError) -> ApiError {
        let status = match error {
            MetricsError::TenantDimension | MetricsError::TenantFilter => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string())
    }
}

fn parse_time(query: &Query, which: &'static str) -> Result<i128, MetricsError> {
    let text = query.get(&format!("time[{which}]")).unwrap_or("");
    parse_rfc3339(text)
        .map(|t| t.unix_nanos)
        .map_err(|_| MetricsError::InvalidTime(which))
}

impl MetricsRequest {
    /// Reads and checks a query of the `kind` endpoint for `caller`.
    pub fn parse(
        query: &Query,
        kind: Kind,
        caller: &Caller,
    ) -> Result<MetricsRequest, MetricsError> {
        let dimension_names = query.array("dimensions");
        if !caller.is_admin() && dimension_names.iter().any(|d| d == "tenant_id") {
            return Err(MetricsError::TenantDimension);
        }
        let present = |key: &str| query.get(key).is_some_and(|v| !v.is_empty());
        if !present("time[start]") || !present("time[end]") {
            return Err(MetricsError::TimeRequired);
        }
        let start = parse_time(query, "start")?;
        let end = parse_time(query, "end")?;
        let granularity = Granularity::parse(query.get("granularity").unwrap_or(""))?;
        let measure_names = query.array("measures");
        if measure_names.is_empty() {
            return Err(MetricsError::NoMeasures);
        }
        let measures = measure_names
            .iter()
            .map(|m| {
                Measure::parse(m, kind).ok_or_else(|| MetricsError::UnknownMeasure(go_quote(m)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dimensions = dimension_names
            .iter()
            .map(|d| {
                Dimension::parse(d, kind).ok_or_else(|| MetricsError::UnknownDimension(go_quote(d)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut filters = BTreeMap::new();
        for dimension in Dimension::ALL.into_iter().filter(|d| d.allowed(kind)) {
            let values = query.array(&format!("filters[{}]", dimension.name()));
            if !values.is_empty() {
                filters.insert(dimension, values);
            }
        }
        if let Caller::Tenant(own) = caller {
            match filters.get(&Dimension::TenantId) {
                Some(values) if values.len() != 1 || values[0] != own.as_str() => {
                    return Err(MetricsError::TenantFilter)
                }
                Some(_) => {}
                None => {
                    filters.insert(Dimension::TenantId, vec![own.to_string()]);
                }
            }
        }
        if start >= end {
            return Err(MetricsError::TimeRange);
        }
        let bucket_starts = match granularity {
            Some(granularity) => granularity
                .bucket_starts(start, end, ROW_LIMIT)
                .ok_or(MetricsError::TooBroad)?,
            None => vec![start],
        };
        Ok(MetricsRequest {
            start,
            end,
            granularity,
            measures,
            dimensions,
            filters,
            bucket_starts,
        })
    }

    /// The `n + 1` boundaries of the buckets clipped to the range, as the store takes them.
    pub fn bounds(&self) -> Vec<i64> {
        let clamp = |t: i128| i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX });
        let mut bounds: Vec<i64> = self
            .bucket_starts
            .iter()
            .map(|&b| clamp(b.max(self.start)))
            .collect();
        bounds.push(clamp(self.end));
        bounds
    }

    /// Seconds a rate divides by in bucket `i`: the granularity's bucket (calendar months for
    /// `M`), or the whole range without one.
    pub fn bucket_seconds(&self, i: usize) -> f64 {
        match (self.granularity, self.bucket_starts.get(i)) {
            (Some(granularity), Some(&start)) => granularity.bucket_seconds(start),
            _ => (self.end - self.start) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: &str = "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-02T00:00:00Z";

    fn parse(query: &str, kind: Kind, caller: &Caller) -> Result<MetricsRequest, String> {
        MetricsRequest::parse(&Query::parse(Some(query)), kind, caller).map_err(|e| e.to_string())
    }

    fn admin(query: &str) -> Result<MetricsRequest, String> {
        parse(query, Kind::Attempts, &Caller::Admin)
    }

    #[test]
    fn messages_follow_upstreams_order() {
        let jwt = Caller::Tenant("t1".into());
        assert_eq!(
            parse("dimensions[]=tenant_id", Kind::Events, &jwt).unwrap_err(),
            "tenant_id dimension is not allowed for tenant-scoped requests"
        );
        assert_eq!(
            admin("measures[]=count").unwrap_err(),
            "time[start] and time[end] are required"
        );
        assert_eq!(
            admin("time[start]=&time[end]=2024-01-01T00:00:00Z&measures[]=count").unwrap_err(),
            "time[start] and time[end] are required"
        );
        assert!(
            admin("time[start]=2024-01-01&time[end]=2024-01-02T00:00:00Z")
                .unwrap_err()
                .starts_with("invalid time[start]: ")
        );
        assert!(admin("time[start]=2024-01-01T00:00:00Z&time[end]=nope")
            .unwrap_err()
            .starts_with("invalid time[end]: "));
        assert_eq!(
            admin(&format!("{RANGE}&granularity=2y")).unwrap_err(),
            r#"invalid granularity "2y": must match <number><unit> where unit is one of s,m,h,d,w,M"#
        );
        assert_eq!(
            admin(RANGE).unwrap_err(),
            "at least one measures[] is required"
        );
        assert_eq!(
            admin(&format!("{RANGE}&measures[]=count&measures[]=p99")).unwrap_err(),
            r#"unknown measure "p99""#
        );
        assert_eq!(
            parse(
                &format!("{RANGE}&measures[]=error_rate"),
                Kind::Events,
                &Caller::Admin
            )
            .unwrap_err(),
            r#"unknown measure "error_rate""#
        );
        assert_eq!(
            parse(
                &format!("{RANGE}&measures[]=avg_latency"),
                Kind::Events,
                &Caller::Admin
            )
            .unwrap_err(),
            r#"unknown measure "avg_latency""#
        );
        assert!(admin(&format!(
            "{RANGE}&measures[]=avg_latency&measures[]=p50_latency"
        ))
        .is_ok());
        assert_eq!(
            parse(
                &format!("{RANGE}&measures[]=count&dimensions[]=status"),
                Kind::Events,
                &Caller::Admin
            )
            .unwrap_err(),
            r#"unknown dimension "status""#
        );
        assert_eq!(
            parse(
                &format!("{RANGE}&measures[]=count&filters[tenant_id]=t2"),
                Kind::Events,
                &jwt
            )
            .unwrap_err(),
            "filters[tenant_id] does not match authenticated tenant"
        );
        assert_eq!(
            parse(
                &format!(
                    "{RANGE}&measures[]=count&filters[tenant_id][]=t1&filters[tenant_id][]=t1"
                ),
                Kind::Events,
                &jwt
            )
            .unwrap_err(),
            "filters[tenant_id] does not match authenticated tenant"
        );
        assert_eq!(
            admin(
                "time[start]=2024-01-02T00:00:00Z&time[end]=2024-01-02T00:00:00Z&measures[]=count"
            )
            .unwrap_err(),
            "invalid time range: start must be before end"
        );
        assert_eq!(
            admin("time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-03T00:00:00Z&measures[]=count&granularity=1s")
                .unwrap_err(),
            "query too broad: try fewer dimensions, more filters, or a shorter time range"
        );
    }

    #[test]
    fn a_tenant_jwt_gets_its_filter_injected_or_kept() {
        let jwt = Caller::Tenant("t1".into());
        let request = parse(&format!("{RANGE}&measures[]=count"), Kind::Events, &jwt).unwrap();
        assert_eq!(
            request.filters[&Dimension::TenantId],
            vec!["t1".to_string()]
        );
        let request = parse(
            &format!("{RANGE}&measures[]=count&filters[tenant_id]=t1"),
            Kind::Attempts,
            &jwt,
        )
        .unwrap();
        assert_eq!(
            request.filters[&Dimension::TenantId],
            vec!["t1".to_string()]
        );
        let request = admin(&format!("{RANGE}&measures[]=count")).unwrap();
        assert!(request.filters.is_empty());
    }

    #[test]
    fn arrays_filters_and_buckets() {
        let request = admin(&format!(
            "{RANGE}&measures[0]=count&measures[1]=rate&dimensions=status&dimensions=manual\
             &filters[topic][]=a&filters[topic][]=b&filters[code]=500&filters[nope]=x&granularity=6h"
        ))
        .unwrap();
        assert_eq!(request.measures, vec![Measure::Count, Measure::Rate]);
        assert_eq!(
            request.dimensions,
            vec![Dimension::Status, Dimension::Manual]
        );
        assert_eq!(request.filters.len(), 2);
        assert_eq!(request.filters[&Dimension::Topic], vec!["a", "b"]);
        assert_eq!(request.bucket_starts.len(), 4);
        assert_eq!(request.bounds().len(), 5);
        assert_eq!(request.bucket_seconds(0), 21_600.0);
        // Without a granularity: one bucket, the whole range.
        let request = admin(&format!("{RANGE}&measures[]=rate")).unwrap();
        assert_eq!(request.bounds().len(), 2);
        assert_eq!(request.bucket_seconds(0), 86_400.0);
        // An unaligned start: the first bucket is clipped to it, its label is not.
        let request = admin(
            "time[start]=2024-01-01T00:30:00.5Z&time[end]=2024-01-01T02:00:00Z&measures[]=count&granularity=1h",
        )
        .unwrap();
        let half = 1_704_069_000_500_000_000i64;
        assert_eq!(request.bounds()[0], half);
        assert_eq!(request.bucket_starts[0], 1_704_067_200_000_000_000);
        assert_eq!(request.bucket_seconds(0), 3_600.0);
    }
}
