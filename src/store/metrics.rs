//! Reads for `GET /metrics/*`: the counted tuples of consecutive time buckets, from the
//! counters where they cover whole days, hours or minutes and from the logs themselves for the
//! rest. Which tuples a metric keeps and how it groups them is the API's business.
//!
//! A query names its buckets by their `n + 1` boundaries (unix nanoseconds, increasing): bucket
//! `i` is `[bounds[i], bounds[i + 1])`. Each bucket is cut into pieces (`plan`): the whole UTC
//! days inside it come from the day counters, the whole hours left at its edges from the hour
//! counters, then whole minutes, and what is left (less than a minute at either edge) is read
//! from the logs: `attempt_log` by attempt time, `events_by_time` by event time. Pieces of
//! neighbouring buckets from the same source are read in one range scan, and every row is given
//! to the bucket its time falls in. So a day at 1 h granularity reads 24 hour buckets of
//! counters, however many attempts they count.

use redb::ReadTransaction;

use super::counters::{self, AttemptTuple, EventTuple, Level};
use super::{codec, log_records, tables, Store, StoreError};
use crate::model::event::{Attempt, Event};

/// Where a piece of a bucket is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Counters(Level),
    Log,
}

/// `[lo, hi)` (unix nanoseconds) read from one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    source: Source,
    lo: i64,
    hi: i64,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

fn level_nanos(level: Level) -> i128 {
    i128::from(level.seconds()) * NANOS_PER_SECOND
}

/// Cuts `[lo, hi)` into the coarsest whole buckets of `levels` (coarsest first) and log spans.
fn decompose(lo: i128, hi: i128, levels: &[Level], out: &mut Vec<Piece>) {
    if lo >= hi {
        return;
    }
    let Some((&level, finer)) = levels.split_first() else {
        push(out, Source::Log, lo, hi);
        return;
    };
    let unit = level_nanos(level);
    let first = lo.div_euclid(unit) * unit + if lo.rem_euclid(unit) == 0 { 0 } else { unit };
    let last = hi.div_euclid(unit) * unit;
    if first < last {
        decompose(lo, first, finer, out);
        push(out, Source::Counters(level), first, last);
        decompose(last, hi, finer, out);
    } else {
        decompose(lo, hi, finer, out);
    }
}

/// Appends a piece, merged into the previous one when it continues it from the same source.
fn push(out: &mut Vec<Piece>, source: Source, lo: i128, hi: i128) {
    let clamp = |t: i128| i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX });
    let (lo, hi) = (clamp(lo), clamp(hi));
    if lo >= hi {
        return;
    }
    if let Some(previous) = out.last_mut() {
        if previous.source == source && previous.hi == lo {
            previous.hi = hi;
            return;
        }
    }
    out.push(Piece { source, lo, hi });
}

/// The pieces every bucket of `bounds` is read from, in time order.
fn plan(bounds: &[i64]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for pair in bounds.windows(2) {
        decompose(
            i128::from(pair[0]),
            i128::from(pair[1]),
            &Level::COARSEST_FIRST,
            &mut pieces,
        );
    }
    pieces
}

/// The bucket of `bounds` holding `time`, if any.
fn bucket_index(bounds: &[i64], time: i64) -> Option<usize> {
    let after = bounds.partition_point(|&b| b <= time);
    (after > 0 && after < bounds.len()).then(|| after - 1)
}

/// Key range of one level's counters for buckets starting in `[lo, hi)` (both aligned).
fn counter_range(level: Level, lo: i64, hi: i64) -> ([u8; 9], [u8; 9]) {
    let seconds = |t: i64| t.div_euclid(1_000_000_000);
    (
        counters::bucket_key(level, seconds(lo)),
        counters::bucket_key(level, seconds(hi)),
    )
}

/// Receives `(bucket, tuple bytes, count)` of counter rows.
type CounterVisitor<'v> = dyn FnMut(usize, &[u8], u64) -> Result<(), StoreError> + 'v;

/// Calls `visit(bucket, tuple bytes, count)` for every counter row of the pieces read from
/// counters.
fn scan_counters(
    txn: &ReadTransaction,
    table: redb::TableDefinition<&'static [u8], u64>,
    bounds: &[i64],
    pieces: &[Piece],
    visit: &mut CounterVisitor<'_>,
) -> Result<(), StoreError> {
    let table = txn.open_table(table)?;
    for piece in pieces {
        let Source::Counters(level) = piece.source else {
            continue;
        };
        let (from, to) = counter_range(level, piece.lo, piece.hi);
        for row in table.range(from.as_slice()..to.as_slice())? {
            let (key, count) = row?;
            let key = key.value();
            let Some((start, tuple)) = counters::split_counter_key(key) else {
                return Err(corrupt_counter(key));
            };
            let time = start.saturating_mul(1_000_000_000);
            if let Some(bucket) = bucket_index(bounds, time) {
                visit(bucket, tuple, count.value())?;
            }
        }
    }
    Ok(())
}

fn corrupt_counter(key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        table: "counters",
        reason: format!("malformed counter key of {} bytes", key.len()),
    }
}

/// The keys `[ordered(lo), ordered(hi))` of a `time ++ id` table.
fn time_range(piece: &Piece) -> ([u8; 8], [u8; 8]) {
    (tables::ordered_i64(piece.lo), tables::ordered_i64(piece.hi))
}

impl Store {
    /// Calls `visit(bucket, tuple, count)` with every counted attempt tuple of the buckets
    /// `bounds` delimits (see the module header). A tuple may come more than once per bucket.
    pub fn scan_attempt_counts(
        &self,
        bounds: &[i64],
        mut visit: impl FnMut(usize, &AttemptTuple<'_>, u64),
    ) -> Result<(), StoreError> {
        let txn = self.read()?;
        let pieces = plan(bounds);
        scan_counters(
            &txn,
            tables::ATTEMPT_COUNTS,
            bounds,
            &pieces,
            &mut |bucket, bytes, count| {
                let tuple = AttemptTuple::decode(bytes).ok_or_else(|| corrupt_counter(bytes))?;
                visit(bucket, &tuple, count);
                Ok(())
            },
        )?;
        let log = txn.open_table(tables::ATTEMPT_LOG)?;
        for piece in pieces.iter().filter(|p| p.source == Source::Log) {
            let (from, to) = time_range(piece);
            for row in log.range(from.as_slice()..to.as_slice())? {
                let (_, bytes) = row?;
                let attempt: Attempt = codec::decode("attempt_log", bytes.value())?;
                if let Some(bucket) = bucket_index(bounds, attempt.time_nanos) {
                    visit(bucket, &AttemptTuple::of(&attempt), 1);
                }
            }
        }
        Ok(())
    }

    /// Calls `visit(bucket, tuple, count)` with every counted event tuple (stored events with
    /// at least one attempt, by event `time`) of the buckets `bounds` delimits.
    pub fn scan_event_counts(
        &self,
        bounds: &[i64],
        mut visit: impl FnMut(usize, &EventTuple<'_>, u64),
    ) -> Result<(), StoreError> {
        let txn = self.read()?;
        let pieces = plan(bounds);
        scan_counters(
            &txn,
            tables::EVENT_COUNTS,
            bounds,
            &pieces,
            &mut |bucket, bytes, count| {
                let tuple = EventTuple::decode(bytes).ok_or_else(|| corrupt_counter(bytes))?;
                visit(bucket, &tuple, count);
                Ok(())
            },
        )?;
        let by_time = txn.open_table(tables::EVENTS_BY_TIME)?;
        let ingested = txn.open_table(tables::EVENT_INGESTED)?;
        let log = txn.open_table(tables::EVENT_LOG)?;
        let by_event = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
        for piece in pieces.iter().filter(|p| p.source == Source::Log) {
            let (from, to) = time_range(piece);
            for row in by_time.range(from.as_slice()..to.as_slice())? {
                let (key, _) = row?;
                let Some((_, id)) = tables::split_time_key(key.value()) else {
                    continue;
                };
                let event: Option<Event> =
                    log_records::find_event(&ingested, &log, id)?.map(|(_, e)| e);
                let Some(event) = event else { continue };
                if !counters::event_has_attempts(&by_event, id)? {
                    continue;
                }
                if let Some(bucket) = bucket_index(bounds, event.time_nanos) {
                    visit(bucket, &EventTuple::of(&event), 1);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;

    fn piece(source: Source, lo: i64, hi: i64) -> Piece {
        Piece { source, lo, hi }
    }

    #[test]
    fn aligned_hours_read_hour_counters_in_one_scan() {
        let bounds: Vec<i64> = (0..=24).map(|h| 3 * D + h * H).collect();
        assert_eq!(
            plan(&bounds),
            vec![piece(Source::Counters(Level::Hour), 3 * D, 4 * D)]
        );
        // One bucket over the whole day takes the day counter.
        assert_eq!(
            plan(&[3 * D, 4 * D]),
            vec![piece(Source::Counters(Level::Day), 3 * D, 4 * D)]
        );
    }

    #[test]
    fn ragged_edges_fall_back_to_finer_levels_and_the_log() {
        let lo = D - H - 2 * M - 5 * S;
        let hi = 3 * D + 2 * H + M + 7;
        assert_eq!(
            plan(&[lo, hi]),
            vec![
                piece(Source::Log, lo, D - H - 2 * M),
                piece(Source::Counters(Level::Minute), D - H - 2 * M, D - H),
                piece(Source::Counters(Level::Hour), D - H, D),
                piece(Source::Counters(Level::Day), D, 3 * D),
                piece(Source::Counters(Level::Hour), 3 * D, 3 * D + 2 * H),
                piece(
                    Source::Counters(Level::Minute),
                    3 * D + 2 * H,
                    3 * D + 2 * H + M
                ),
                piece(Source::Log, 3 * D + 2 * H + M, hi),
            ]
        );
    }

    #[test]
    fn second_buckets_read_the_log() {
        let bounds: Vec<i64> = (0..=10).map(|s| 5 * M + 10 * S + s * 5 * S).collect();
        assert_eq!(
            plan(&bounds),
            vec![piece(Source::Log, 5 * M + 10 * S, 6 * M)]
        );
        // A piece never reaches beyond its bucket's edges.
        for pair in plan(&[-90 * S, 30 * S]).windows(2) {
            assert_eq!(pair[0].hi, pair[1].lo);
        }
    }

    #[test]
    fn rows_land_in_the_bucket_holding_their_time() {
        let bounds = [10, 20, 30];
        assert_eq!(bucket_index(&bounds, 9), None);
        assert_eq!(bucket_index(&bounds, 10), Some(0));
        assert_eq!(bucket_index(&bounds, 19), Some(0));
        assert_eq!(bucket_index(&bounds, 20), Some(1));
        assert_eq!(bucket_index(&bounds, 29), Some(1));
        assert_eq!(bucket_index(&bounds, 30), None);
    }

    #[test]
    fn extreme_ranges_do_not_overflow() {
        let pieces = plan(&[i64::MIN, i64::MAX]);
        assert_eq!(pieces.first().map(|p| p.lo), Some(i64::MIN));
        assert_eq!(pieces.last().map(|p| p.hi), Some(i64::MAX));
        for pair in pieces.windows(2) {
            assert_eq!(pair[0].hi, pair[1].lo);
        }
    }
}
