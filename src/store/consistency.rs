//! Cross-table consistency of one snapshot: every secondary index agrees with the table it
//! indexes (each record indexed under exactly the key it implies, each index entry pointing at
//! an existing record that implies that key), every pending-retry mark points at a queued
//! automatic retry of its own pair, and every destination belongs to an existing tenant.
//!
//! Events' ingestion index (`events_by_ingestion` with its reverse `event_ingested`) is checked
//! the same way, through the reverse table, since the event record does not hold the time.
//!
//! Both directions are checked record by record with point lookups, so the check streams
//! through a store of any size; together they make each index a bijection with its table,
//! which also makes the row counts equal. Used by `outpost check` and the store's tests.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::tables::{self, QueueKey};
use super::{codec, StoreError};
use crate::model::destination::Destination;
use crate::model::event::{Attempt, DeliveryTask, Event};
use crate::model::tenant::Tenant;

/// How many problems a report names before it only counts them.
pub const NAMED_PROBLEMS: usize = 20;

/// What a consistency check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// The first problems found, each naming the table, the key and what is wrong.
    pub problems: Vec<String>,
    /// How many problems there are in all.
    pub total: u64,
}

impl ConsistencyReport {
    pub fn is_consistent(&self) -> bool {
        self.total == 0
    }

    fn problem(&mut self, text: impl FnOnce() -> String) {
        self.total += 1;
        if self.problems.len() < NAMED_PROBLEMS {
            self.problems.push(text());
        }
    }
}

/// Printable form of a key: the text when it is UTF-8 and printable, else hex.
fn show(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if text.chars().all(|c| !c.is_control()) => format!("{text:?}"),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

type KeyIndex = TableDefinition<'static, &'static [u8], ()>;

/// One `key → ()` index over a record table keyed by id.
struct IdIndex<T> {
    name: &'static str,
    table: KeyIndex,
    /// The index key a record implies.
    key_of: fn(&T) -> Vec<u8>,
    /// The record id an index key names, if the key is well formed.
    id_of: fn(&[u8]) -> Option<&str>,
}

fn id_after(key: &[u8], skip: usize) -> Option<&str> {
    key.get(skip..).and_then(|b| std::str::from_utf8(b).ok())
}

/// The id after a `time ++ id` key.
fn time_key_id(key: &[u8]) -> Option<&str> {
    id_after(key, 8)
}

/// The id after a `tenant prefix ++ time ++ id` key.
fn tenant_time_key_id(key: &[u8]) -> Option<&str> {
    let len: [u8; 4] = key.get(..4)?.try_into().ok()?;
    id_after(key, 4 + u32::from_be_bytes(len) as usize + 8)
}

/// The id after a `created_ms ++ tenant id` key.
fn created_key_id(key: &[u8]) -> Option<&str> {
    id_after(key, 8)
}

/// Checks a record table keyed by id against its `key → ()` indexes.
fn check_id_indexes<T: serde::de::DeserializeOwned>(
    txn: &ReadTransaction,
    records_name: &'static str,
    records: TableDefinition<'static, &'static str, &'static [u8]>,
    indexes: &[IdIndex<T>],
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let records = txn.open_table(records)?;
    let opened = indexes
        .iter()
        .map(|index| txn.open_table(index.table))
        .collect::<Result<Vec<_>, _>>()?;
    for row in records.iter()? {
        let (id, bytes) = row?;
        let record: T = codec::decode(records_name, bytes.value())?;
        for (index, table) in indexes.iter().zip(&opened) {
            let key = (index.key_of)(&record);
            if table.get(key.as_slice())?.is_none() {
                report.problem(|| {
                    format!(
                        "{records_name} {:?} has no {} entry (expected key {})",
                        id.value(),
                        index.name,
                        show(&key)
                    )
                });
            }
        }
    }
    for (index, table) in indexes.iter().zip(&opened) {
        for row in table.iter()? {
            let (key, _) = row?;
            let key = key.value();
            let Some(id) = (index.id_of)(key) else {
                report.problem(|| format!("{} entry {} is malformed", index.name, show(key)));
                continue;
            };
            let record: Option<T> = match records.get(id)? {
                Some(bytes) => Some(codec::decode(records_name, bytes.value())?),
                None => None,
            };
            match record {
                None => report.problem(|| {
                    format!(
                        "{} entry {} points at {records_name} {id:?}, which does not exist",
                        index.name,
                        show(key)
                    )
                }),
                Some(record) if (index.key_of)(&record) != key => report.problem(|| {
                    format!(
                        "{} entry {} is stale: {records_name} {id:?} is indexed as {}",
                        index.name,
                        show(key),
                        show(&(index.key_of)(&record))
                    )
                }),
                Some(_) => {}
            }
        }
        if table.len()? != records.len()? {
            report.problem(|| {
                format!(
                    "{} has {} entries but {records_name} has {} records",
                    index.name,
                    table.len().unwrap_or(0),
                    records.len().unwrap_or(0)
                )
            });
        }
    }
    Ok(())
}

/// `attempts_by_event` maps `pair ++ number` to an attempt id: each attempt once, under its
/// own event, destination and number.
fn check_attempts_by_event(
    txn: &ReadTransaction,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let attempts = txn.open_table(tables::ATTEMPTS)?;
    let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
    let key_of = |a: &Attempt| {
        tables::attempt_by_event_key(&a.event_id, &a.destination_id, a.attempt_number)
    };
    for row in attempts.iter()? {
        let (id, bytes) = row?;
        let attempt: Attempt = codec::decode("attempts", bytes.value())?;
        let key = key_of(&attempt);
        match index.get(key.as_slice())? {
            Some(indexed) if indexed.value() == id.value() => {}
            Some(indexed) => report.problem(|| {
                format!(
                    "attempts {:?} (event {:?}, destination {:?}, number {}) is shadowed in \
                     attempts_by_event by attempt {:?}",
                    id.value(),
                    attempt.event_id,
                    attempt.destination_id,
                    attempt.attempt_number,
                    indexed.value()
                )
            }),
            None => report.problem(|| {
                format!(
                    "attempts {:?} (event {:?}, destination {:?}, number {}) has no \
                     attempts_by_event entry",
                    id.value(),
                    attempt.event_id,
                    attempt.destination_id,
                    attempt.attempt_number
                )
            }),
        }
    }
    for row in index.iter()? {
        let (key, id) = row?;
        let (key, id) = (key.value(), id.value());
        let attempt: Option<Attempt> = match attempts.get(id)? {
            Some(bytes) => Some(codec::decode("attempts", bytes.value())?),
            None => None,
        };
        match attempt {
            None => report.problem(|| {
                format!(
                    "attempts_by_event entry {} points at attempts {id:?}, which does not exist",
                    show(key)
                )
            }),
            Some(a) if key_of(&a) != key => report.problem(|| {
                format!(
                    "attempts_by_event entry {} points at attempts {id:?}, which belongs to \
                     event {:?}, destination {:?}, number {}",
                    show(key),
                    a.event_id,
                    a.destination_id,
                    a.attempt_number
                )
            }),
            Some(_) => {}
        }
    }
    if index.len()? != attempts.len()? {
        report.problem(|| {
            format!(
                "attempts_by_event has {} entries but attempts has {} records",
                index.len().unwrap_or(0),
                attempts.len().unwrap_or(0)
            )
        });
    }
    Ok(())
}

/// `events_by_ingestion` and its reverse `event_ingested`: each event has one ingestion time in
/// `event_ingested` and exactly the entry it names in `events_by_ingestion`; each
/// `events_by_ingestion` entry names an existing event whose `event_ingested` time matches it.
/// The ingestion time is not part of the event record, so this is what "the key it implies"
/// means here.
fn check_ingestion_index(
    txn: &ReadTransaction,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let events = txn.open_table(tables::EVENTS)?;
    let ingested = txn.open_table(tables::EVENT_INGESTED)?;
    let index = txn.open_table(tables::EVENTS_BY_INGESTION)?;
    for row in events.iter()? {
        let (id, _) = row?;
        let id = id.value();
        let ms = match ingested.get(id)? {
            None => {
                report.problem(|| format!("events {id:?} has no event_ingested entry"));
                continue;
            }
            Some(value) => match tables::ingested_ms_of(value.value()) {
                Some(ms) => ms,
                None => {
                    report.problem(|| format!("event_ingested {id:?} is malformed"));
                    continue;
                }
            },
        };
        let key = tables::ingestion_key(ms, id);
        if index.get(key.as_slice())?.is_none() {
            report.problem(|| {
                format!(
                    "events {id:?} has no events_by_ingestion entry (expected key {})",
                    show(&key)
                )
            });
        }
    }
    for row in index.iter()? {
        let (key, _) = row?;
        let key = key.value();
        let Some((ms, id)) = tables::split_ingestion_key(key) else {
            report.problem(|| format!("events_by_ingestion entry {} is malformed", show(key)));
            continue;
        };
        if events.get(id)?.is_none() {
            report.problem(|| {
                format!(
                    "events_by_ingestion entry {} points at events {id:?}, which does not exist",
                    show(key)
                )
            });
            continue;
        }
        let recorded = ingested
            .get(id)?
            .and_then(|v| tables::ingested_ms_of(v.value()));
        if recorded != Some(ms) {
            report.problem(|| {
                format!(
                    "events_by_ingestion entry {} is stale: event_ingested of {id:?} says {recorded:?}",
                    show(key)
                )
            });
        }
    }
    for (name, len) in [
        ("events_by_ingestion", index.len()?),
        ("event_ingested", ingested.len()?),
    ] {
        if len != events.len()? {
            report.problem(|| {
                format!(
                    "{name} has {len} entries but events has {} records",
                    events.len().unwrap_or(0)
                )
            });
        }
    }
    Ok(())
}

/// Every pending-retry mark names a queued, automatic task of its own pair.
fn check_pending_retries(
    txn: &ReadTransaction,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let pending = txn.open_table(tables::PENDING_RETRY)?;
    let queue = txn.open_table(tables::QUEUE)?;
    for row in pending.iter()? {
        let (pair, queue_key) = row?;
        let (pair, queue_key) = (pair.value(), queue_key.value());
        let Some(parsed) = QueueKey::from_bytes(queue_key) else {
            report.problem(|| format!("pending_retry {} holds a malformed queue key", show(pair)));
            continue;
        };
        let task: Option<DeliveryTask> = match queue.get(parsed.to_bytes().as_slice())? {
            Some(bytes) => Some(codec::decode("queue", bytes.value())?),
            None => None,
        };
        match task {
            None => report.problem(|| {
                format!(
                    "pending_retry {} points at queue row {parsed:?}, which does not exist",
                    show(pair)
                )
            }),
            Some(task)
                if tables::pending_retry_key(&task.event_id, &task.destination_id) != pair
                    || task.manual =>
            {
                report.problem(|| {
                    format!(
                        "pending_retry {} points at queue row {parsed:?}, which is {} of event \
                         {:?}, destination {:?}",
                        show(pair),
                        if task.manual {
                            "a manual retry"
                        } else {
                            "a retry"
                        },
                        task.event_id,
                        task.destination_id
                    )
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every destination belongs to a tenant that exists (deleting a tenant deletes them).
fn check_destination_owners(
    txn: &ReadTransaction,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let tenants = txn.open_table(tables::TENANTS)?;
    let destinations = txn.open_table(tables::DESTINATIONS)?;
    for row in destinations.iter()? {
        let (key, bytes) = row?;
        let destination: Destination = codec::decode("destinations", bytes.value())?;
        if tables::destination_key(&destination.tenant_id, &destination.id) != key.value() {
            report.problem(|| {
                format!(
                    "destinations row {} holds destination {:?} of tenant {:?}",
                    show(key.value()),
                    destination.id,
                    destination.tenant_id
                )
            });
        }
        if tenants.get(destination.tenant_id.as_str())?.is_none() {
            report.problem(|| {
                format!(
                    "destination {:?} belongs to tenant {:?}, which does not exist",
                    destination.id, destination.tenant_id
                )
            });
        }
    }
    Ok(())
}

/// Checks every index and cross-table reference of the snapshot `txn`.
pub fn check(txn: &ReadTransaction) -> Result<ConsistencyReport, StoreError> {
    let mut report = ConsistencyReport::default();
    check_id_indexes::<Tenant>(
        txn,
        "tenants",
        tables::TENANTS,
        &[IdIndex {
            name: "tenants_by_created",
            table: tables::TENANTS_BY_CREATED,
            key_of: |t| tables::tenant_created_key(t.created_at_ms, &t.id),
            id_of: created_key_id,
        }],
        &mut report,
    )?;
    check_id_indexes::<Event>(
        txn,
        "events",
        tables::EVENTS,
        &[
            IdIndex {
                name: "events_by_time",
                table: tables::EVENTS_BY_TIME,
                key_of: |e| tables::time_key(e.time_nanos, &e.id),
                id_of: time_key_id,
            },
            IdIndex {
                name: "events_by_tenant",
                table: tables::EVENTS_BY_TENANT,
                key_of: |e| tables::tenant_time_key(&e.tenant_id, e.time_nanos, &e.id),
                id_of: tenant_time_key_id,
            },
        ],
        &mut report,
    )?;
    check_id_indexes::<Attempt>(
        txn,
        "attempts",
        tables::ATTEMPTS,
        &[
            IdIndex {
                name: "attempts_by_time",
                table: tables::ATTEMPTS_BY_TIME,
                key_of: |a| tables::time_key(a.time_nanos, &a.id),
                id_of: time_key_id,
            },
            IdIndex {
                name: "attempts_by_tenant",
                table: tables::ATTEMPTS_BY_TENANT,
                key_of: |a| tables::tenant_time_key(&a.tenant_id, a.time_nanos, &a.id),
                id_of: tenant_time_key_id,
            },
        ],
        &mut report,
    )?;
    check_ingestion_index(txn, &mut report)?;
    check_attempts_by_event(txn, &mut report)?;
    check_pending_retries(txn, &mut report)?;
    check_destination_owners(txn, &mut report)?;
    Ok(report)
}
