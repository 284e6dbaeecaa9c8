//! One scrape of `/metrics`: the registry's counters, the writer's histograms, the figures read
//! from the store and the file system at this moment, the workers' health and the process
//! metrics, in one text exposition.

use super::process;
use super::text::{Exposition, Kind};
use super::Metrics;
use crate::liveness::{Report, WorkerState};
use crate::store::writer::WriterStats;

/// What is measured at scrape time; a figure that could not be read is left out.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Delivery tasks queued on disk.
    pub queued: Option<u64>,
    /// Queued delivery tasks due now or earlier.
    pub due: Option<u64>,
    /// Size of the store file.
    pub data_file_bytes: Option<u64>,
    /// Bytes available on the file system holding the data directory.
    pub free_bytes: Option<u64>,
}

/// The whole exposition.
pub fn render(
    metrics: &Metrics,
    writer: &WriterStats,
    figures: &Figures,
    health: &Report,
) -> String {
    let mut out = Exposition::new();
    metrics.expose(&mut out);

    const BATCH: &str = "outpost_writer_batch_jobs";
    out.family(
        BATCH,
        Kind::Histogram,
        "Write jobs per store commit (the writer's group commit).",
    );
    out.histogram(BATCH, &[], &writer.batch_jobs.snapshot());
    const COMMIT: &str = "outpost_writer_commit_duration_seconds";
    out.family(
        COMMIT,
        Kind::Histogram,
        "Time one store commit took, from its transaction's start to its durable commit, in \
         seconds.",
    );
    out.histogram(COMMIT, &[], &writer.commit_seconds.snapshot());
    out.single(
        "outpost_writer_storage_failures_total",
        Kind::Counter,
        "Write batches that failed on the data file's storage (a full disk, an I/O error), and \
         jobs refused while it was being opened again; nothing of them was stored.",
        writer
            .storage_failures
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );

    let gauges = [
        (
            "outpost_queue_depth",
            "Delivery tasks queued on disk (first attempts and scheduled retries).",
            figures.queued,
        ),
        (
            "outpost_queue_due",
            "Queued delivery tasks due now or earlier.",
            figures.due,
        ),
        (
            "outpost_data_file_bytes",
            "Size of the store file in bytes.",
            figures.data_file_bytes,
        ),
        (
            "outpost_data_filesystem_free_bytes",
            "Bytes available to outpost on the file system holding DATA_DIR.",
            figures.free_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            out.single(name, Kind::Gauge, help, value as f64);
        }
    }

    const WORKERS: &str = "outpost_worker_healthy";
    out.family(
        WORKERS,
        Kind::Gauge,
        "1 while a worker is running and not stuck, 0 otherwise (as /healthz reports it).",
    );
    for (name, state) in &health.workers {
        let healthy = f64::from(u8::from(*state == WorkerState::Healthy));
        out.sample(WORKERS, &[("worker", name)], healthy);
    }

    process::expose(&mut out);
    out.finish()
}
