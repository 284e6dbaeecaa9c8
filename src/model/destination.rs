//! The destination record: where a tenant's events go (a webhook URL, a queue, …), which topics
//! it subscribes to, and its optional JSON filter.

use serde::{Deserialize, Serialize};

use super::destination_type::DestinationKind;
use super::identifiers::{DestinationId, TenantId};
use super::StrMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: DestinationId,
    pub tenant_id: TenantId,
    /// The destination type as stored and shown (`webhook`, `aws_sqs`, …); see
    /// [`Destination::destination_kind`] for the typed value.
    pub kind: String,
    /// Normalized topic entries; `["*"]` subscribes to everything.
    pub topics: Vec<String>,
    /// The filter as compact JSON text of a non-empty object; `None` matches every event.
    pub filter: Option<String>,
    pub config: StrMap,
    pub credentials: StrMap,
    pub delivery_metadata: StrMap,
    pub metadata: StrMap,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
    /// When the row was first stored (unix nanos): orders destinations created in the same
    /// millisecond by creation.
    pub stored_at_nanos: i64,
}

impl Destination {
    pub fn is_enabled(&self) -> bool {
        self.disabled_at_ms.is_none()
    }

    /// The typed destination type; `None` when the stored name is not one this build knows.
    pub fn destination_kind(&self) -> Option<DestinationKind> {
        DestinationKind::parse(&self.kind)
    }
}

#[cfg(test)]
impl Destination {
    /// A destination for tests: the given tenant, id and type, subscribed to every topic, with
    /// empty maps and zero times; tests override what they need with struct-update syntax.
    pub fn sample(tenant_id: &str, id: &str, kind: &str) -> Destination {
        Destination {
            id: id.into(),
            tenant_id: tenant_id.into(),
            kind: kind.into(),
            topics: vec!["*".into()],
            filter: None,
            config: StrMap::new(),
            credentials: StrMap::new(),
            delivery_metadata: StrMap::new(),
            metadata: StrMap::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            disabled_at_ms: None,
            stored_at_nanos: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_kind(kind: &str) -> Destination {
        Destination::sample("t1", "d1", kind)
    }

    #[test]
    fn the_stored_type_name_parses_into_its_kind() {
        for kind in DestinationKind::ALL {
            assert_eq!(with_kind(kind.as_str()).destination_kind(), Some(kind));
        }
        for unknown in ["", "Webhook", "webhook_standard", "smtp", " webhook"] {
            assert_eq!(with_kind(unknown).destination_kind(), None, "{unknown:?}");
        }
    }
}
