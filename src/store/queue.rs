//! The on-disk delivery queue: rows keyed by `(due_at_ms, seq)` that stay until the outcome of
//! their delivery is committed. Recording an outcome is one transaction: the attempt, the row's
//! removal, and (after a retryable failure) the next row with its due time, replacing any other
//! pending automatic retry of the same (event, destination).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use redb::{ReadableTable, ReadableTableMetadata, Table};

use super::outcome_effects::{self, AttemptContext, Raised};
use super::tables::{self, QueueKey};
use super::writer::WriteCtx;
use super::{codec, log_records, Store, StoreError};
use crate::model::destination::Destination;
use crate::model::event::{Attempt, AttemptStatus, DeliveryTask, Event};

/// Told about queue rows after the commit that created them.
pub trait QueueListener: Send + Sync {
    fn enqueued(&self, keys: &[QueueKey]);
}

/// State shared between the store and its write jobs.
#[derive(Default)]
pub struct QueueShared {
    seq: AtomicU64,
    /// Weak, so the dispatcher (which holds the store) and the store don't keep each other alive.
    listener: OnceLock<Weak<dyn QueueListener>>,
}

impl QueueShared {
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn announce(&self, keys: &[QueueKey]) {
        if let Some(listener) = self.listener.get().and_then(Weak::upgrade) {
            listener.enqueued(keys);
        }
    }
}

/// A queued task with the records it refers to, as of one read snapshot.
pub struct DeliverySnapshot {
    pub task: DeliveryTask,
    pub event: Option<Event>,
    pub destination: Option<Destination>,
}

/// What a finished delivery commits.
pub struct Outcome {
    pub key: QueueKey,
    pub task: DeliveryTask,
    pub attempt: Attempt,
    /// When set, the next automatic attempt is due this many ms after `now_ms`.
    pub retry_after_ms: Option<u64>,
    pub now_ms: i64,
    /// The event and destination the delivery used, for alerts and operator events; without
    /// it the outcome moves no alert state.
    pub context: Option<Box<AttemptContext>>,
}

/// What committing an outcome did.
#[derive(Debug)]
pub struct Recorded {
    /// The key of the follow-up automatic retry row, if one was scheduled.
    pub follow_up: Option<QueueKey>,
    /// The alerts the attempt raised.
    pub raised: Raised,
}

fn cancel_pending(
    ctx: &WriteCtx<'_>,
    queue: &mut Table<'_, &'static [u8], &'static [u8]>,
    event_id: &str,
    destination_id: &str,
    keep: Option<QueueKey>,
) -> Result<(), StoreError> {
    let mut pending = ctx.txn.open_table(tables::PENDING_RETRY)?;
    let pair = tables::pending_retry_key(event_id, destination_id);
    let previous = pending
        .remove(pair.as_slice())?
        .and_then(|v| QueueKey::from_bytes(v.value()));
    if let Some(previous) = previous {
        if Some(previous) != keep {
            queue.remove(previous.to_bytes().as_slice())?;
        }
    }
    Ok(())
}

/// The number an attempt is stored under: the task's own number, or the pair's next free one
/// when an earlier round of the same (event, destination) already used it (an id published
/// again after its idempotency window, or a manual retry racing an automatic one). Numbers in
/// `attempts_by_event` therefore never collide and keep counting up.
pub(super) fn free_attempt_number(
    txn: &redb::WriteTransaction,
    event_id: &str,
    destination_id: &str,
    wanted: u32,
) -> Result<u32, StoreError> {
    let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
    let prefix = tables::pair_prefix(event_id, destination_id);
    let Some(end) = tables::prefix_end(&prefix) else {
        return Ok(wanted);
    };
    let last = match index.range(prefix.as_slice()..end.as_slice())?.next_back() {
        Some(row) => tables::attempt_number_of(row?.0.value(), prefix.len()),
        None => None,
    };
    Ok(match last {
        Some(last) if last >= wanted => last.saturating_add(1),
        _ => wanted,
    })
}

fn insert_attempt(ctx: &WriteCtx<'_>, attempt: &mut Attempt) -> Result<(), StoreError> {
    attempt.attempt_number = free_attempt_number(
        ctx.txn,
        &attempt.event_id,
        &attempt.destination_id,
        attempt.attempt_number,
    )?;
    log_records::insert_attempt(ctx.txn, attempt)
}

/// Logs what an attempt raised, once it is durable.
fn announce(attempt: &Attempt, raised: &Raised) {
    for alert in &raised.alerts {
        tracing::info!(
            tenant = %attempt.tenant_id,
            destination = %attempt.destination_id,
            attempt = %attempt.id,
            "alert raised: {}",
            alert.as_str()
        );
    }
    if raised.disabled {
        tracing::warn!(
            tenant = %attempt.tenant_id,
            destination = %attempt.destination_id,
            "destination disabled after consecutive failures (ALERT_AUTO_DISABLE_DESTINATION)"
        );
    }
}

impl Store {
    /// Registers who hears about new queue rows (the dispatcher). Only the first call counts.
    pub fn set_queue_listener(&self, listener: &Arc<dyn QueueListener>) {
        let _ = self.queue.listener.set(Arc::downgrade(listener));
    }

    /// Every queue row's key, for rebuilding the due set at start. Also moves the sequence
    /// counter past every key on disk.
    pub fn queue_keys(&self) -> Result<Vec<QueueKey>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::QUEUE)?;
        let mut keys = Vec::new();
        let mut max_seq = 0;
        for row in table.iter()? {
            let (key, _) = row?;
            if let Some(key) = QueueKey::from_bytes(key.value()) {
                max_seq = max_seq.max(key.seq);
                keys.push(key);
            }
        }
        self.queue.seq.fetch_max(max_seq + 1, Ordering::Relaxed);
        Ok(keys)
    }

    /// How many rows the on-disk queue holds.
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(tables::QUEUE)?.len()?)
    }

    /// How many queue rows are due at `now_ms` (unix ms) or earlier.
    pub fn queue_due_len(&self, now_ms: i64) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::QUEUE)?;
        let end = QueueKey {
            due_ms: u64::try_from(now_ms.saturating_add(1)).unwrap_or(0),
            seq: 0,
        };
        let mut due = 0;
        for row in table.range(..end.to_bytes().as_slice())? {
            row?;
            due += 1;
        }
        Ok(due)
    }

    /// Everything one delivery needs, read in one snapshot: the task behind a queue key (if
    /// the row still exists), its event and its destination (if they still exist).
    pub fn delivery_snapshot(&self, key: QueueKey) -> Result<Option<DeliverySnapshot>, StoreError> {
        let txn = self.read()?;
        let queue = txn.open_table(tables::QUEUE)?;
        let task: DeliveryTask = match queue.get(key.to_bytes().as_slice())? {
            Some(bytes) => codec::decode("queue", bytes.value())?,
            None => return Ok(None),
        };
        let event = log_records::find_event(
            &txn.open_table(tables::EVENT_INGESTED)?,
            &txn.open_table(tables::EVENT_LOG)?,
            &task.event_id,
        )?
        .map(|(_, event)| event);
        let destination_key = tables::destination_key(&task.tenant_id, &task.destination_id);
        let destination = match txn
            .open_table(tables::DESTINATIONS)?
            .get(destination_key.as_slice())?
        {
            Some(bytes) => Some(super::destination_record::decode(
                bytes.value(),
                &destination_key,
                self.cipher.as_deref(),
            )?),
            None => None,
        };
        Ok(Some(DeliverySnapshot {
            task,
            event,
            destination,
        }))
    }

    /// Commits a delivery's outcome; returns the key of the follow-up retry row, if any, and
    /// the alerts the attempt raised.
    pub async fn record_outcome(&self, outcome: Outcome) -> Result<Recorded, StoreError> {
        self.record_shared_outcome(Arc::new(outcome)).await
    }

    /// As [`Store::record_outcome`], keeping the outcome with the caller, who may commit it
    /// again after a failure (its attempt id makes a second record a replay).
    pub async fn record_shared_outcome(
        &self,
        outcome: Arc<Outcome>,
    ) -> Result<Recorded, StoreError> {
        let shared = self.queue.clone();
        let outbox = self.outbox.clone();
        let rules = self.rules.get().cloned();
        let cipher = self.cipher.clone();
        self.writer
            .write(move |ctx| {
                let Outcome {
                    key,
                    task,
                    attempt,
                    retry_after_ms,
                    now_ms,
                    context,
                } = &*outcome;
                let (key, retry_after_ms, now_ms) = (*key, *retry_after_ms, *now_ms);
                let mut attempt = attempt.clone();
                // An attempt id already on record is a replay: it is recorded once and moves
                // alert state once.
                let replay = ctx
                    .txn
                    .open_table(tables::ATTEMPT_TIME)?
                    .get(attempt.id.as_str())?
                    .is_some();
                let mut queue = ctx.txn.open_table(tables::QUEUE)?;
                // A row gone before its outcome was cancelled while in flight: a success of the
                // pair or a newer retry replaced it (or this outcome is a replay).
                let was_queued = queue.remove(key.to_bytes().as_slice())?.is_some();
                let mut raised = Raised::default();
                if !replay {
                    insert_attempt(ctx, &mut attempt)?;
                    if let (Some(rules), Some(context)) = (&rules, context) {
                        raised = outcome_effects::attempt_recorded(
                            ctx,
                            rules,
                            &outbox,
                            &attempt,
                            context,
                            now_ms,
                            cipher.as_deref(),
                        )?;
                        if raised != Raised::default() {
                            let (attempt, raised) = (attempt.clone(), raised.clone());
                            ctx.after_commit(move || announce(&attempt, &raised));
                        }
                    }
                }
                let success = attempt.status == AttemptStatus::Success;
                // A cancelled row's failure is recorded but schedules and cancels nothing: the
                // pair's retries are the business of what replaced it.
                let retry_after_ms = retry_after_ms.filter(|_| !success && was_queued);
                // At most one pending retry per pair: a new retry replaces the old one, and a
                // success or an exhausted budget leaves none (a manual success also cancels the
                // automatic retry). A first automatic attempt has nothing pending to clear.
                if (success || was_queued)
                    && (retry_after_ms.is_some() || task.manual || task.attempt_number > 1)
                {
                    cancel_pending(
                        ctx,
                        &mut queue,
                        &task.event_id,
                        &task.destination_id,
                        Some(key),
                    )?;
                }
                let follow_up = match retry_after_ms {
                    Some(delay) => {
                        let next = QueueKey {
                            due_ms: (now_ms.max(0) as u64).saturating_add(delay),
                            seq: shared.next_seq(),
                        };
                        let retry = DeliveryTask {
                            attempt_number: task.attempt_number + 1,
                            manual: false,
                            ..task.clone()
                        };
                        queue.insert(
                            next.to_bytes().as_slice(),
                            codec::encode("queue", &retry)?.as_slice(),
                        )?;
                        ctx.txn.open_table(tables::PENDING_RETRY)?.insert(
                            tables::pending_retry_key(&task.event_id, &task.destination_id)
                                .as_slice(),
                            next.to_bytes().as_slice(),
                        )?;
                        Some(next)
                    }
                    None => None,
                };
                if let Some(next) = follow_up {
                    let shared = shared.clone();
                    ctx.after_commit(move || shared.announce(&[next]));
                }
                Ok(Recorded { follow_up, raised })
            })
            .await
    }

    /// Removes a task whose destination is gone or disabled, without an attempt.
    pub async fn drop_task(&self, key: QueueKey, task: DeliveryTask) -> Result<(), StoreError> {
        self.writer
            .write(move |ctx| {
                let mut queue = ctx.txn.open_table(tables::QUEUE)?;
                queue.remove(key.to_bytes().as_slice())?;
                let mut pending = ctx.txn.open_table(tables::PENDING_RETRY)?;
                let pair = tables::pending_retry_key(&task.event_id, &task.destination_id);
                let points_here = pending
                    .get(pair.as_slice())?
                    .is_some_and(|v| v.value() == key.to_bytes().as_slice());
                if points_here {
                    pending.remove(pair.as_slice())?;
                }
                Ok(())
            })
            .await
    }

    /// Queues a manual retry, due now.
    pub async fn enqueue_manual(
        &self,
        task: DeliveryTask,
        now_ms: i64,
    ) -> Result<QueueKey, StoreError> {
        let shared = self.queue.clone();
        self.writer
            .write(move |ctx| {
                let key = QueueKey {
                    due_ms: now_ms.max(0) as u64,
                    seq: shared.next_seq(),
                };
                ctx.txn.open_table(tables::QUEUE)?.insert(
                    key.to_bytes().as_slice(),
                    codec::encode("queue", &task)?.as_slice(),
                )?;
                let shared = shared.clone();
                ctx.after_commit(move || shared.announce(&[key]));
                Ok(key)
            })
            .await
    }
}
