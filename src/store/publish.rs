//! The publish transaction: the idempotency check and — together in one commit — the event
//! (which carries its idempotency expiry), its listing and ingestion index rows, and one queue
//! row per matched destination. Matching
//! happens before, against a read snapshot, so the writer does no matching work.

use redb::ReadableTable;

use super::tables::{self, QueueKey};
use super::writer::WriteCtx;
use super::{codec, Store, StoreError};
use crate::model::event::{DeliveryTask, Event};

pub struct PublishRequest {
    /// The event with its `matched_destination_ids` (at least one) filled in.
    pub event: Event,
    pub now_ms: i64,
    pub idempotency_ttl_ms: u64,
}

/// Whether the event id was already taken by an unexpired publish.
#[derive(Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    Accepted,
    Duplicate,
}

/// Removes the listing and ingestion index rows of an event being replaced under the same id.
fn unindex_event(ctx: &WriteCtx<'_>, old: &Event) -> Result<(), StoreError> {
    super::retention::unindex_ingestion(ctx, &old.id)?;
    ctx.txn
        .open_table(tables::EVENTS_BY_TIME)?
        .remove(tables::time_key(old.time_nanos, &old.id).as_slice())?;
    ctx.txn
        .open_table(tables::EVENTS_BY_TENANT)?
        .remove(tables::tenant_time_key(&old.tenant_id, old.time_nanos, &old.id).as_slice())?;
    Ok(())
}

impl Store {
    /// Commits a publish durably: answers `Duplicate` (writing nothing) when the id was
    /// published less than the idempotency TTL ago, else stores the event and its tasks.
    pub async fn publish(&self, mut request: PublishRequest) -> Result<PublishOutcome, StoreError> {
        let queue = self.queue.clone();
        self.writer
            .write(move |ctx| {
                let PublishRequest {
                    event,
                    now_ms,
                    idempotency_ttl_ms,
                } = &mut request;
                let (now_ms, idempotency_ttl_ms) = (*now_ms, *idempotency_ttl_ms);
                let mut events = ctx.txn.open_table(tables::EVENTS)?;
                let previous = match events.get(event.id.as_str())? {
                    Some(bytes) => Some(codec::decode::<Event>("events", bytes.value())?),
                    None => None,
                };
                if let Some(old) = &previous {
                    if old.idempotency_expires_ms > now_ms {
                        return Ok(PublishOutcome::Duplicate);
                    }
                    unindex_event(ctx, old)?;
                }
                event.idempotency_expires_ms =
                    now_ms.saturating_add(i64::try_from(idempotency_ttl_ms).unwrap_or(i64::MAX));
                events.insert(
                    event.id.as_str(),
                    codec::encode("events", &event)?.as_slice(),
                )?;
                ctx.txn
                    .open_table(tables::EVENTS_BY_TIME)?
                    .insert(tables::time_key(event.time_nanos, &event.id).as_slice(), ())?;
                ctx.txn.open_table(tables::EVENTS_BY_TENANT)?.insert(
                    tables::tenant_time_key(&event.tenant_id, event.time_nanos, &event.id)
                        .as_slice(),
                    (),
                )?;
                super::retention::index_ingestion(ctx.txn, now_ms.max(0) as u64, &event.id)?;

                let due_ms = now_ms.max(0) as u64;
                let mut queue_table = ctx.txn.open_table(tables::QUEUE)?;
                let mut new_keys = Vec::with_capacity(event.matched_destination_ids.len());
                for destination_id in &event.matched_destination_ids {
                    let key = QueueKey {
                        due_ms,
                        seq: queue.next_seq(),
                    };
                    let task = DeliveryTask {
                        event_id: event.id.clone(),
                        tenant_id: event.tenant_id.clone(),
                        destination_id: destination_id.clone(),
                        attempt_number: 1,
                        manual: false,
                    };
                    queue_table.insert(
                        key.to_bytes().as_slice(),
                        codec::encode("queue", &task)?.as_slice(),
                    )?;
                    new_keys.push(key);
                }
                let queue = queue.clone();
                ctx.after_commit(move || queue.announce(&new_keys));
                Ok(PublishOutcome::Accepted)
            })
            .await
    }
}
