//! The operator event outbox: bodies of operator events waiting for the sink, keyed by a
//! sequence number that only grows, so the sender reads them in the order their commits made
//! them. Rows are added inside the commit that causes the event (an attempt's outcome, a
//! destination change) and removed once the sink has accepted them.
//!
//! The outbox is bounded: past [`MAX_OUTBOX_ROWS`] waiting events, new `attempt.*` events are
//! dropped (and counted) while alerts are still kept, so a sink that is down for long cannot
//! fill the disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use tokio::sync::Notify;

use super::tables;
use super::writer::WriteCtx;
use super::{Store, StoreError};
use crate::operator_events::Envelope;

/// The most operator events kept waiting for the sink.
pub const MAX_OUTBOX_ROWS: u64 = 1_000_000;

/// The outbox's in-memory side: the next sequence number, the row count, and the signal that
/// wakes the sender after a commit added rows.
#[derive(Default)]
pub struct OutboxShared {
    seq: AtomicU64,
    len: AtomicU64,
    dropped: AtomicU64,
    wake: Arc<Notify>,
}

impl OutboxShared {
    /// Reads the sequence and count of an open store's outbox.
    pub(super) fn load(txn: &redb::ReadTransaction) -> Result<OutboxShared, StoreError> {
        let table = txn.open_table(tables::OPERATOR_OUTBOX)?;
        let next = match table.last()? {
            Some((key, _)) => seq_of(key.value()).saturating_add(1),
            None => 0,
        };
        Ok(OutboxShared {
            seq: AtomicU64::new(next),
            len: AtomicU64::new(table.len()?),
            dropped: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
        })
    }
}

fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// Adds `events` to the outbox inside the caller's commit; `attempt.*` events are dropped when
/// the outbox is full. The sender is woken once the commit is durable.
pub(super) fn push(
    ctx: &mut WriteCtx<'_>,
    shared: &Arc<OutboxShared>,
    events: &[Envelope],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let full = shared.len.load(Ordering::Relaxed) >= MAX_OUTBOX_ROWS;
    let mut table = ctx.txn.open_table(tables::OPERATOR_OUTBOX)?;
    let (mut added, mut dropped) = (0u64, 0u64);
    for event in events {
        if full && !event.topic.is_alert() {
            dropped += 1;
            continue;
        }
        let key = shared.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        table.insert(key.as_slice(), event.body.as_slice())?;
        added += 1;
    }
    let shared = shared.clone();
    ctx.after_commit(move || {
        shared.len.fetch_add(added, Ordering::Relaxed);
        if dropped > 0 {
            let before = shared.dropped.fetch_add(dropped, Ordering::Relaxed);
            // The first drop, then one line per 10,000.
            if before == 0 || before / 10_000 != (before + dropped) / 10_000 {
                tracing::warn!(
                    waiting = shared.len.load(Ordering::Relaxed),
                    dropped = before + dropped,
                    "the operator event outbox is full: attempt events are dropped until the \
                     sink catches up (alerts are kept)"
                );
            }
        }
        if added > 0 {
            shared.wake.notify_one();
        }
    });
    Ok(())
}

/// One waiting operator event.
pub struct OutboxRow {
    pub seq: u64,
    pub body: Vec<u8>,
}

impl Store {
    /// The first `limit` waiting operator events, oldest first.
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::OPERATOR_OUTBOX)?;
        let mut rows = Vec::new();
        for row in table.iter()?.take(limit) {
            let (key, value) = row?;
            rows.push(OutboxRow {
                seq: seq_of(key.value()),
                body: value.value().to_vec(),
            });
        }
        Ok(rows)
    }

    /// Removes events the sink accepted.
    pub async fn outbox_remove(&self, sent: Vec<u64>) -> Result<(), StoreError> {
        let shared = self.outbox.clone();
        self.writer
            .write(move |ctx| {
                let mut table = ctx.txn.open_table(tables::OPERATOR_OUTBOX)?;
                let mut removed = 0u64;
                for seq in &sent {
                    if table.remove(seq.to_be_bytes().as_slice())?.is_some() {
                        removed += 1;
                    }
                }
                let shared = shared.clone();
                ctx.after_commit(move || {
                    shared.len.fetch_sub(removed, Ordering::Relaxed);
                });
                Ok(())
            })
            .await
    }

    /// How many operator events wait for the sink.
    pub fn outbox_len(&self) -> u64 {
        self.outbox.len.load(Ordering::Relaxed)
    }

    /// How many `attempt.*` events were dropped because the outbox was full.
    pub fn outbox_dropped(&self) -> u64 {
        self.outbox.dropped.load(Ordering::Relaxed)
    }

    /// Notified after every commit that adds operator events.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.wake.clone()
    }
}
