//! Destination rows, keyed by tenant prefix and destination id: create (with the duplicate-id
//! and per-tenant limit checks inside the write), read-modify-write updates, delete, and the
//! per-tenant scan.

use redb::{ReadableTable, Table};

use super::destination_record;
use super::outcome_effects::{subscription, subscription_changed};
use super::secrets::SecretBox;
use super::tables::{self, DESTINATIONS, TENANTS};
use super::{Store, StoreError};
use crate::model::destination::Destination;
use crate::operator_events::OperatorTopic;

/// The answer to a create request.
pub enum CreateDestination {
    Created(Box<Destination>),
    TenantMissing,
    AlreadyExists,
    LimitReached,
}

pub(super) fn tenant_rows(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tenant_id: &str,
    cipher: Option<&SecretBox>,
) -> Result<Vec<Destination>, StoreError> {
    let prefix = tables::tenant_prefix(tenant_id);
    let Some(end) = tables::prefix_end(&prefix) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for row in table.range(prefix.as_slice()..end.as_slice())? {
        let (key, value) = row?;
        rows.push(destination_record::decode(
            value.value(),
            key.value(),
            cipher,
        )?);
    }
    rows.sort_by(|a, b| {
        (a.created_at_ms, a.stored_at_nanos, &a.id).cmp(&(
            b.created_at_ms,
            b.stored_at_nanos,
            &b.id,
        ))
    });
    Ok(rows)
}

fn load(
    table: &Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8],
    cipher: Option<&SecretBox>,
) -> Result<Option<Destination>, StoreError> {
    match table.get(key)? {
        Some(bytes) => Ok(Some(destination_record::decode(
            bytes.value(),
            key,
            cipher,
        )?)),
        None => Ok(None),
    }
}

impl Store {
    /// What a destination write needs to queue `tenant.subscription.updated`: the outbox, and
    /// the rules when that topic is emitted.
    fn subscription_watch(
        &self,
    ) -> (
        std::sync::Arc<super::outbox::OutboxShared>,
        Option<std::sync::Arc<super::OutcomeRules>>,
    ) {
        let rules = self
            .rules
            .get()
            .filter(|rules| rules.events.emits(OperatorTopic::SubscriptionUpdated))
            .cloned();
        (self.outbox.clone(), rules)
    }

    /// Stores a new destination unless the tenant is gone, the id is taken, or the tenant is
    /// at `max_per_tenant` destinations.
    pub async fn create_destination(
        &self,
        destination: Destination,
        max_per_tenant: usize,
    ) -> Result<CreateDestination, StoreError> {
        let (outbox, rules) = self.subscription_watch();
        let cipher = self.cipher.clone();
        self.writer
            .write(move |ctx| {
                let cipher = cipher.as_deref();
                let tenants = ctx.txn.open_table(TENANTS)?;
                if tenants.get(destination.tenant_id.as_str())?.is_none() {
                    return Ok(CreateDestination::TenantMissing);
                }
                let mut table = ctx.txn.open_table(DESTINATIONS)?;
                let key = tables::destination_key(&destination.tenant_id, &destination.id);
                if table.get(key.as_slice())?.is_some() {
                    return Ok(CreateDestination::AlreadyExists);
                }
                if tenant_rows(&table, &destination.tenant_id, cipher)?.len() >= max_per_tenant {
                    return Ok(CreateDestination::LimitReached);
                }
                let before = match &rules {
                    Some(_) => Some(subscription(&table, &destination.tenant_id, cipher)?),
                    None => None,
                };
                table.insert(
                    key.as_slice(),
                    destination_record::encode(&destination, &key, cipher)?.as_slice(),
                )?;
                drop(table);
                if let (Some(rules), Some(before)) = (&rules, &before) {
                    subscription_changed(
                        ctx,
                        rules,
                        &outbox,
                        &destination.tenant_id,
                        before,
                        cipher,
                    )?;
                }
                Ok(CreateDestination::Created(Box::new(destination.clone())))
            })
            .await
    }

    /// Reads the destination inside the write, lets `change` compute its new state (or refuse
    /// with `E`), and stores the result. `None` when the destination does not exist.
    pub async fn update_destination<E, F>(
        &self,
        tenant_id: String,
        destination_id: String,
        mut change: F,
    ) -> Result<Option<Result<Destination, E>>, StoreError>
    where
        F: FnMut(Destination) -> Result<Destination, E> + Send + 'static,
        E: Send + 'static,
    {
        let (outbox, rules) = self.subscription_watch();
        let cipher = self.cipher.clone();
        self.writer
            .write(move |ctx| {
                let cipher = cipher.as_deref();
                let mut table = ctx.txn.open_table(DESTINATIONS)?;
                let key = tables::destination_key(&tenant_id, &destination_id);
                let Some(current) = load(&table, &key, cipher)? else {
                    return Ok(None);
                };
                let updated = match change(current) {
                    Ok(updated) => updated,
                    Err(refusal) => return Ok(Some(Err(refusal))),
                };
                let before = match &rules {
                    Some(_) => Some(subscription(&table, &tenant_id, cipher)?),
                    None => None,
                };
                table.insert(
                    key.as_slice(),
                    destination_record::encode(&updated, &key, cipher)?.as_slice(),
                )?;
                drop(table);
                if let (Some(rules), Some(before)) = (&rules, &before) {
                    subscription_changed(ctx, rules, &outbox, &tenant_id, before, cipher)?;
                }
                Ok(Some(Ok(updated)))
            })
            .await
    }

    /// Removes the destination. `false` when it did not exist.
    pub async fn delete_destination(
        &self,
        tenant_id: String,
        destination_id: String,
    ) -> Result<bool, StoreError> {
        let (outbox, rules) = self.subscription_watch();
        let cipher = self.cipher.clone();
        self.writer
            .write(move |ctx| {
                let cipher = cipher.as_deref();
                let mut table = ctx.txn.open_table(DESTINATIONS)?;
                let key = tables::destination_key(&tenant_id, &destination_id);
                let before = match &rules {
                    Some(_) => Some(subscription(&table, &tenant_id, cipher)?),
                    None => None,
                };
                let removed = table.remove(key.as_slice())?.is_some();
                drop(table);
                if removed {
                    super::outcome_effects::destination_deleted(ctx.txn, &key)?;
                    if let (Some(rules), Some(before)) = (&rules, &before) {
                        subscription_changed(ctx, rules, &outbox, &tenant_id, before, cipher)?;
                    }
                }
                Ok(removed)
            })
            .await
    }

    pub fn get_destination(
        &self,
        tenant_id: &str,
        destination_id: &str,
    ) -> Result<Option<Destination>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(DESTINATIONS)?;
        let key = tables::destination_key(tenant_id, destination_id);
        match table.get(key.as_slice())? {
            Some(bytes) => Ok(Some(destination_record::decode(
                bytes.value(),
                &key,
                self.cipher.as_deref(),
            )?)),
            None => Ok(None),
        }
    }

    /// The tenant's destinations, oldest first.
    pub fn tenant_destinations(&self, tenant_id: &str) -> Result<Vec<Destination>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(DESTINATIONS)?;
        tenant_rows(&table, tenant_id, self.cipher.as_deref())
    }
}
