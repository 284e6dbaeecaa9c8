//! What a commit does besides its own records, for the operator's sake: the alert state of a
//! destination moved by an attempt (its failure streak, auto-disable, the exhausted-retries
//! window) and the operator events the attempt or a destination change causes, added to the
//! outbox. All of it happens inside the caller's write, so a crash keeps or loses the attempt
//! and its consequences together: no count is lost or doubled, no event goes missing.

use std::sync::Arc;

use redb::{ReadableTable, WriteTransaction};

use super::destination_record;
use super::destinations::tenant_rows;
use super::outbox::{self, OutboxShared};
use super::secrets::SecretBox;
use super::tables;
use super::writer::WriteCtx;
use super::{codec, StoreError};
use crate::alerts::{evaluate, AlertRules, AlertState, AttemptFacts};
use crate::clock::Clock;
use crate::model::destination::Destination;
use crate::model::event::{Attempt, AttemptStatus, Event};
use crate::model::topics::tenant_topics;
use crate::operator_events::{
    attempt_event, consecutive_failure_event, destination_disabled_event, exhausted_retries_event,
    subscription_updated_event, Envelope, OperatorEventSettings, OperatorTopic, Stamp,
    Subscription,
};

/// The settings commits apply; a store opened without them applies none.
pub struct OutcomeRules {
    pub alerts: AlertRules,
    pub events: OperatorEventSettings,
    /// Stamps operator events.
    pub clock: Clock,
}

impl OutcomeRules {
    pub fn off() -> OutcomeRules {
        OutcomeRules {
            alerts: AlertRules::OFF,
            events: OperatorEventSettings::default(),
            clock: Clock::system(),
        }
    }

    fn stamp_id(&self) -> Result<String, StoreError> {
        crate::model::ids::random_uuid().map_err(|e| StoreError::Encode {
            table: "operator_outbox",
            reason: e.to_string(),
        })
    }

    fn seal(
        &self,
        build: impl FnOnce(&Stamp<'_>) -> Result<Envelope, serde_json::Error>,
    ) -> Result<Envelope, StoreError> {
        let id = self.stamp_id()?;
        let stamp = Stamp {
            id: &id,
            time_nanos: self.clock.now_nanos(),
            deployment_id: self.events.deployment_id.as_deref(),
        };
        build(&stamp).map_err(|e| StoreError::Encode {
            table: "operator_outbox",
            reason: e.to_string(),
        })
    }
}

/// What the dispatcher read for a delivery and hands back with its outcome, for alerts and
/// operator events.
pub struct AttemptContext {
    pub event: Event,
    pub destination: Destination,
}

/// What an attempt's commit raised, announced after the commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raised {
    /// Alert topics raised (whether or not a sink receives them).
    pub alerts: Vec<OperatorTopic>,
    /// The destination was disabled by this attempt.
    pub disabled: bool,
}

fn load_state(txn: &WriteTransaction, key: &[u8]) -> Result<Option<AlertState>, StoreError> {
    let table = txn.open_table(tables::ALERT_STATE)?;
    let value = table.get(key)?;
    match value {
        Some(bytes) => Ok(Some(codec::decode("alert_state", bytes.value())?)),
        None => Ok(None),
    }
}

fn save_state(
    txn: &WriteTransaction,
    key: &[u8],
    state: Option<&AlertState>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::ALERT_STATE)?;
    match state {
        Some(state) => {
            table.insert(key, codec::encode("alert_state", state)?.as_slice())?;
        }
        None => {
            table.remove(key)?;
        }
    }
    Ok(())
}

/// Disables the destination at `now_ms` unless it is gone or already disabled; the stored
/// record after the change.
fn auto_disable(
    txn: &WriteTransaction,
    key: &[u8],
    now_ms: i64,
    cipher: Option<&SecretBox>,
) -> Result<Option<Destination>, StoreError> {
    let mut table = txn.open_table(tables::DESTINATIONS)?;
    let current: Option<Destination> = match table.get(key)? {
        Some(bytes) => Some(destination_record::decode(bytes.value(), key, cipher)?),
        None => None,
    };
    let Some(mut destination) = current.filter(Destination::is_enabled) else {
        return Ok(None);
    };
    destination.disabled_at_ms = Some(now_ms);
    destination.updated_at_ms = now_ms;
    table.insert(
        key,
        destination_record::encode(&destination, key, cipher)?.as_slice(),
    )?;
    Ok(Some(destination))
}

/// Whether the destination an attempt was made to is still the one stored under `key`
/// (not deleted, nor deleted and created again under the same id, since it was read).
fn still_stored(
    txn: &WriteTransaction,
    key: &[u8],
    destination: &Destination,
) -> Result<bool, StoreError> {
    let table = txn.open_table(tables::DESTINATIONS)?;
    let row = table.get(key)?;
    match row {
        Some(bytes) => {
            Ok(destination_record::created_at_ms(bytes.value())? == destination.created_at_ms)
        }
        None => Ok(false),
    }
}

/// Applies a freshly recorded attempt to its destination's alert state and queues the operator
/// events it causes, in this order: `alert.destination.disabled`,
/// `alert.destination.consecutive_failure`, `alert.attempt.exhausted_retries`, then
/// `attempt.success` or `attempt.failed`.
pub(super) fn attempt_recorded(
    ctx: &mut WriteCtx<'_>,
    rules: &OutcomeRules,
    outbox_shared: &Arc<OutboxShared>,
    attempt: &Attempt,
    context: &AttemptContext,
    now_ms: i64,
    cipher: Option<&SecretBox>,
) -> Result<Raised, StoreError> {
    let success = attempt.status == AttemptStatus::Success;
    let attempt_topic = if success {
        OperatorTopic::AttemptSuccess
    } else {
        OperatorTopic::AttemptFailed
    };
    let mut raised = Raised::default();
    let mut events = Vec::new();
    let mut destination = std::borrow::Cow::Borrowed(&context.destination);
    let key = tables::destination_key(&attempt.tenant_id, &attempt.destination_id);
    // The state belongs to the destination the attempt was made to: one deleted while the
    // attempt was in flight (and any later one under its id) is left alone.
    if rules.alerts.any() && still_stored(ctx.txn, &key, &context.destination)? {
        let before = load_state(ctx.txn, &key)?;
        let (state, verdict) = evaluate(
            &rules.alerts,
            before.clone(),
            AttemptFacts {
                success,
                attempt_number: attempt.attempt_number,
                eligible_for_retry: context.event.eligible_for_retry,
            },
            now_ms,
        );
        // Most attempts (a success with no streak) change nothing: no write for them.
        if state != before {
            save_state(ctx.txn, &key, state.as_ref())?;
        }
        if verdict.disable {
            if let Some(disabled) = auto_disable(ctx.txn, &key, now_ms, cipher)? {
                raised.disabled = true;
                raised.alerts.push(OperatorTopic::DestinationDisabled);
                destination = std::borrow::Cow::Owned(disabled);
            }
        }
        let event = &context.event;
        if raised.disabled && rules.events.emits(OperatorTopic::DestinationDisabled) {
            events.push(
                rules.seal(|stamp| {
                    destination_disabled_event(stamp, event, attempt, &destination)
                })?,
            );
        }
        if let Some(counts) = verdict.consecutive_failure {
            raised.alerts.push(OperatorTopic::ConsecutiveFailure);
            if rules.events.emits(OperatorTopic::ConsecutiveFailure) {
                events.push(rules.seal(|stamp| {
                    consecutive_failure_event(stamp, event, attempt, &destination, counts)
                })?);
            }
        }
        if verdict.exhausted_retries {
            raised.alerts.push(OperatorTopic::ExhaustedRetries);
            if rules.events.emits(OperatorTopic::ExhaustedRetries) {
                events.push(
                    rules.seal(|stamp| {
                        exhausted_retries_event(stamp, event, attempt, &destination)
                    })?,
                );
            }
        }
    }
    if rules.events.emits(attempt_topic) {
        events
            .push(rules.seal(|stamp| attempt_event(stamp, &context.event, attempt, &destination))?);
    }
    outbox::push(ctx, outbox_shared, &events)?;
    Ok(raised)
}

/// A tenant's subscription as its destination rows say.
pub(super) fn subscription(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tenant_id: &str,
    cipher: Option<&SecretBox>,
) -> Result<Subscription, StoreError> {
    let rows = tenant_rows(table, tenant_id, cipher)?;
    Ok(Subscription {
        topics: tenant_topics(rows.iter().map(|d| d.topics.as_slice())),
        destinations_count: rows.len(),
    })
}

/// Queues `tenant.subscription.updated` when a destination change moved the tenant's topics
/// or destination count.
pub(super) fn subscription_changed(
    ctx: &mut WriteCtx<'_>,
    rules: &OutcomeRules,
    outbox_shared: &Arc<OutboxShared>,
    tenant_id: &str,
    before: &Subscription,
    cipher: Option<&SecretBox>,
) -> Result<(), StoreError> {
    let after = {
        let table = ctx.txn.open_table(tables::DESTINATIONS)?;
        subscription(&table, tenant_id, cipher)?
    };
    if after == *before {
        return Ok(());
    }
    let event = rules.seal(|stamp| subscription_updated_event(stamp, tenant_id, before, &after))?;
    outbox::push(ctx, outbox_shared, &[event])
}

/// Forgets the alert state of a deleted destination.
pub(super) fn destination_deleted(txn: &WriteTransaction, key: &[u8]) -> Result<(), StoreError> {
    txn.open_table(tables::ALERT_STATE)?.remove(key)?;
    Ok(())
}
