//! `GET /metrics`: the Prometheus text exposition of this server — its counters and
//! histograms, and what is measured at scrape time: the delivery queue (a count of the queue
//! table and a scan of its due rows), the store file's size and the free space of its file
//! system (a `stat` and a `statvfs`), the workers' health and the process metrics.

use super::reply::{self, Reply};
use super::AppState;
use crate::disk_budget::{DiskMeasure, Measure};
use crate::store::STORE_FILE;
use crate::telemetry::scrape::{self, Figures};
use crate::telemetry::text::CONTENT_TYPE;

pub fn scrape(state: &AppState) -> Reply {
    let store = &state.store;
    let data_dir = &state.config.data_dir;
    let disk = DiskMeasure::new(data_dir, &data_dir.join(STORE_FILE));
    let figures = Figures {
        queued: store.queue_len().ok(),
        due: store.queue_due_len(state.clock.now_ms()).ok(),
        data_file_bytes: disk.store_bytes().ok(),
        free_bytes: disk.free_bytes().ok(),
    };
    let body = scrape::render(
        &state.metrics,
        store.writer_stats(),
        &figures,
        &state.liveness.report(),
    );
    reply::text(CONTENT_TYPE, body)
}
