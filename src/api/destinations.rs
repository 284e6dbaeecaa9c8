//! Destination routes: list (with `type`/`topics` filters), create, read, merge-patch update,
//! delete, enable and disable. A created destination's reply carries its id for the audit log.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::Value;

use super::auth::{Authorized, Caller};
use super::display;
use super::error::ApiError;
use super::query::Query;
use super::reply::{self, Reply};
use super::requests::{
    apply_patch, past_timestamp, topics_error, CreateDestinationBody, UpdateDestinationBody,
};
use super::AppState;
use crate::audit::Subject;
use crate::model::destination::Destination;
use crate::model::destination_type::{Draft, PrepareContext, PrepareError, Role};
use crate::model::topics;
use crate::store::CreateDestination;
use crate::time::Timestamp;

fn not_found() -> ApiError {
    ApiError::bare(StatusCode::NOT_FOUND)
}

fn role_of(caller: &Caller) -> Role {
    match caller {
        Caller::Admin => Role::Admin,
        Caller::Tenant(_) => Role::Tenant,
    }
}

fn prepare_error(error: PrepareError) -> ApiError {
    match error {
        PrepareError::Validation(messages) => ApiError::validation(messages),
    }
}

fn show(state: &AppState, destination: &Destination) -> Value {
    display::destination(&state.registry, destination, state.clock.now_ms())
}

/// `GET /tenants/:id/destinations`.
pub fn list(state: &AppState, tenant_id: &str, query: &Query) -> Result<Reply, ApiError> {
    let kinds = query.array("type");
    let wanted_topics = query.array("topics");
    let destinations = state.store.tenant_destinations(tenant_id)?;
    let shown: Vec<Value> = destinations
        .iter()
        .filter(|d| kinds.is_empty() || kinds.contains(&d.kind))
        .filter(|d| {
            wanted_topics.is_empty() || topics::destination_covers_all(&d.topics, &wanted_topics)
        })
        .map(|d| show(state, d))
        .collect();
    Ok(reply::ok(&shown))
}

/// `POST /tenants/:id/destinations`.
pub async fn create(
    state: &Arc<AppState>,
    auth: &Authorized,
    tenant_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let CreateDestinationBody {
        body,
        id,
        kind,
        topics: topics_value,
        filter,
        config,
        credentials,
        delivery_metadata,
        metadata,
        sets_timestamps,
    } = CreateDestinationBody::parse(body)?;
    let now = state.clock.now_ms();
    if sets_timestamps && !auth.caller.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "created_at and updated_at can only be set with API key authentication",
        ));
    }
    let created_at = past_timestamp(&body, "created_at", now)?.unwrap_or(now);
    let updated_at = past_timestamp(&body, "updated_at", now)?.unwrap_or(created_at);
    let disabled_at = past_timestamp(&body, "disabled_at", now)?;
    let topics = state
        .topic_rules
        .destination_topics(&topics_value)
        .map_err(topics_error)?;
    if !state.registry.contains(&kind) {
        return Err(ApiError::unprocessable(format!(
            "no provider registered for destination type: {kind}"
        )));
    }
    let mut draft = Draft {
        config,
        credentials,
    };
    // Drawn up front so a failing random source answers 500; the registry uses it only when
    // the destination needs a generated secret.
    let secret = state.new_secret()?;
    let generate = || secret.clone();
    state
        .registry
        .prepare(
            &kind,
            &mut draft,
            &PrepareContext {
                role: role_of(&auth.caller),
                existing: None,
                revalidate: true,
                now_unix_ms: now,
                generate_secret: &generate,
            },
        )
        .map_err(prepare_error)?;
    let id_time = Timestamp::from_unix_millis(now).unix_millis_since_epoch();
    let destination = Destination {
        id: match id {
            Some(id) => id.into(),
            None => state.config.ids.destination_id(id_time)?,
        },
        tenant_id: tenant_id.into(),
        kind,
        topics,
        filter,
        config: draft.config,
        credentials: draft.credentials,
        delivery_metadata,
        metadata,
        created_at_ms: created_at,
        updated_at_ms: updated_at,
        disabled_at_ms: disabled_at,
        stored_at_nanos: state.clock.now_nanos(),
    };
    match state
        .store
        .create_destination(destination, state.config.max_destinations_per_tenant)
        .await?
    {
        CreateDestination::Created(d) => {
            let mut reply = reply::json(StatusCode::CREATED, &show(state, &d));
            reply.extensions_mut().insert(Subject {
                destination_id: Some(d.id.to_string()),
                ..Subject::default()
            });
            Ok(reply)
        }
        CreateDestination::TenantMissing => Err(ApiError::not_found("tenant not found")),
        CreateDestination::AlreadyExists => {
            Err(ApiError::bad_request("destination already exists"))
        }
        CreateDestination::LimitReached => Err(ApiError::bad_request(
            "maximum number of destinations per tenant reached",
        )),
    }
}

/// `GET /tenants/:id/destinations/:did`.
pub fn get(state: &AppState, tenant_id: &str, destination_id: &str) -> Result<Reply, ApiError> {
    let destination = state
        .store
        .get_destination(tenant_id, destination_id)?
        .ok_or_else(not_found)?;
    Ok(reply::ok(&show(state, &destination)))
}

/// `PATCH /tenants/:id/destinations/:did`.
pub async fn update(
    state: &Arc<AppState>,
    auth: &Authorized,
    tenant_id: &str,
    destination_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let now = state.clock.now_ms();
    let UpdateDestinationBody {
        kind,
        topics,
        filter,
        config,
        credentials,
        delivery_metadata,
        metadata,
        disabled_at,
    } = UpdateDestinationBody::parse(body, &state.topic_rules, now)?;
    let role = role_of(&auth.caller);
    // Drawn here, outside the write, so a failing random source answers 500 before anything
    // is written; used only if the update rotates the secret.
    let secret = state.new_secret()?;
    let secret_for_audit = secret.clone();
    let worker_state = state.clone();
    let outcome = state
        .store
        .update_destination(
            tenant_id.to_string(),
            destination_id.to_string(),
            move |mut current: Destination| {
                let state = &worker_state;
                if kind.as_ref().is_some_and(|k| *k != current.kind) {
                    return Err(ApiError::unprocessable("type cannot be updated"));
                }
                let merged_config = apply_patch(&current.config, &config);
                let merged_credentials = apply_patch(&current.credentials, &credentials);
                let changed =
                    merged_config != current.config || merged_credentials != current.credentials;
                let existing = Draft {
                    config: current.config.clone(),
                    credentials: current.credentials.clone(),
                };
                let mut draft = Draft {
                    config: merged_config,
                    credentials: merged_credentials,
                };
                let generate = || secret.clone();
                state
                    .registry
                    .prepare(
                        &current.kind,
                        &mut draft,
                        &PrepareContext {
                            role,
                            existing: Some(&existing),
                            revalidate: changed,
                            now_unix_ms: now,
                            generate_secret: &generate,
                        },
                    )
                    .map_err(prepare_error)?;
                current.config = draft.config;
                current.credentials = draft.credentials;
                if let Some(topics) = &topics {
                    current.topics = topics.clone();
                }
                if let Some(filter) = &filter {
                    current.filter = filter.clone();
                }
                current.delivery_metadata =
                    apply_patch(&current.delivery_metadata, &delivery_metadata);
                current.metadata = apply_patch(&current.metadata, &metadata);
                if let Some(disabled_at) = disabled_at {
                    current.disabled_at_ms = disabled_at;
                }
                current.updated_at_ms = now;
                Ok(current)
            },
        )
        .await?;
    match outcome {
        None => Err(not_found()),
        Some(Err(refusal)) => Err(refusal),
        Some(Ok(updated)) => {
            // The fresh secret drawn above is stored only when the update rotated the secret.
            let rotated = updated.credentials.get("secret") == Some(&secret_for_audit);
            let mut reply = reply::ok(&show(state, &updated));
            if rotated {
                reply.extensions_mut().insert(Subject {
                    secret_rotated: true,
                    ..Subject::default()
                });
            }
            Ok(reply)
        }
    }
}

/// `DELETE /tenants/:id/destinations/:did`.
pub async fn delete(
    state: &AppState,
    tenant_id: &str,
    destination_id: &str,
) -> Result<Reply, ApiError> {
    if !state
        .store
        .delete_destination(tenant_id.to_string(), destination_id.to_string())
        .await?
    {
        return Err(not_found());
    }
    Ok(reply::success())
}

/// `PUT …/enable` and `PUT …/disable`: idempotent; only a change of state is written.
pub async fn set_enabled(
    state: &AppState,
    tenant_id: &str,
    destination_id: &str,
    enabled: bool,
) -> Result<Reply, ApiError> {
    let now = state.clock.now_ms();
    let outcome = state
        .store
        .update_destination::<ApiError, _>(
            tenant_id.to_string(),
            destination_id.to_string(),
            move |mut current| {
                if current.is_enabled() != enabled {
                    current.disabled_at_ms = if enabled { None } else { Some(now) };
                    current.updated_at_ms = now;
                }
                Ok(current)
            },
        )
        .await?;
    match outcome {
        Some(Ok(destination)) => Ok(reply::ok(&show(state, &destination))),
        Some(Err(refusal)) => Err(refusal),
        None => Err(not_found()),
    }
}
