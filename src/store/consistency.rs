//! Cross-table consistency of one snapshot: every secondary index agrees with the table it
//! indexes (each record indexed under exactly the key it implies, each index entry pointing at
//! an existing record that implies that key), every pending-retry mark points at a queued
//! automatic retry of its own pair, and every destination belongs to an existing tenant.
//!
//! The two logs are checked against their id → position tables (`event_log` with
//! `event_ingested`, `attempt_log` with `attempt_time`): each row sits where its position says
//! (and, for attempts, under the time the record holds), each position names an existing row.
//!
//! Both directions are checked record by record with point lookups, so the check streams
//! through a store of any size; together they make each index a bijection with its table,
//! which also makes the row counts equal. Used by `outpost check` and the store's tests.
//!
//! The metrics counters (`attempt_counts`, `event_counts`) are recounted from the logs and
//! compared row by row: each counter must hold exactly what the logs imply, and nothing the logs
//! imply may be missing. The recount is held in memory (one entry per counter row). A file whose
//! counters are not built yet (an earlier release's, built at the next start) skips this.

use std::collections::BTreeMap;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::counters::{self, AttemptTuple, EventTuple};
use super::tables::{self, QueueKey};
use super::{codec, counters_backfill, log_records, StoreError};
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

/// A record table seen by record id.
trait ById<T> {
    /// The table's name in reports.
    fn name(&self) -> &'static str;
    /// Calls `visit` with every record and its id.
    fn each(
        &self,
        visit: &mut dyn FnMut(&str, T) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn get(&self, id: &str) -> Result<Option<T>, StoreError>;
    fn len(&self) -> Result<u64, StoreError>;
}

/// A table keyed by record id (`tenants`).
struct Plain {
    name: &'static str,
    table: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl<T: serde::de::DeserializeOwned> ById<T> for Plain {
    fn name(&self) -> &'static str {
        self.name
    }
    fn each(
        &self,
        visit: &mut dyn FnMut(&str, T) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for row in self.table.iter()? {
            let (id, bytes) = row?;
            visit(id.value(), codec::decode(self.name, bytes.value())?)?;
        }
        Ok(())
    }
    fn get(&self, id: &str) -> Result<Option<T>, StoreError> {
        match self.table.get(id)? {
            Some(bytes) => Ok(Some(codec::decode(self.name, bytes.value())?)),
            None => Ok(None),
        }
    }
    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.table.len()?)
    }
}

/// `event_log` through `event_ingested`.
struct EventsById {
    ingested: ReadOnlyTable<&'static str, &'static [u8]>,
    log: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl ById<Event> for EventsById {
    fn name(&self) -> &'static str {
        "event_log"
    }
    fn each(
        &self,
        visit: &mut dyn FnMut(&str, Event) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for row in self.log.iter()? {
            let (_, bytes) = row?;
            let event: Event = codec::decode("event_log", bytes.value())?;
            let id = event.id.clone();
            visit(&id, event)?;
        }
        Ok(())
    }
    fn get(&self, id: &str) -> Result<Option<Event>, StoreError> {
        Ok(log_records::find_event(&self.ingested, &self.log, id)?.map(|(_, e)| e))
    }
    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.log.len()?)
    }
}

/// `attempt_log` through `attempt_time`.
struct AttemptsById {
    times: ReadOnlyTable<&'static str, &'static [u8]>,
    log: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl ById<Attempt> for AttemptsById {
    fn name(&self) -> &'static str {
        "attempt_log"
    }
    fn each(
        &self,
        visit: &mut dyn FnMut(&str, Attempt) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for row in self.log.iter()? {
            let (_, bytes) = row?;
            let attempt: Attempt = codec::decode("attempt_log", bytes.value())?;
            let id = attempt.id.clone();
            visit(&id, attempt)?;
        }
        Ok(())
    }
    fn get(&self, id: &str) -> Result<Option<Attempt>, StoreError> {
        log_records::find_attempt(&self.times, &self.log, id)
    }
    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.log.len()?)
    }
}

/// Checks a record table seen by id against its `key → ()` indexes.
fn check_id_indexes<T>(
    txn: &ReadTransaction,
    records: &dyn ById<T>,
    indexes: &[IdIndex<T>],
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let records_name = records.name();
    let opened = indexes
        .iter()
        .map(|index| txn.open_table(index.table))
        .collect::<Result<Vec<_>, _>>()?;
    records.each(&mut |id, record| {
        for (index, table) in indexes.iter().zip(&opened) {
            let key = (index.key_of)(&record);
            if table.get(key.as_slice())?.is_none() {
                report.problem(|| {
                    format!(
                        "{records_name} {id:?} has no {} entry (expected key {})",
                        index.name,
                        show(&key)
                    )
                });
            }
        }
        Ok(())
    })?;
    for (index, table) in indexes.iter().zip(&opened) {
        for row in table.iter()? {
            let (key, _) = row?;
            let key = key.value();
            let Some(id) = (index.id_of)(key) else {
                report.problem(|| format!("{} entry {} is malformed", index.name, show(key)));
                continue;
            };
            match records.get(id)? {
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
        let (entries, count) = (table.len()?, records.len()?);
        if entries != count {
            report.problem(|| {
                format!(
                    "{} has {entries} entries but {records_name} has {count} records",
                    index.name,
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
    let attempts = AttemptsById {
        times: txn.open_table(tables::ATTEMPT_TIME)?,
        log: txn.open_table(tables::ATTEMPT_LOG)?,
    };
    let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
    let key_of = |a: &Attempt| {
        tables::attempt_by_event_key(&a.event_id, &a.destination_id, a.attempt_number)
    };
    attempts.each(&mut |id, attempt| {
        let key = key_of(&attempt);
        match index.get(key.as_slice())? {
            Some(indexed) if indexed.value() == id => {}
            Some(indexed) => report.problem(|| {
                format!(
                    "attempts {:?} (event {:?}, destination {:?}, number {}) is shadowed in \
                     attempts_by_event by attempt {:?}",
                    id,
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
                    id, attempt.event_id, attempt.destination_id, attempt.attempt_number
                )
            }),
        }
        Ok(())
    })?;
    for row in index.iter()? {
        let (key, id) = row?;
        let (key, id) = (key.value(), id.value());
        match attempts.get(id)? {
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
    let (entries, count) = (index.len()?, attempts.len()?);
    if entries != count {
        report.problem(|| {
            format!("attempts_by_event has {entries} entries but attempt_log has {count} records")
        });
    }
    Ok(())
}

/// A record's id, and the log key the record itself implies, if it does.
type IdAndKey = (String, Option<Vec<u8>>);

/// A log table and its id → position table: each log row sits under exactly the key its
/// record and its position imply, each position names an existing row, and the counts agree.
struct LogIndex {
    log_name: &'static str,
    log: TableDefinition<'static, &'static [u8], &'static [u8]>,
    position_name: &'static str,
    positions: TableDefinition<'static, &'static str, &'static [u8]>,
    /// The id of a log row's record and the log key its position value implies for it.
    key_from_position: fn(&str, &[u8]) -> Option<Vec<u8>>,
    /// The record id in a log row's value, and the key the record itself implies, if it does.
    record_key: fn(&[u8]) -> Result<IdAndKey, StoreError>,
}

fn check_log_index(
    txn: &ReadTransaction,
    spec: &LogIndex,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let log = txn.open_table(spec.log)?;
    let positions = txn.open_table(spec.positions)?;
    let (log_name, position_name) = (spec.log_name, spec.position_name);
    for row in log.iter()? {
        let (key, bytes) = row?;
        let key = key.value();
        let (id, implied) = (spec.record_key)(bytes.value())?;
        if let Some(implied) = implied {
            if implied != key {
                report.problem(|| {
                    format!(
                        "{log_name} row {} holds {id:?}, whose key is {}",
                        show(key),
                        show(&implied)
                    )
                });
            }
        }
        let position = positions.get(id.as_str())?;
        let expected = position.and_then(|p| (spec.key_from_position)(&id, p.value()));
        if expected.as_deref() != Some(key) {
            report.problem(|| {
                format!(
                    "{log_name} row {} ({id:?}) is not where {position_name} says ({})",
                    show(key),
                    expected
                        .as_deref()
                        .map(show)
                        .unwrap_or_else(|| "nothing".into())
                )
            });
        }
    }
    for row in positions.iter()? {
        let (id, value) = row?;
        let id = id.value();
        match (spec.key_from_position)(id, value.value()) {
            None => report.problem(|| format!("{position_name} {id:?} is malformed")),
            Some(key) => {
                if log.get(key.as_slice())?.is_none() {
                    report.problem(|| {
                        format!(
                            "{position_name} {id:?} points at {log_name} row {}, which does not \
                             exist",
                            show(&key)
                        )
                    });
                }
            }
        }
    }
    let (rows, entries) = (log.len()?, positions.len()?);
    if rows != entries {
        report.problem(|| {
            format!("{position_name} has {entries} entries but {log_name} has {rows} rows")
        });
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

/// Whose a destination row is (read without the key that seals its secrets).
struct Owner {
    id: crate::model::identifiers::DestinationId,
    tenant_id: crate::model::identifiers::TenantId,
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
        let (id, tenant_id) = super::destination_record::owner(bytes.value())?;
        let destination = Owner { id, tenant_id };
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

/// Every alert state row decodes and belongs to a destination that exists (deleting a
/// destination deletes its alert state).
fn check_alert_states(
    txn: &ReadTransaction,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    let destinations = txn.open_table(tables::DESTINATIONS)?;
    // A file of an earlier release has no alert state yet.
    let states = match txn.open_table(tables::ALERT_STATE) {
        Ok(states) => states,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for row in states.iter()? {
        let (key, bytes) = row?;
        codec::decode::<crate::alerts::AlertState>("alert_state", bytes.value())?;
        if destinations.get(key.value())?.is_none() {
            report.problem(|| {
                format!(
                    "alert_state row {} belongs to no destination",
                    show(key.value())
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
        &Plain {
            name: "tenants",
            table: txn.open_table(tables::TENANTS)?,
        },
        &[IdIndex {
            name: "tenants_by_created",
            table: tables::TENANTS_BY_CREATED,
            key_of: |t| tables::tenant_created_key(t.created_at_ms, &t.id),
            id_of: created_key_id,
        }],
        &mut report,
    )?;
    check_log_index(
        txn,
        &LogIndex {
            log_name: "event_log",
            log: tables::EVENT_LOG,
            position_name: "event_ingested",
            positions: tables::EVENT_INGESTED,
            key_from_position: |_, value| tables::position_of(value).map(|p| p.to_vec()),
            record_key: |bytes| {
                let event: Event = codec::decode("event_log", bytes)?;
                Ok((event.id.into_string(), None))
            },
        },
        &mut report,
    )?;
    check_log_index(
        txn,
        &LogIndex {
            log_name: "attempt_log",
            log: tables::ATTEMPT_LOG,
            position_name: "attempt_time",
            positions: tables::ATTEMPT_TIME,
            key_from_position: |id, value| {
                tables::decode_ordered_i64(value).map(|time| tables::time_key(time, id))
            },
            record_key: |bytes| {
                let attempt: Attempt = codec::decode("attempt_log", bytes)?;
                let key = tables::time_key(attempt.time_nanos, &attempt.id);
                Ok((attempt.id.into_string(), Some(key)))
            },
        },
        &mut report,
    )?;
    let events = EventsById {
        ingested: txn.open_table(tables::EVENT_INGESTED)?,
        log: txn.open_table(tables::EVENT_LOG)?,
    };
    check_id_indexes::<Event>(
        txn,
        &events,
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
    let attempts = AttemptsById {
        times: txn.open_table(tables::ATTEMPT_TIME)?,
        log: txn.open_table(tables::ATTEMPT_LOG)?,
    };
    check_id_indexes::<Attempt>(
        txn,
        &attempts,
        &[IdIndex {
            name: "attempts_by_tenant",
            table: tables::ATTEMPTS_BY_TENANT,
            key_of: |a| tables::tenant_time_key(&a.tenant_id, a.time_nanos, &a.id),
            id_of: tenant_time_key_id,
        }],
        &mut report,
    )?;
    check_attempts_by_event(txn, &mut report)?;
    check_pending_retries(txn, &mut report)?;
    check_destination_owners(txn, &mut report)?;
    check_alert_states(txn, &mut report)?;
    check_counters(txn, &mut report)?;
    Ok(report)
}

/// Compares a counter table with the counts the logs imply.
fn compare_counts(
    name: &str,
    table: &ReadOnlyTable<&'static [u8], u64>,
    mut expected: BTreeMap<Vec<u8>, u64>,
    report: &mut ConsistencyReport,
) -> Result<(), StoreError> {
    for row in table.iter()? {
        let (key, count) = row?;
        let (key, count) = (key.value(), count.value());
        match expected.remove(key) {
            Some(implied) if implied == count => {}
            Some(implied) => report.problem(|| {
                format!(
                    "{name} {}: counts {count}, the logs hold {implied}",
                    show(key)
                )
            }),
            None => report
                .problem(|| format!("{name} {}: counts {count}, the logs hold none", show(key))),
        }
    }
    for (key, implied) in expected {
        report.problem(|| format!("{name} {}: missing, the logs hold {implied}", show(&key)));
    }
    Ok(())
}

/// Every counter equals the count of the log rows it covers (see `counters.rs`). A file whose
/// counters are not built yet (written by an earlier release) has nothing to compare.
fn check_counters(txn: &ReadTransaction, report: &mut ConsistencyReport) -> Result<(), StoreError> {
    if !counters_backfill::built(txn)? {
        return Ok(());
    }
    let mut attempts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for row in txn.open_table(tables::ATTEMPT_LOG)?.iter()? {
        let (_, bytes) = row?;
        let attempt: Attempt = codec::decode("attempt_log", bytes.value())?;
        let tuple = AttemptTuple::of(&attempt).encode();
        for key in counters::counter_keys(attempt.time_nanos, &tuple) {
            *attempts.entry(key).or_default() += 1;
        }
    }
    compare_counts(
        "attempt_counts",
        &txn.open_table(tables::ATTEMPT_COUNTS)?,
        attempts,
        report,
    )?;
    let mut events: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let ingested = txn.open_table(tables::EVENT_INGESTED)?;
    let by_event = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
    for row in txn.open_table(tables::EVENT_LOG)?.iter()? {
        let (position, bytes) = row?;
        let event: Event = codec::decode("event_log", bytes.value())?;
        let current = ingested
            .get(event.id.as_str())?
            .is_some_and(|v| v.value() == position.value());
        if current && counters::event_has_attempts(&by_event, &event.id)? {
            let tuple = EventTuple::of(&event).encode();
            for key in counters::counter_keys(event.time_nanos, &tuple) {
                *events.entry(key).or_default() += 1;
            }
        }
    }
    compare_counts(
        "event_counts",
        &txn.open_table(tables::EVENT_COUNTS)?,
        events,
        report,
    )
}
