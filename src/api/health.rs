//! `GET /healthz`: the state of the server's workers.

use serde_json::json;

use super::reply::{self, Reply};
use super::AppState;
use crate::time::format_nanos;

pub fn health(state: &AppState) -> Reply {
    reply::ok(&json!({
        "status": "healthy",
        "timestamp": format_nanos(state.clock.now_nanos()),
        "workers": {
            "http-server": {"status": "healthy"},
            "store-writer": {"status": "healthy"},
        }
    }))
}
