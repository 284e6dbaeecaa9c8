//! The publish transaction: the idempotency check and — together in one commit — the event
//! (which carries its idempotency expiry) appended to the event log with its id and listing
//! rows, and one queue row per matched destination. Matching happens before, against a read
//! snapshot, so the writer does no matching work.

use super::tables::{self, QueueKey};
use super::{codec, log_records, Store, StoreError};
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

impl Store {
    /// Commits a publish durably: answers `Duplicate` (writing nothing) when the id was
    /// published less than the idempotency TTL ago, else stores the event and its tasks.
    pub async fn publish(&self, mut request: PublishRequest) -> Result<PublishOutcome, StoreError> {
        let queue = self.queue.clone();
        let sequence = self.log_sequence.clone();
        self.writer
            .write(move |ctx| {
                let PublishRequest {
                    event,
                    now_ms,
                    idempotency_ttl_ms,
                } = &mut request;
                let (now_ms, idempotency_ttl_ms) = (*now_ms, *idempotency_ttl_ms);
                let previous = {
                    let ingested = ctx.txn.open_table(tables::EVENT_INGESTED)?;
                    let log = ctx.txn.open_table(tables::EVENT_LOG)?;
                    log_records::find_event(&ingested, &log, &event.id)?
                };
                if let Some((position, old)) = &previous {
                    if old.idempotency_expires_ms > now_ms {
                        return Ok(PublishOutcome::Duplicate);
                    }
                    log_records::remove_event(ctx.txn, position, old)?;
                }
                event.idempotency_expires_ms =
                    now_ms.saturating_add(i64::try_from(idempotency_ttl_ms).unwrap_or(i64::MAX));
                log_records::insert_event(ctx.txn, &sequence, now_ms.max(0) as u64, event)?;

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
