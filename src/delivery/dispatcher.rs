//! The dispatcher: an in-memory ordered set of due queue keys (rebuilt from the queue table at
//! start), a loop that sleeps until the earliest due time or until woken by a commit, and
//! delivery workers bounded globally and per destination. A delivery's outcome goes back to the
//! writer as one commit; until then its queue row stays on disk, so a crash redelivers it. An
//! outcome the data file cannot take for now (the disk is full) is kept in memory and committed
//! once it can, without delivering again.
//! Each attempt is counted in the server's metrics (by destination type, outcome and time),
//! and the dispatch loop holds the `dispatcher` heartbeat for as long as it runs.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

use super::provider::Providers;
use super::target_cache::TargetCache;
use crate::clock::Clock;
use crate::liveness::Heartbeat;
use crate::model::event::{Attempt, AttemptStatus, DeliveryTask};
use crate::model::identifiers::{DestinationId, TenantId};
use crate::model::ids::{IdError, IdGenerator};
use crate::model::retry::RetryPolicy;
use crate::operator_events::OperatorTopic;
use crate::store::Raised;
use crate::store::{
    AttemptContext, DeliverySnapshot, Outcome, QueueKey, QueueListener, Store, StoreError,
};
use crate::telemetry::Metrics;

/// How long to wait before retrying a task whose outcome could not be committed.
const STORE_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between tries of committing an outcome kept while the disk is full.
const KEPT_OUTCOME_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Prepared targets kept per generation of the target cache (at most twice this in all).
const TARGET_CACHE_CAPACITY: usize = 4096;

pub struct DispatcherSettings {
    pub max_concurrency: usize,
    pub max_per_destination: usize,
    pub retry: RetryPolicy,
    pub ids: IdGenerator,
    /// Where attempts are counted.
    pub metrics: Arc<Metrics>,
}

#[derive(Default)]
struct DestinationGate {
    in_flight: usize,
    waiting: VecDeque<QueueKey>,
}

struct Shared {
    due: Mutex<BTreeSet<QueueKey>>,
    wake: Notify,
    gates: Mutex<HashMap<(TenantId, DestinationId), DestinationGate>>,
    /// Keys waiting for a slot of a full destination. Bounded: while it is at
    /// `max_concurrency`, the loop stops taking keys, so a backlog for one slow destination
    /// stays in the due set instead of being read and parked row by row.
    parked: AtomicUsize,
    slots: Arc<Semaphore>,
    store: Store,
    providers: Providers,
    targets: TargetCache,
    clock: Clock,
    settings: DispatcherSettings,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QueueListener for Shared {
    fn enqueued(&self, keys: &[QueueKey]) {
        lock(&self.due).extend(keys.iter().copied());
        self.wake.notify_one();
    }
}

/// Handle to the running dispatcher.
pub struct Dispatcher {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<JoinSet<()>>,
    heartbeat: Heartbeat,
}

impl Dispatcher {
    /// Registers with the store, loads every queued row as due, and starts dispatching.
    pub fn start(
        store: Store,
        providers: Providers,
        clock: Clock,
        settings: DispatcherSettings,
    ) -> Result<Dispatcher, StoreError> {
        let shared = Arc::new(Shared {
            due: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            gates: Mutex::new(HashMap::new()),
            parked: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(settings.max_concurrency)),
            store: store.clone(),
            providers,
            targets: TargetCache::new(TARGET_CACHE_CAPACITY),
            clock,
            settings,
        });
        let listener: Arc<dyn QueueListener> = shared.clone();
        store.set_queue_listener(&listener);
        let keys = store.queue_keys()?;
        tracing::info!(queued = keys.len(), "delivery queue loaded");
        shared.enqueued(&keys);
        let (stop, stopped) = watch::channel(false);
        let heartbeat = Heartbeat::new("dispatcher");
        let running = heartbeat.start();
        let task = tokio::spawn(async move {
            // Dropped when the loop ends, panics or is aborted.
            let _running = running;
            run(shared, stopped).await
        });
        Ok(Dispatcher {
            stop,
            task,
            heartbeat,
        })
    }

    /// The dispatch loop's heartbeat: stopped once the loop has ended.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Aborts the dispatch loop (a seam for tests of the health check).
    pub fn abort_handle(&self) -> AbortHandle {
        self.task.abort_handle()
    }

    /// Stops dispatching and waits up to `deadline` for in-flight deliveries to finish. Any
    /// still running stay in the on-disk queue and are delivered again at the next start.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let Ok(mut workers) = self.task.await else {
            return;
        };
        if workers.is_empty() {
            tracing::info!("no deliveries in flight");
        } else {
            tracing::info!(
                "waiting for {} in-flight deliveries for at most {} s",
                workers.len(),
                deadline.as_secs_f64()
            );
        }
        let drained = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, drained).await.is_err() {
            tracing::warn!(
                in_flight = workers.len(),
                "deliveries still running at the shutdown deadline are abandoned and stay queued"
            );
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
    }
}

/// The dispatch loop. Returns the set of still-running workers when told to stop.
async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    loop {
        while workers.try_join_next().is_some() {}
        if *stopped.borrow() {
            return workers;
        }
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let now = shared.clock.now_ms().max(0) as u64;
        let next = lock(&shared.due).first().copied();
        match next {
            None => {
                tokio::select! {
                    _ = &mut woken => {}
                    _ = stopped.changed() => return workers,
                }
            }
            Some(key) if key.due_ms > now => {
                let due_ms = i64::try_from(key.due_ms).unwrap_or(i64::MAX);
                tokio::select! {
                    _ = shared.clock.sleep_until_ms(due_ms) => {}
                    _ = &mut woken => {}
                    _ = stopped.changed() => return workers,
                }
            }
            Some(_) if shared.parked.load(Ordering::Acquire) >= shared.settings.max_concurrency => {
                // Every slot a parked key waits for is busy; a finishing delivery wakes us.
                tokio::select! {
                    _ = &mut woken => {}
                    _ = stopped.changed() => return workers,
                }
            }
            Some(_) => {
                let permit = tokio::select! {
                    permit = shared.slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return workers,
                    },
                    _ = stopped.changed() => return workers,
                };
                let now = shared.clock.now_ms().max(0) as u64;
                let key = {
                    let mut due = lock(&shared.due);
                    match due.first() {
                        Some(first) if first.due_ms <= now => due.pop_first(),
                        _ => None,
                    }
                };
                if let Some(key) = key {
                    workers.spawn(work(shared.clone(), key, permit));
                }
            }
        }
    }
}

/// Runs one queue row to its committed outcome, respecting the per-destination limit.
async fn work(shared: Arc<Shared>, key: QueueKey, permit: OwnedSemaphorePermit) {
    match shared.store.delivery_snapshot(key) {
        Ok(Some(snapshot)) => {
            let gate_key = (
                snapshot.task.tenant_id.clone(),
                snapshot.task.destination_id.clone(),
            );
            let admitted = {
                let mut gates = lock(&shared.gates);
                let gate = gates.entry(gate_key.clone()).or_default();
                if gate.in_flight >= shared.settings.max_per_destination {
                    gate.waiting.push_back(key);
                    shared.parked.fetch_add(1, Ordering::AcqRel);
                    false
                } else {
                    gate.in_flight += 1;
                    true
                }
            };
            if admitted {
                let step = attempt(&shared, key, snapshot).await;
                // The destination's slot frees as soon as its HTTP exchange is over; the
                // commit that follows does not hold it.
                release_gate(&shared, gate_key);
                if let Err(error) = commit(&shared, key, step).await {
                    tracing::error!(%error, "delivery postponed; will retry");
                    retry_later(&shared, key);
                }
            }
        }
        Ok(None) => {} // cancelled or replaced while it waited
        Err(error) => {
            // The row stays on disk; the data file may be reopening after a failed write.
            tracing::error!(%error, "could not read a queued delivery; will retry");
            retry_later(&shared, key);
        }
    }
    drop(permit);
}

/// Puts a key whose row is still on disk back into the due set after [`STORE_FAILURE_BACKOFF`].
/// Its outcome was not committed, so the attempt is made again (at least once delivery) with the
/// same attempt number and retry state.
fn retry_later(shared: &Arc<Shared>, key: QueueKey) {
    let retry = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(STORE_FAILURE_BACKOFF).await;
        retry.enqueued(&[key]);
    });
}

/// Frees a destination slot and hands every key that waited for this destination back to the
/// due set. Returning them all (not one) keeps the dispatcher live: a destination with waiting
/// keys always has a delivery in flight whose release will return them.
fn release_gate(shared: &Shared, gate_key: (TenantId, DestinationId)) {
    let returned: Vec<QueueKey> = {
        let mut gates = lock(&shared.gates);
        let Some(gate) = gates.get_mut(&gate_key) else {
            return;
        };
        gate.in_flight = gate.in_flight.saturating_sub(1);
        let returned: Vec<QueueKey> = gate.waiting.drain(..).collect();
        if gate.in_flight == 0 {
            gates.remove(&gate_key);
        }
        returned
    };
    if !returned.is_empty() {
        shared.parked.fetch_sub(returned.len(), Ordering::AcqRel);
        shared.enqueued(&returned);
    }
}

/// What a delivery leaves to commit.
enum Step {
    /// The event, the destination or its enabled state is gone: remove the row, no attempt.
    Drop(DeliveryTask),
    Record(Box<Outcome>),
}

/// Why a due row was put back for a later try (its queue row stays on disk either way).
#[derive(Debug, thiserror::Error)]
enum Postponed {
    #[error("could not commit a delivery outcome: {0}")]
    Store(#[from] StoreError),
    #[error("could not make an attempt id, nothing was delivered: {0}")]
    AttemptId(#[from] IdError),
}

/// Makes the delivery attempt (if the task still has somewhere to go) and prepares its outcome.
/// The attempt id is made first: without one the outcome could not be recorded, and delivering
/// anyway would only send the event again at the next try.
async fn attempt(
    shared: &Shared,
    key: QueueKey,
    snapshot: DeliverySnapshot,
) -> Result<Step, IdError> {
    let DeliverySnapshot {
        task,
        event,
        destination,
    } = snapshot;
    let Some(destination) = destination.filter(|d| d.is_enabled()) else {
        shared.targets.forget(&task.tenant_id, &task.destination_id);
        return Ok(Step::Drop(task));
    };
    let Some(event) = event else {
        return Ok(Step::Drop(task));
    };
    let target = shared.targets.target(&destination, &shared.providers);
    let id = shared
        .settings
        .ids
        .attempt_id(shared.clock.now_ms().max(0) as u64)?;
    let started = shared.clock.now_nanos();
    let began = Instant::now();
    let outcome = target.deliver(&event, started).await;
    shared
        .settings
        .metrics
        .delivery(&destination.kind, outcome.success, began.elapsed());
    let now_ms = shared.clock.now_ms();
    let attempt = Attempt {
        id,
        tenant_id: task.tenant_id.clone(),
        event_id: task.event_id.clone(),
        destination_id: task.destination_id.clone(),
        destination_type: destination.kind.clone(),
        attempt_number: task.attempt_number,
        manual: task.manual,
        status: if outcome.success {
            AttemptStatus::Success
        } else {
            AttemptStatus::Failed
        },
        time_nanos: shared.clock.now_nanos(),
        code: outcome.code,
        response_data: outcome.response_data.map(|v| v.to_string()),
        topic: event.topic.clone(),
    };
    tracing::debug!(
        event = %attempt.event_id,
        destination = %attempt.destination_id,
        tenant = %attempt.tenant_id,
        destination_type = %attempt.destination_type,
        attempt = attempt.attempt_number,
        success = outcome.success,
        code = %attempt.code,
        duration_ms = (attempt.time_nanos - started) as f64 / 1e6,
        "delivery attempt"
    );
    let retry_after_ms = if outcome.success {
        None
    } else {
        shared
            .settings
            .retry
            .next_delay_ms(task.attempt_number, event.eligible_for_retry)
    };
    Ok(Step::Record(Box::new(Outcome {
        key,
        task,
        attempt,
        retry_after_ms,
        now_ms,
        context: Some(Box::new(AttemptContext { event, destination })),
    })))
}

/// Commits what a delivery left: the outcome (attempt, row removal, next retry) in one
/// transaction, or the row's removal. An outcome the data file could not take (the disk is
/// full) is kept and committed again later by a task of its own (see [`commit_later`]), so the
/// delivery is not made again and this worker's slot frees for the next one.
async fn commit(
    shared: &Arc<Shared>,
    key: QueueKey,
    step: Result<Step, IdError>,
) -> Result<(), Postponed> {
    match step? {
        Step::Drop(task) => shared.store.drop_task(key, task).await?,
        Step::Record(outcome) => {
            let outcome = Arc::new(*outcome);
            match shared.store.record_shared_outcome(outcome.clone()).await {
                Ok(recorded) => count_alerts(&shared.settings.metrics, &recorded.raised),
                Err(error) if error.is_storage_failure() => {
                    tracing::warn!(
                        %error,
                        "a delivery's outcome cannot be recorded yet; it is kept and recorded \
                         once the data file can be written"
                    );
                    tokio::spawn(commit_later(shared.clone(), outcome));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(())
}

/// Commits a kept outcome again after [`STORE_FAILURE_BACKOFF`], doubling the wait up to
/// [`KEPT_OUTCOME_MAX_BACKOFF`] while the data file still cannot take it. Its queue row stays
/// on disk meanwhile, so a restart before it commits delivers the event again (at least once);
/// the row's retry state only changes with the commit.
async fn commit_later(shared: Arc<Shared>, outcome: Arc<Outcome>) {
    let mut wait = STORE_FAILURE_BACKOFF;
    loop {
        tokio::time::sleep(wait).await;
        match shared.store.record_shared_outcome(outcome.clone()).await {
            Ok(recorded) => {
                count_alerts(&shared.settings.metrics, &recorded.raised);
                return;
            }
            Err(error) if error.is_storage_failure() => {
                wait = (wait * 2).min(KEPT_OUTCOME_MAX_BACKOFF);
            }
            Err(error) => {
                tracing::error!(%error, "a kept delivery outcome could not be recorded; the delivery is made again");
                retry_later(&shared, outcome.key);
                return;
            }
        }
    }
}

/// Counts what an attempt raised in the Prometheus metrics.
fn count_alerts(metrics: &Metrics, raised: &Raised) {
    for alert in &raised.alerts {
        match alert {
            OperatorTopic::ConsecutiveFailure => metrics.alert_fired("consecutive_failure"),
            OperatorTopic::ExhaustedRetries => metrics.alert_fired("exhausted_retries"),
            _ => {}
        }
    }
    if raised.disabled {
        metrics.destination_auto_disabled();
    }
}

#[cfg(test)]
mod tests;
