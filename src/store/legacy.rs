//! Tables of schema 1 that schema 2 replaced: events and attempts keyed by id, with separate
//! time indexes. Only the upgrade (`migrate.rs`) and the one-off repairs it runs first
//! (`repair.rs`, the ingestion-time backfill below) open them; a schema-2 file has none of them.

use redb::{Database, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::tables;
use super::{codec, StoreError};
use crate::model::event::Event;

/// event id → `Event` record.
pub const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// `ingested_ms (u64 BE) ++ event id` → (): events in the order they were stored.
pub const EVENTS_BY_INGESTION: TableDefinition<&[u8], ()> =
    TableDefinition::new("events_by_ingestion");
/// attempt id → `Attempt` record.
pub const ATTEMPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("attempts");
/// `time ++ attempt id` → (): listing order of every attempt.
pub const ATTEMPTS_BY_TIME: TableDefinition<&[u8], ()> = TableDefinition::new("attempts_by_time");

/// Writes an event's schema-1 ingestion entries (both directions).
fn index_ingestion(
    txn: &WriteTransaction,
    ingested_ms: u64,
    event_id: &str,
) -> Result<(), StoreError> {
    txn.open_table(EVENTS_BY_INGESTION)?
        .insert(tables::ingestion_key(ingested_ms, event_id).as_slice(), ())?;
    txn.open_table(tables::EVENT_INGESTED)?
        .insert(event_id, ingested_ms.to_be_bytes().as_slice())?;
    Ok(())
}

/// Gives every event of a schema-1 file written before the ingestion index existed an entry,
/// once: when the index is empty but `events` is not. The ingestion time is estimated as the
/// event's own `time`, capped at `now_ms`. Returns how many events were indexed.
pub(super) fn backfill_ingestion(db: &Database, now_ms: i64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let mut indexed = 0;
    {
        let events = txn.open_table(EVENTS)?;
        let needed = txn.open_table(EVENTS_BY_INGESTION)?.is_empty()?
            && txn.open_table(tables::EVENT_INGESTED)?.is_empty()?
            && !events.is_empty()?;
        if needed {
            use redb::ReadableTable;
            for row in events.iter()? {
                let (_, bytes) = row?;
                let event: Event = codec::decode("events", bytes.value())?;
                let estimate = event.time_nanos.div_euclid(1_000_000).min(now_ms).max(0);
                index_ingestion(&txn, estimate as u64, &event.id)?;
                indexed += 1;
            }
        }
    }
    txn.commit()?;
    Ok(indexed)
}
