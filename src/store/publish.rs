//! The publish transaction: idempotency check, fan-out match against the tenant's stored
//! destinations, and — together in one commit — the event, its idempotency key and one queue
//! row per matched destination.

use redb::{ReadableTable, Table};

use super::tables::{self, QueueKey};
use super::{codec, destinations, Store, StoreError};
use crate::model::destination::Destination;
use crate::model::event::{DeliveryTask, Event};
use crate::model::matching::{destination_matches, FilterInput};

/// How many expired idempotency keys one publish commit may sweep.
const SWEEP_PER_COMMIT: usize = 16;

pub struct PublishRequest {
    /// The event; `matched_destination_ids` is filled in here.
    pub event: Event,
    pub now_ms: i64,
    pub idempotency_ttl_ms: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PublishOutcome {
    pub duplicate: bool,
    pub destination_ids: Vec<String>,
}

fn matched(candidates: &[Destination], event: &Event) -> Vec<String> {
    let mut input = FilterInput::new(event);
    candidates
        .iter()
        .filter(|d| event.destination_id.is_empty() || d.id == event.destination_id)
        .filter(|d| destination_matches(d, &mut input))
        .map(|d| d.id.clone())
        .collect()
}

fn sweep_expired(
    keys: &mut Table<'_, &'static str, u64>,
    by_expiry: &mut Table<'_, &'static [u8], ()>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let mut expired = Vec::new();
    for row in by_expiry
        .range::<&[u8]>(..now_ms.to_be_bytes().as_slice())?
        .take(SWEEP_PER_COMMIT)
    {
        expired.push(row?.0.value().to_vec());
    }
    for key in expired {
        by_expiry.remove(key.as_slice())?;
        if let Ok(id) = std::str::from_utf8(&key[8..]) {
            let stale = keys
                .get(id)?
                .map(|v| v.value())
                .is_some_and(|e| e <= now_ms);
            if stale {
                keys.remove(id)?;
            }
        }
    }
    Ok(())
}

/// Removes the listing index rows of an event being replaced under the same id.
fn unindex_event(ctx: &super::writer::WriteCtx<'_>, old: &Event) -> Result<(), StoreError> {
    ctx.txn
        .open_table(tables::EVENTS_BY_TIME)?
        .remove(tables::time_key(old.time_nanos, &old.id).as_slice())?;
    ctx.txn
        .open_table(tables::EVENTS_BY_TENANT)?
        .remove(tables::tenant_time_key(&old.tenant_id, old.time_nanos, &old.id).as_slice())?;
    Ok(())
}

impl Store {
    /// Commits a publish durably and answers with what upstream's 202 carries.
    pub async fn publish(&self, request: PublishRequest) -> Result<PublishOutcome, StoreError> {
        let queue = self.queue.clone();
        self.writer
            .write(move |ctx| {
                let PublishRequest {
                    mut event,
                    now_ms,
                    idempotency_ttl_ms,
                } = request;
                let now = now_ms.max(0) as u64;
                let candidates = {
                    let table = ctx.txn.open_table(tables::DESTINATIONS)?;
                    destinations::tenant_rows(&table, &event.tenant_id)?
                };
                let destination_ids = matched(&candidates, &event);
                let mut keys = ctx.txn.open_table(tables::IDEMPOTENCY)?;
                let mut by_expiry = ctx.txn.open_table(tables::IDEMPOTENCY_BY_EXPIRY)?;
                let seen = keys
                    .get(event.id.as_str())?
                    .map(|v| v.value())
                    .is_some_and(|expires| expires > now);
                if seen {
                    return Ok(PublishOutcome {
                        duplicate: true,
                        destination_ids,
                    });
                }
                if destination_ids.is_empty() {
                    return Ok(PublishOutcome {
                        duplicate: false,
                        destination_ids,
                    });
                }
                sweep_expired(&mut keys, &mut by_expiry, now)?;
                let expires = now.saturating_add(idempotency_ttl_ms);
                if let Some(old) = keys.insert(event.id.as_str(), expires)? {
                    let old = old.value();
                    by_expiry.remove(tables::expiry_key(old, &event.id).as_slice())?;
                }
                by_expiry.insert(tables::expiry_key(expires, &event.id).as_slice(), ())?;

                event.matched_destination_ids = destination_ids.clone();
                let mut events = ctx.txn.open_table(tables::EVENTS)?;
                let previous = match events.get(event.id.as_str())? {
                    Some(bytes) => Some(codec::decode::<Event>("events", bytes.value())?),
                    None => None,
                };
                if let Some(old) = previous {
                    unindex_event(ctx, &old)?;
                }
                events.insert(event.id.as_str(), codec::encode(&event).as_slice())?;
                ctx.txn
                    .open_table(tables::EVENTS_BY_TIME)?
                    .insert(tables::time_key(event.time_nanos, &event.id).as_slice(), ())?;
                ctx.txn.open_table(tables::EVENTS_BY_TENANT)?.insert(
                    tables::tenant_time_key(&event.tenant_id, event.time_nanos, &event.id)
                        .as_slice(),
                    (),
                )?;

                let mut queue_table = ctx.txn.open_table(tables::QUEUE)?;
                let mut new_keys = Vec::with_capacity(destination_ids.len());
                for destination_id in &destination_ids {
                    let key = QueueKey {
                        due_ms: now,
                        seq: queue.next_seq(),
                    };
                    let task = DeliveryTask {
                        event_id: event.id.clone(),
                        tenant_id: event.tenant_id.clone(),
                        destination_id: destination_id.clone(),
                        attempt_number: 1,
                        manual: false,
                    };
                    queue_table
                        .insert(key.to_bytes().as_slice(), codec::encode(&task).as_slice())?;
                    new_keys.push(key);
                }
                ctx.after_commit(move || queue.announce(&new_keys));
                Ok(PublishOutcome {
                    duplicate: false,
                    destination_ids,
                })
            })
            .await
    }
}
