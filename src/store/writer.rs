//! The single writer: a dedicated thread that drains a channel of pending write jobs, applies
//! as many as are waiting inside one redb write transaction, commits it durably (one fsync for
//! the whole group), runs the jobs' after-commit hooks in commit order, and only then answers
//! each caller. A caller that got an answer knows its write is on disk.
//!
//! Under concurrent load the writer may hold a batch for a moment so that more jobs share its
//! commit (`DATA_COMMIT_INTERVAL_MS`): each commit rewrites the pages it touches and syncs, so
//! fewer, larger commits write much less to storage for the same work.
//!
//! A job that fails is isolated from its batch: the transaction is rolled back, the failing
//! job gets its error, and the rest of the batch runs again in a fresh transaction (jobs are
//! re-runnable closures, and nothing of a rolled-back run is visible or announced). A failure to
//! begin or commit the transaction fails every job of the batch.
//!
//! A failure of the data file's storage — a commit that found the file system full, or any other
//! I/O error, in the commit or inside a job — fails the whole batch with
//! [`StoreError::WriteFailed`] (nothing of it is stored: the commit never completed), and the
//! writer then closes the file and opens it again (see `slot.rs`), since redb refuses every
//! later operation on a handle that saw an I/O error. If the file cannot be opened again yet
//! (opening may need to write, on a disk still full), the writer answers every job with
//! [`StoreError::Unavailable`] and tries again every [`REOPEN_INTERVAL`] until it opens: the
//! server recovers by itself once space is free. After a failure for want of space, writes are
//! refused without trying until space is freed (see `space_wait.rs`), so a disk that stays full
//! does not cost a reopen per write. The writer is idle, not busy, while it waits, so a full
//! disk does not read as a stuck writer.
//!
//! The writer reports on itself through [`WriterStats`]: a heartbeat that reads as stopped once
//! the thread has ended and as busy while a batch is being applied and committed (so a batch
//! that never finishes shows as a stuck writer in `/healthz`), histograms of the jobs per
//! commit and of the time each commit took, and a count of batches lost to storage failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::slot::DbSlot;
use super::space_wait::SpaceWait;
use super::StoreError;
use crate::liveness::Heartbeat;
use crate::telemetry::histogram::{Histogram, BATCH_BOUNDS};

/// How many pending jobs one transaction may absorb.
const MAX_BATCH: usize = 4096;
/// Capacity of the job channel; senders wait (back-pressure) when it is full.
pub const CHANNEL_CAPACITY: usize = 16_384;
/// How often the writer tries to open the data file again while it cannot.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(250);

type Hook = Box<dyn FnOnce() + Send>;

/// What a write job sees: the open transaction, and a place to register work that must run
/// only once the transaction is durable (in-memory index updates, waking the dispatcher).
pub struct WriteCtx<'t> {
    pub txn: &'t WriteTransaction,
    hooks: Vec<Hook>,
}

impl WriteCtx<'_> {
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.hooks.push(Box::new(hook));
    }
}

/// A unit of work for the writer. Domain refusals are returned inside `R`, not as errors. A
/// job may be applied more than once (when another job of its batch failed, the batch runs
/// again without it); only the run that commits counts.
pub trait Job: Send {
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError>;
    /// Answers the caller: `Ok` after the commit, or why its write did not happen.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct ClosureJob<F, R> {
    work: F,
    output: Option<R>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for ClosureJob<F, R>
where
    F: FnMut(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        self.output = None;
        self.output = Some((self.work)(ctx)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let answer = match (outcome, self.output) {
            (Ok(()), Some(output)) => Ok(output),
            (Ok(()), None) => Err(StoreError::WriterStopped),
            (Err(error), _) => Err(error),
        };
        // The caller may have gone away (client disconnected); the write still happened.
        let _ = self.reply.send(answer);
    }
}

/// What the writer thread reports about itself.
pub struct WriterStats {
    /// `store-writer`: stopped once the thread ends, busy during each batch.
    pub heartbeat: Heartbeat,
    /// Jobs per committed batch (including jobs that failed and were taken out of it).
    pub batch_jobs: Histogram,
    /// Time from the start of a batch (its first transaction) to its commit and after-commit
    /// hooks, failed attempts of the batch included.
    pub commit_seconds: Histogram,
    /// Batches that failed on the data file's storage (a full disk, an I/O error), and jobs
    /// refused while the file could not be opened again: nothing of them was stored.
    pub storage_failures: AtomicU64,
}

impl WriterStats {
    fn new() -> WriterStats {
        WriterStats {
            heartbeat: Heartbeat::new("store-writer"),
            batch_jobs: Histogram::new(BATCH_BOUNDS, 1.0),
            commit_seconds: Histogram::latency(),
            storage_failures: AtomicU64::new(0),
        }
    }
}

/// The sending side, cloned into every handler.
#[derive(Clone)]
pub struct WriterHandle {
    sender: mpsc::Sender<Box<dyn Job>>,
    /// Least time between the starts of two commits while writers are concurrent, in µs.
    pacing: Arc<AtomicU64>,
    stats: Arc<WriterStats>,
}

/// Holds the writer inside one job until dropped (see [`WriterHandle::stall`]).
pub struct Stall {
    _release: std::sync::mpsc::Sender<()>,
}

impl WriterHandle {
    /// Spaces commits at least `interval` apart while several writers are waiting (see
    /// [`pacing_wait`]); zero commits as soon as the previous commit is done.
    pub fn set_commit_interval(&self, interval: Duration) {
        let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        self.pacing.store(micros, Ordering::Relaxed);
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// A seam for tests of the health check: returns once the writer is inside a job that
    /// does nothing and finishes only when the returned [`Stall`] is dropped, so the writer
    /// reads as busy for as long as the test holds it.
    pub async fn stall(&self) -> Result<Stall, StoreError> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let (entered, inside) = oneshot::channel::<()>();
        let mut entered = Some(entered);
        let writer = self.clone();
        tokio::spawn(async move {
            let _ = writer
                .write(move |_ctx| {
                    if let Some(entered) = entered.take() {
                        let _ = entered.send(());
                    }
                    // Returns when the sender is dropped.
                    let _ = released.lock().map(|r| r.recv());
                    Ok(())
                })
                .await;
        });
        inside.await.map_err(|_| StoreError::WriterStopped)?;
        Ok(Stall { _release: release })
    }

    /// Runs `work` inside the next group commit and returns its output once durable. `work`
    /// may run more than once (see the module header); it must not consume what it captured.
    pub async fn write<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnMut(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(ClosureJob {
            work,
            output: None,
            reply,
        });
        self.sender
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Starts the writer thread. It stops when every `WriterHandle` is dropped.
pub(crate) fn spawn(db: Arc<DbSlot>) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let pacing = Arc::new(AtomicU64::new(0));
    let thread_pacing = pacing.clone();
    let stats = Arc::new(WriterStats::new());
    let thread_stats = stats.clone();
    let running = stats.heartbeat.start();
    let thread = std::thread::Builder::new()
        .name("outpost-writer".into())
        .spawn(move || {
            // Dropped when the thread ends, by returning or by a panic.
            let _running = running;
            run(db, receiver, thread_pacing, &thread_stats)
        })
        .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
    (
        WriterHandle {
            sender,
            pacing,
            stats,
        },
        thread,
    )
}

/// Why a batch did not commit.
enum BatchError {
    /// Job `index` failed; nothing of the batch was committed.
    Job { index: usize, error: StoreError },
    /// The transaction itself could not begin or commit.
    Transaction(StoreError),
}

fn commit_batch(db: &Database, batch: &mut [Box<dyn Job>]) -> Result<Vec<Hook>, BatchError> {
    let mut txn = db
        .begin_write()
        .map_err(|e| BatchError::Transaction(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| BatchError::Transaction(e.into()))?;
    let mut ctx = WriteCtx {
        txn: &txn,
        hooks: Vec::new(),
    };
    for (index, job) in batch.iter_mut().enumerate() {
        job.apply(&mut ctx).map_err(|error| {
            if error.is_storage_failure() {
                BatchError::Transaction(error)
            } else {
                BatchError::Job { index, error }
            }
        })?;
    }
    let hooks = std::mem::take(&mut ctx.hooks);
    drop(ctx);
    txn.commit()
        .map_err(|e| BatchError::Transaction(e.into()))?;
    Ok(hooks)
}

fn drain(receiver: &mut mpsc::Receiver<Box<dyn Job>>, batch: &mut Vec<Box<dyn Job>>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Commits a batch, taking out (and answering) each job that fails until the rest commits. The
/// writer reads as busy meanwhile; the batch is counted in `stats`, and the busy mark ends,
/// before the committed jobs' callers are answered, so a caller that has its answer sees its
/// commit counted and the writer idle. Returns the storage failure that failed the batch, if
/// one did: the handle must then be opened again.
fn commit_isolating_failures(
    slot: &DbSlot,
    db: &Database,
    mut batch: Vec<Box<dyn Job>>,
    stats: &WriterStats,
) -> Option<StoreError> {
    let began = Instant::now();
    let jobs = batch.len() as u64;
    let busy = stats.heartbeat.busy();
    let done = move || {
        drop(busy);
        stats.commit_seconds.observe_duration(began.elapsed());
        stats.batch_jobs.observe(jobs);
    };
    loop {
        match commit_batch(db, &mut batch) {
            Ok(hooks) => {
                for hook in hooks {
                    hook();
                }
                done();
                for job in batch {
                    job.finish(Ok(()));
                }
                return None;
            }
            Err(BatchError::Job { index, error }) => {
                tracing::error!(%error, "a write failed and was rolled back; the rest of its batch runs again");
                let failed = batch.remove(index);
                if batch.is_empty() {
                    done();
                    failed.finish(Err(error));
                    return None;
                }
                failed.finish(Err(error));
            }
            Err(BatchError::Transaction(error)) => {
                tracing::error!(%error, jobs = batch.len(), "write batch failed; nothing in it was committed");
                let reason = error.to_string();
                done();
                if error.is_storage_failure() {
                    // Noted before anyone is answered: a reader refused by the failed handle
                    // meanwhile can tell why.
                    slot.note_failure(&error);
                    stats.storage_failures.fetch_add(1, Ordering::Relaxed);
                    let disk_full = error.is_disk_full();
                    for job in batch {
                        job.finish(Err(StoreError::WriteFailed {
                            disk_full,
                            reason: reason.clone(),
                        }));
                    }
                    return Some(error);
                }
                for job in batch {
                    job.finish(Err(StoreError::BatchFailed(reason.clone())));
                }
                return None;
            }
        }
    }
}

fn run(
    db: Arc<DbSlot>,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    pacing: Arc<AtomicU64>,
    stats: &WriterStats,
) {
    let mut previous: Option<(Instant, usize)> = None;
    let mut space = SpaceWait::new(db.path());
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        drain(&mut receiver, &mut batch);
        let interval = Duration::from_micros(pacing.load(Ordering::Relaxed));
        if let Some(wait) = pacing_wait(previous, interval, batch.len(), Instant::now()) {
            std::thread::sleep(wait);
            drain(&mut receiver, &mut batch);
        }
        previous = Some((Instant::now(), batch.len()));
        if let Some(StoreError::NoSpace { reason }) = space.refusal() {
            stats.storage_failures.fetch_add(1, Ordering::Relaxed);
            for job in batch {
                job.finish(Err(StoreError::NoSpace {
                    reason: reason.clone(),
                }));
            }
            continue;
        }
        let failure = match db.current() {
            Ok(handle) => commit_isolating_failures(&db, &handle, batch, stats),
            Err(error) => {
                // The file is closed (opening it again ended without success): refused as is.
                stats.storage_failures.fetch_add(1, Ordering::Relaxed);
                let (disk_full, reason) = match &error {
                    StoreError::Unavailable { disk_full, reason } => (*disk_full, reason.clone()),
                    other => (other.is_disk_full(), other.to_string()),
                };
                for job in batch {
                    job.finish(Err(StoreError::Unavailable {
                        disk_full,
                        reason: reason.clone(),
                    }));
                }
                Some(error)
            }
        };
        space.tried(failure.as_ref());
        if let Some(failure) = failure {
            if !reopen_until_open(&db, &mut receiver, stats, failure) {
                return;
            }
        }
    }
}

/// Opens the data file again after `failure`, answering every job that arrives meanwhile with
/// [`StoreError::Unavailable`] and trying again every [`REOPEN_INTERVAL`]. Returns false when
/// every handle is gone (the server is stopping) before the file opened.
fn reopen_until_open(
    db: &DbSlot,
    receiver: &mut mpsc::Receiver<Box<dyn Job>>,
    stats: &WriterStats,
    failure: StoreError,
) -> bool {
    let mut because = failure;
    let mut logged = false;
    loop {
        match db.reopen(&because) {
            Ok(()) => {
                if logged {
                    tracing::info!("the data file is open again after a failed write");
                } else {
                    tracing::debug!("the data file is open again after a failed write");
                }
                return true;
            }
            Err(error) => {
                if !logged {
                    tracing::error!(
                        %error,
                        "cannot open the data file again after a failed write; retrying until \
                         it opens (reads and writes are refused meanwhile)"
                    );
                    logged = true;
                }
                because = error;
            }
        }
        let until = Instant::now() + REOPEN_INTERVAL;
        while Instant::now() < until {
            loop {
                match receiver.try_recv() {
                    Ok(job) => {
                        stats.storage_failures.fetch_add(1, Ordering::Relaxed);
                        job.finish(Err(db.current().err().unwrap_or(StoreError::WriterStopped)));
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return false,
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How long to hold a batch before committing it: only while writers are concurrent (the
/// previous commit carried more than one job, so others are likely to arrive), until
/// `interval` after the previous commit began. A lone or sequential writer never waits, and
/// neither does a full batch.
fn pacing_wait(
    previous: Option<(Instant, usize)>,
    interval: Duration,
    batch_len: usize,
    now: Instant,
) -> Option<Duration> {
    let (started, jobs) = previous?;
    if jobs < 2 || batch_len >= MAX_BATCH {
        return None;
    }
    let due = started + interval;
    (now < due).then(|| due - now)
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    #[test]
    fn only_concurrent_writers_wait_and_only_until_the_interval_is_over() {
        let start = Instant::now();
        let interval = Duration::from_millis(5);
        let at = |ms| start + Duration::from_millis(ms);
        // No previous commit, or a lone writer: no wait.
        assert_eq!(pacing_wait(None, interval, 3, at(1)), None);
        assert_eq!(pacing_wait(Some((start, 1)), interval, 1, at(1)), None);
        // Concurrent writers: wait until 5 ms after the previous commit began.
        assert_eq!(
            pacing_wait(Some((start, 4)), interval, 2, at(1)),
            Some(Duration::from_millis(4))
        );
        assert_eq!(pacing_wait(Some((start, 4)), interval, 2, at(5)), None);
        assert_eq!(pacing_wait(Some((start, 4)), interval, 2, at(9)), None);
        // A full batch, or no interval: no wait.
        assert_eq!(
            pacing_wait(Some((start, 4)), interval, MAX_BATCH, at(1)),
            None
        );
        assert_eq!(
            pacing_wait(Some((start, 4)), Duration::ZERO, 2, at(1)),
            None
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc as std_mpsc;

    use redb::TableDefinition;

    use super::*;

    const ROWS: TableDefinition<&str, u64> = TableDefinition::new("rows");

    fn open_file(path: &std::path::Path) -> Result<Database, StoreError> {
        Ok(Database::create(path)?)
    }

    fn slot(dir: &tempfile::TempDir) -> Arc<DbSlot> {
        let path = dir.path().join("w.redb");
        let db = open_file(&path).expect("db");
        Arc::new(DbSlot::new(&path, db, open_file))
    }

    fn open() -> (tempfile::TempDir, Arc<DbSlot>, WriterHandle) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = slot(&dir);
        let (writer, _thread) = spawn(db.clone());
        (dir, db, writer)
    }

    fn read(db: &DbSlot, key: &str) -> Option<u64> {
        let txn = db.begin_read().ok()?;
        let table = txn.open_table(ROWS).ok()?;
        table.get(key).ok()?.map(|v| v.value())
    }

    /// Holds the writer inside a job until released, so the jobs sent meanwhile form one batch.
    async fn hold_writer(
        writer: &WriterHandle,
    ) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, released) = std_mpsc::channel::<()>();
        let (entered, is_inside) = tokio::sync::oneshot::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let mut entered = Some(entered);
        let writer = writer.clone();
        let gate = tokio::spawn(async move {
            writer
                .write(move |_ctx| {
                    if let Some(entered) = entered.take() {
                        let _ = entered.send(());
                    }
                    let _ = released.lock().map(|r| r.recv());
                    Ok(())
                })
                .await
                .expect("gate job");
        });
        is_inside.await.expect("writer entered the gate job");
        (release, gate)
    }

    #[tokio::test]
    async fn a_batch_answers_every_caller_after_its_commit() {
        let (_dir, db, writer) = open();
        let (release, gate) = hold_writer(&writer).await;
        let mut callers = Vec::new();
        for i in 0..50u64 {
            let writer = writer.clone();
            callers.push(tokio::spawn(async move {
                writer
                    .write(move |ctx| {
                        ctx.txn
                            .open_table(ROWS)?
                            .insert(format!("k{i}").as_str(), i)?;
                        Ok(i * 2)
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release.send(()).expect("release");
        gate.await.expect("gate");
        for (i, caller) in callers.into_iter().enumerate() {
            let answer = caller.await.expect("joined").expect("written");
            assert_eq!(answer, i as u64 * 2);
            // Answered means committed: a fresh reader sees it.
            assert_eq!(read(&db, &format!("k{i}")), Some(i as u64));
        }
    }

    #[tokio::test]
    async fn a_failing_job_fails_alone_and_leaves_nothing_behind() {
        let (_dir, db, writer) = open();
        let (release, gate) = hold_writer(&writer).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let hooks = Arc::new(AtomicUsize::new(0));
        let send = |key: &'static str, fail: bool| {
            let writer = writer.clone();
            let runs = runs.clone();
            let hooks = hooks.clone();
            tokio::spawn(async move {
                writer
                    .write(move |ctx| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        ctx.txn.open_table(ROWS)?.insert(key, 1)?;
                        let hooks = hooks.clone();
                        ctx.after_commit(move || {
                            hooks.fetch_add(1, Ordering::SeqCst);
                        });
                        if fail {
                            return Err(StoreError::Corrupt {
                                table: "rows",
                                reason: "refused on purpose".into(),
                            });
                        }
                        Ok(key)
                    })
                    .await
            })
        };
        let first = send("a", false);
        let failing = send("b", true);
        let last = send("c", false);
        // Let all three reach the channel before the writer drains it into one batch.
        while writer.sender.capacity() > CHANNEL_CAPACITY - 3 {
            tokio::task::yield_now().await;
        }
        release.send(()).expect("release");
        gate.await.expect("gate");
        assert_eq!(first.await.expect("joined").expect("a"), "a");
        assert!(matches!(
            failing.await.expect("joined"),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(last.await.expect("joined").expect("c"), "c");
        assert_eq!(read(&db, "a"), Some(1));
        assert_eq!(
            read(&db, "b"),
            None,
            "the failed job's write must not commit"
        );
        assert_eq!(read(&db, "c"), Some(1));
        // a and b ran once in the rolled-back attempt, a and c again in the committed one:
        // they shared a batch. Only the committed run's hooks ran, once each.
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(hooks.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_writer_reports_its_batches_and_its_liveness() {
        use crate::liveness::{Liveness, WorkerState};

        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, thread) = spawn(slot(&dir));
        let stats = writer.stats().clone();
        let liveness = Liveness::new(vec![stats.heartbeat.clone()]);
        liveness.set_stuck_after(Duration::ZERO);
        assert!(liveness.report().is_healthy(), "idle is healthy");
        for i in 0..3u64 {
            writer
                .write(move |ctx| {
                    ctx.txn.open_table(ROWS)?.insert("k", i)?;
                    Ok(())
                })
                .await
                .expect("write");
        }
        let batches = stats.batch_jobs.snapshot();
        assert_eq!((batches.count, batches.sum), (3, 3.0));
        assert_eq!(stats.commit_seconds.snapshot().count, 3);
        // Inside a batch the writer is busy: stuck, with a zero threshold.
        let (release, gate) = hold_writer(&writer).await;
        assert!(matches!(
            liveness.report().workers[0],
            ("store-writer", WorkerState::Stuck(_))
        ));
        release.send(()).expect("release");
        gate.await.expect("gate");
        assert!(liveness.report().is_healthy());
        // Once every handle is gone the thread ends, and reads as stopped.
        drop(writer);
        thread.join().expect("writer thread");
        assert_eq!(
            liveness.report().workers,
            [("store-writer", WorkerState::Stopped)]
        );
    }

    #[tokio::test]
    async fn hooks_run_once_after_the_commit_is_durable() {
        let (_dir, db, writer) = open();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..3u64 {
            let db = db.clone();
            let seen = seen.clone();
            writer
                .write(move |ctx| {
                    ctx.txn.open_table(ROWS)?.insert("k", i)?;
                    let db = db.clone();
                    let seen = seen.clone();
                    ctx.after_commit(move || {
                        // A reader started inside the hook already sees the write.
                        let visible = read(&db, "k");
                        if let Ok(mut seen) = seen.lock() {
                            seen.push(visible);
                        }
                    });
                    Ok(())
                })
                .await
                .expect("write");
        }
        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen, [Some(0), Some(1), Some(2)]);
    }

    fn no_space() -> StoreError {
        StoreError::Storage(redb::Error::Io(std::io::Error::from_raw_os_error(28)))
    }

    async fn put(writer: &WriterHandle, key: &'static str) -> Result<(), StoreError> {
        writer
            .write(move |ctx| {
                ctx.txn.open_table(ROWS)?.insert(key, 1)?;
                Ok(())
            })
            .await
    }

    #[tokio::test]
    async fn a_storage_failure_fails_the_whole_batch_and_the_file_is_opened_again() {
        let (_dir, db, writer) = open();
        put(&writer, "before").await.expect("write");
        let first = Arc::downgrade(&db.current().expect("open"));
        let (release, gate) = hold_writer(&writer).await;
        let healthy = tokio::spawn({
            let writer = writer.clone();
            async move { put(&writer, "healthy").await }
        });
        let failing = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|ctx| {
                        ctx.txn.open_table(ROWS)?.insert("failing", 1)?;
                        Err::<(), _>(no_space())
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        release.send(()).expect("release");
        gate.await.expect("gate");
        // Neither job of the batch is stored; both are told the disk is full.
        for answer in [
            healthy.await.expect("joined"),
            failing.await.expect("joined"),
        ] {
            let error = answer.expect_err("the batch failed");
            assert!(
                matches!(
                    error,
                    StoreError::WriteFailed {
                        disk_full: true,
                        ..
                    }
                ),
                "{error:?}"
            );
            assert!(
                error.to_string().starts_with("the disk is full: "),
                "{error}"
            );
        }
        // The failed handle is closed and the file opened again (callers are answered first).
        let deadline = Instant::now() + Duration::from_secs(20);
        while first.upgrade().is_some() || !db.is_open() {
            assert!(Instant::now() < deadline, "the file was not opened again");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Nothing of the batch is stored; what was committed before is there.
        assert_eq!(read(&db, "healthy"), None);
        assert_eq!(read(&db, "failing"), None);
        assert_eq!(read(&db, "before"), Some(1));
        // Writes are held off until space is freed or the hold is over, then go through.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match put(&writer, "after").await {
                Ok(()) => break,
                Err(error) => {
                    assert!(matches!(error, StoreError::NoSpace { .. }), "{error:?}");
                    assert!(Instant::now() < deadline, "writes never resumed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        assert_eq!(read(&db, "after"), Some(1));
    }

    /// How many more times [`flaky_open`] fails (only one test uses it).
    static OPEN_FAILURES: AtomicUsize = AtomicUsize::new(0);

    fn flaky_open(path: &std::path::Path) -> Result<Database, StoreError> {
        let left = OPEN_FAILURES.load(Ordering::SeqCst);
        if left > 0 {
            OPEN_FAILURES.store(left - 1, Ordering::SeqCst);
            return Err(no_space());
        }
        open_file(path)
    }

    #[tokio::test]
    async fn writes_are_refused_until_the_file_opens_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.redb");
        let db = Arc::new(DbSlot::new(
            &path,
            open_file(&path).expect("db"),
            flaky_open,
        ));
        let (writer, _thread) = spawn(db.clone());
        put(&writer, "before").await.expect("write");
        OPEN_FAILURES.store(8, Ordering::SeqCst);
        let error = writer
            .write(|_ctx| Err::<(), _>(no_space()))
            .await
            .expect_err("failed");
        assert!(matches!(error, StoreError::WriteFailed { .. }), "{error:?}");
        // While the file cannot be opened, reads and writes say why.
        let error = put(&writer, "meanwhile").await.expect_err("refused");
        assert!(
            matches!(
                error,
                StoreError::Unavailable {
                    disk_full: true,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_storage_failure() && error.is_disk_full());
        assert!(db.begin_read().is_err());
        // It opens again by itself; nothing refused was stored.
        let deadline = Instant::now() + Duration::from_secs(30);
        while put(&writer, "after").await.is_err() {
            assert!(Instant::now() < deadline, "the file never opened again");
            tokio::time::sleep(REOPEN_INTERVAL).await;
        }
        assert_eq!(OPEN_FAILURES.load(Ordering::SeqCst), 0);
        assert_eq!(read(&db, "before"), Some(1));
        assert_eq!(read(&db, "meanwhile"), None);
        assert_eq!(read(&db, "after"), Some(1));
    }
}
