//! The destination record: where a tenant's events go (a webhook URL, a queue, …), which topics
//! it subscribes to, and its optional JSON filter.

use serde::{Deserialize, Serialize};

use super::identifiers::{DestinationId, TenantId};
use super::StrMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: DestinationId,
    pub tenant_id: TenantId,
    /// The destination type (`webhook`, `aws_sqs`, …).
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
}
