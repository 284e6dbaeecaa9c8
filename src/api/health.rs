//! `GET /healthz`: the state of the server's workers, as upstream shapes it — `200` with
//! `"status": "healthy"` while every worker runs, `503` with `"status": "failed"` once one has
//! stopped or is stuck, each worker named with its own status (no error details; the log says
//! why, see `liveness.rs`).

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::reply::{self, Reply};
use super::AppState;
use crate::liveness::WorkerState;
use crate::time::format_nanos;

pub fn health(state: &AppState) -> Reply {
    let report = state.liveness.report();
    let workers: Map<String, Value> = report
        .workers
        .iter()
        .map(|(name, worker)| {
            let status = match worker {
                WorkerState::Healthy => "healthy",
                WorkerState::Stopped | WorkerState::Stuck(_) => "failed",
            };
            ((*name).to_string(), json!({ "status": status }))
        })
        .collect();
    let (status, word) = if report.is_healthy() {
        (StatusCode::OK, "healthy")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failed")
    };
    reply::json(
        status,
        &json!({
            "status": word,
            "timestamp": format_nanos(state.clock.now_nanos()),
            "workers": workers,
        }),
    )
}
