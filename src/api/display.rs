//! The JSON shapes of tenants and destinations as the API shows them (upstream's field names,
//! omissions and credential display rules).

use serde_json::{json, Map, Value};

use crate::model::destination::Destination;
use crate::model::destination_type::Registry;
use crate::model::tenant::Tenant;
use crate::model::topics;
use crate::time::format_millis;

/// Tenant JSON: `destinations_count` and `topics` derive from its live destinations.
pub fn tenant(tenant: &Tenant, destinations: &[Destination]) -> Value {
    let topics = topics::tenant_topics(destinations.iter().map(|d| d.topics.as_slice()));
    let mut out = json!({
        "id": tenant.id,
        "destinations_count": destinations.len(),
        "topics": topics,
        "created_at": format_millis(tenant.created_at_ms),
        "updated_at": format_millis(tenant.updated_at_ms),
    });
    if !tenant.metadata.is_empty() {
        out["metadata"] = json!(tenant.metadata);
    }
    out
}

/// Displayed destination JSON, credentials shown per the type's rules.
pub fn destination(registry: &Registry, destination: &Destination, now_ms: i64) -> Value {
    let (target, target_url) = registry.target_with(
        &destination.kind,
        &destination.config,
        &destination.credentials,
        &destination.topics,
    );
    let mut out = Map::new();
    out.insert("id".into(), json!(destination.id));
    out.insert("tenant_id".into(), json!(destination.tenant_id));
    out.insert("type".into(), json!(destination.kind));
    out.insert("topics".into(), json!(destination.topics));
    if let Some(filter) = destination
        .filter
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    {
        out.insert("filter".into(), filter);
    }
    out.insert("config".into(), json!(destination.config));
    out.insert(
        "credentials".into(),
        json!(registry.display_credentials(&destination.kind, &destination.credentials, now_ms)),
    );
    if !destination.delivery_metadata.is_empty() {
        out.insert(
            "delivery_metadata".into(),
            json!(destination.delivery_metadata),
        );
    }
    if !destination.metadata.is_empty() {
        out.insert("metadata".into(), json!(destination.metadata));
    }
    out.insert(
        "created_at".into(),
        json!(format_millis(destination.created_at_ms)),
    );
    out.insert(
        "updated_at".into(),
        json!(format_millis(destination.updated_at_ms)),
    );
    out.insert(
        "disabled_at".into(),
        json!(destination.disabled_at_ms.map(format_millis)),
    );
    out.insert("target".into(), json!(target));
    if let Some(url) = target_url.filter(|u| !u.is_empty()) {
        out.insert("target_url".into(), json!(url));
    }
    Value::Object(out)
}
