//! `GET /metrics/events` and `GET /metrics/attempts`: upstream's aggregated counts of stored
//! events and delivery attempts, answered from the store's per-bucket counters.
//!
//! `request` checks the query, `granularity` cuts the range into buckets, the store hands over
//! the counted tuples of each bucket, `aggregate` filters, groups and measures them.

mod aggregate;
mod granularity;
mod request;

use std::time::Instant;

use serde::Serialize;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::Query;
use super::reply::{self, Reply};
use super::AppState;
use aggregate::{DataPoint, Grouping};
pub use request::Kind;
use request::{MetricsRequest, ROW_LIMIT};

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    granularity: Option<String>,
    query_time_ms: u64,
    row_count: usize,
    row_limit: usize,
    truncated: bool,
}

#[derive(Serialize)]
struct MetricsResponse {
    data: Vec<DataPoint>,
    metadata: Metadata,
}

/// `GET /metrics/events` (`Kind::Events`) and `GET /metrics/attempts` (`Kind::Attempts`).
pub fn metrics(
    state: &AppState,
    auth: &Authorized,
    query: &Query,
    kind: Kind,
) -> Result<Reply, ApiError> {
    let started = Instant::now();
    let request = MetricsRequest::parse(query, kind, &auth.caller)?;
    let bounds = request.bounds();
    let mut grouping = Grouping::new(&request);
    match kind {
        Kind::Events => state.store.scan_event_counts(&bounds, |bucket, tuple, n| {
            grouping.add_events(bucket, tuple, n)
        })?,
        Kind::Attempts => state
            .store
            .scan_attempt_counts(&bounds, |bucket, tuple, n| {
                grouping.add_attempts(bucket, tuple, n)
            })?,
    }
    let data = grouping.rows()?;
    let metadata = Metadata {
        granularity: request.granularity.map(|g| g.to_string()),
        query_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        row_count: data.len(),
        row_limit: ROW_LIMIT,
        truncated: false,
    };
    Ok(reply::ok(&MetricsResponse { data, metadata }))
}
