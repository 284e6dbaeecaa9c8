//! One-off repairs of schema-1 data that earlier versions wrote inconsistently, run by the
//! upgrade to schema 2 (`migrate.rs`) before it moves the attempts.
//!
//! Before attempt numbers were made unique per (event, destination), an id published again
//! after its idempotency window, or a manual retry racing an automatic one, could store a
//! second attempt under a number the pair had already used: the newer attempt took over the
//! `attempts_by_event` row and the older one dropped out of `GET /attempts?event_id=…` (and
//! `outpost check` reports it). Such an attempt is given the pair's next free number and indexed
//! again, so every attempt is reachable through every listing. A store whose index is as long
//! as its table has nothing to repair, which one length comparison tells.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::queue::free_attempt_number;
use super::{codec, StoreError};
use super::{legacy, tables};
use crate::model::event::Attempt;

/// Re-indexes every attempt missing from `attempts_by_event`, oldest first, under the next free
/// number of its pair. Returns how many were re-indexed.
pub(super) fn reindex_shadowed_attempts(db: &Database) -> Result<u64, StoreError> {
    {
        let txn = db.begin_read()?;
        let indexed = txn.open_table(tables::ATTEMPTS_BY_EVENT)?.len()?;
        if indexed >= txn.open_table(legacy::ATTEMPTS)?.len()? {
            return Ok(0);
        }
    }
    let txn = db.begin_write()?;
    let mut shadowed: Vec<Attempt> = Vec::new();
    {
        let attempts = txn.open_table(legacy::ATTEMPTS)?;
        let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
        for row in attempts.iter()? {
            let (_, bytes) = row?;
            let attempt: Attempt = codec::decode("attempts", bytes.value())?;
            let key = tables::attempt_by_event_key(
                &attempt.event_id,
                &attempt.destination_id,
                attempt.attempt_number,
            );
            let indexed_here = index
                .get(key.as_slice())?
                .is_some_and(|id| id.value() == attempt.id.as_str());
            if !indexed_here {
                shadowed.push(attempt);
            }
        }
    }
    shadowed.sort_by(|a, b| (a.time_nanos, &a.id).cmp(&(b.time_nanos, &b.id)));
    let repaired = shadowed.len() as u64;
    for mut attempt in shadowed {
        attempt.attempt_number = free_attempt_number(
            &txn,
            &attempt.event_id,
            &attempt.destination_id,
            attempt.attempt_number,
        )?;
        txn.open_table(legacy::ATTEMPTS)?.insert(
            attempt.id.as_str(),
            codec::encode("attempts", &attempt)?.as_slice(),
        )?;
        txn.open_table(tables::ATTEMPTS_BY_EVENT)?.insert(
            tables::attempt_by_event_key(
                &attempt.event_id,
                &attempt.destination_id,
                attempt.attempt_number,
            )
            .as_slice(),
            attempt.id.as_str(),
        )?;
    }
    txn.commit()?;
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::AttemptStatus;
    use crate::store::{AttemptFilter, Direction, Store};

    fn attempt(id: &str, time_nanos: i64) -> Attempt {
        Attempt {
            id: id.into(),
            tenant_id: "t".into(),
            event_id: "e".into(),
            destination_id: "d".into(),
            destination_type: "webhook".into(),
            attempt_number: 1,
            manual: false,
            status: AttemptStatus::Failed,
            time_nanos,
            code: "500".into(),
            response_data: None,
            topic: "a".into(),
        }
    }

    /// Writes an attempt the way an earlier version did, into a schema-1 file: its
    /// `attempts_by_event` row replaces whatever the pair's number already pointed at.
    fn store_as_before(db: &Database, attempt: &Attempt) {
        let txn = db.begin_write().expect("write");
        txn.open_table(legacy::ATTEMPTS)
            .expect("table")
            .insert(
                attempt.id.as_str(),
                codec::encode("attempts", attempt)
                    .expect("encode")
                    .as_slice(),
            )
            .expect("insert");
        txn.open_table(legacy::ATTEMPTS_BY_TIME)
            .expect("table")
            .insert(
                tables::time_key(attempt.time_nanos, &attempt.id).as_slice(),
                (),
            )
            .expect("insert");
        txn.open_table(tables::ATTEMPTS_BY_TENANT)
            .expect("table")
            .insert(
                tables::tenant_time_key(&attempt.tenant_id, attempt.time_nanos, &attempt.id)
                    .as_slice(),
                (),
            )
            .expect("insert");
        txn.open_table(tables::ATTEMPTS_BY_EVENT)
            .expect("table")
            .insert(
                tables::attempt_by_event_key(&attempt.event_id, &attempt.destination_id, 1)
                    .as_slice(),
                attempt.id.as_str(),
            )
            .expect("insert");
        txn.commit().expect("commit");
    }

    #[tokio::test]
    async fn shadowed_attempts_are_renumbered_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A schema-1 file: round 1's attempt, then round 2's attempt 1 of the same id.
            let db = Database::create(dir.path().join(crate::store::STORE_FILE)).expect("db");
            let txn = db.begin_write().expect("write");
            txn.open_table(tables::META)
                .expect("meta")
                .insert("schema_version", 1u32.to_be_bytes().as_slice())
                .expect("stamp");
            txn.commit().expect("commit");
            store_as_before(&db, &attempt("a-old", 1_000));
            store_as_before(&db, &attempt("a-new", 2_000));
            assert_eq!(
                txn_len(&db, tables::ATTEMPTS_BY_EVENT),
                1,
                "the old layout shadows one attempt"
            );
        }
        let (store, _thread) = Store::open(dir.path()).expect("reopen");
        let report = store.check_consistency().expect("check");
        assert!(report.is_consistent(), "{report:?}");
        let filter = AttemptFilter {
            event_ids: vec!["e".into()],
            ..Default::default()
        };
        let listed: Vec<(String, u32)> = store
            .scan_attempts(&filter, Direction::Asc, None, 10)
            .expect("scan")
            .into_iter()
            .map(|a| (a.id.into_string(), a.attempt_number))
            .collect();
        assert_eq!(
            listed,
            [("a-old".to_string(), 2), ("a-new".to_string(), 1)],
            "both attempts listed; the shadowed one takes the next free number"
        );
    }

    fn txn_len(db: &Database, table: redb::TableDefinition<&[u8], &str>) -> u64 {
        let txn = db.begin_read().expect("read");
        txn.open_table(table).expect("table").len().expect("len")
    }
}
