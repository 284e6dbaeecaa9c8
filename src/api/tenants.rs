//! Tenant routes: upsert, read, delete, the paged list, and the tenant JWT and portal URL.

use hyper::StatusCode;
use serde_json::json;

use super::auth::{Authorized, Caller};
use super::display;
use super::error::ApiError;
use super::pagination::{self, Page};
use super::query::Query;
use super::reply::{self, Reply};
use super::requests;
use super::AppState;
use crate::model::tenant::Tenant;
use crate::store::TenantUpsert;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

fn tenant_reply(state: &AppState, status: StatusCode, tenant: &Tenant) -> Result<Reply, ApiError> {
    let destinations = state.store.tenant_destinations(&tenant.id)?;
    Ok(reply::json(status, &display::tenant(tenant, &destinations)))
}

/// `PUT /tenants/:id`: 201 on create, 200 on update (metadata replaced).
pub async fn upsert(
    state: &AppState,
    auth: &Authorized,
    tenant_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let metadata = requests::tenant_metadata(body)?;
    if !auth.caller.is_admin() && auth.tenant.is_none() {
        return Err(ApiError::bare(StatusCode::UNAUTHORIZED));
    }
    let now = state.clock.now_ms();
    match state
        .store
        .upsert_tenant(tenant_id.to_string(), metadata, now)
        .await?
    {
        TenantUpsert::Created(tenant) => tenant_reply(state, StatusCode::CREATED, &tenant),
        TenantUpsert::Updated(tenant) => tenant_reply(state, StatusCode::OK, &tenant),
    }
}

pub fn get(state: &AppState, auth: &Authorized) -> Result<Reply, ApiError> {
    let tenant = auth
        .tenant
        .as_ref()
        .ok_or_else(|| ApiError::not_found("tenant not found"))?;
    tenant_reply(state, StatusCode::OK, tenant)
}

pub async fn delete(state: &AppState, tenant_id: &str) -> Result<Reply, ApiError> {
    if !state.store.delete_tenant(tenant_id.to_string()).await? {
        return Err(ApiError::not_found("tenant not found"));
    }
    Ok(reply::success())
}

fn parse_limit(query: &Query) -> Result<usize, ApiError> {
    match query.get("limit") {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(text) => {
            let value: i64 = text
                .parse()
                .map_err(|_| ApiError::bad_request("invalid limit: must be an integer"))?;
            if !(1..=MAX_LIMIT as i64).contains(&value) {
                return Err(ApiError::bad_request(
                    "invalid limit: must be between 1 and 100",
                ));
            }
            Ok(value as usize)
        }
    }
}

/// Cursor position of a tenant: `<created_at_ms>:<id>`.
fn position(tenant: &Tenant) -> String {
    format!("{}:{}", tenant.created_at_ms, tenant.id)
}

fn key_of_position(position: &str) -> Result<Vec<u8>, ApiError> {
    let invalid = || ApiError::bad_request("invalid cursor");
    let (ms, id) = position.split_once(':').ok_or_else(invalid)?;
    let ms: u64 = ms.parse().map_err(|_| invalid())?;
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    Ok(key)
}

/// `GET /tenants`: admins page through every tenant; a tenant JWT sees only its own.
pub fn list(state: &AppState, auth: &Authorized, query: &Query) -> Result<Reply, ApiError> {
    if let (Caller::Tenant(_), Some(tenant)) = (&auth.caller, &auth.tenant) {
        let destinations = state.store.tenant_destinations(&tenant.id)?;
        return Ok(reply::ok(&json!({
            "models": [display::tenant(tenant, &destinations)],
            "count": 1,
            "pagination": {"order_by": "created_at", "dir": "desc", "limit": 1, "next": null, "prev": null},
        })));
    }
    let limit = parse_limit(query)?;
    match query.get("order_by") {
        None | Some("") | Some("created_at") => {}
        Some(_) => {
            return Err(ApiError::with_data(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation error",
                json!({"query.order_by": "must be one of: [created_at]"}),
            ))
        }
    }
    let request = pagination::parse_request(query, "tnt", limit)?;
    let ids = query.array("id");
    let (page, count): (Page<Tenant>, u64) = if ids.is_empty() {
        let page = pagination::paginate(
            &request,
            "tnt",
            |direction, after, n| {
                let after = after.map(key_of_position).transpose()?;
                Ok(state
                    .store
                    .scan_tenants(direction, after.as_deref(), n)?
                    .into_iter()
                    .map(|(_, t)| t)
                    .collect())
            },
            position,
        )?;
        (page, state.store.tenant_count()?)
    } else {
        let matching = state.store.tenants_by_ids(&ids)?;
        let count = matching.len() as u64;
        let page = pagination::paginate(
            &request,
            "tnt",
            |direction, after, n| {
                let after = after.map(key_of_position).transpose()?;
                let in_order: Box<dyn Iterator<Item = &(Vec<u8>, Tenant)>> = match direction {
                    crate::store::Direction::Asc => Box::new(matching.iter()),
                    crate::store::Direction::Desc => Box::new(matching.iter().rev()),
                };
                Ok(in_order
                    .filter(|(key, _)| match (&after, direction) {
                        (None, _) => true,
                        (Some(a), crate::store::Direction::Asc) => key > a,
                        (Some(a), crate::store::Direction::Desc) => key < a,
                    })
                    .take(n)
                    .map(|(_, t)| t.clone())
                    .collect())
            },
            position,
        )?;
        (page, count)
    };
    let mut models = Vec::with_capacity(page.items.len());
    for tenant in &page.items {
        let destinations = state.store.tenant_destinations(&tenant.id)?;
        models.push(display::tenant(tenant, &destinations));
    }
    Ok(reply::ok(&json!({
        "models": models,
        "pagination": pagination::pagination_json("created_at", &request, &page.next, &page.prev),
        "count": count,
    })))
}

/// `GET /tenants/:id/token`.
pub fn token(state: &AppState, tenant_id: &str) -> Result<Reply, ApiError> {
    let token = state.keys.mint(tenant_id, state.clock.now_seconds())?;
    Ok(reply::ok(&json!({"token": token, "tenant_id": tenant_id})))
}

/// `GET /tenants/:id/portal`: a redirect URL on the host the request came to.
pub fn portal(
    state: &AppState,
    tenant_id: &str,
    query: &Query,
    host: &str,
) -> Result<Reply, ApiError> {
    let token = state.keys.mint(tenant_id, state.clock.now_seconds())?;
    let mut url = format!("http://{host}?token={token}");
    if let Some(theme @ ("light" | "dark")) = query.get("theme") {
        url.push_str("&theme=");
        url.push_str(theme);
    }
    Ok(reply::ok(
        &json!({"redirect_url": url, "tenant_id": tenant_id}),
    ))
}
