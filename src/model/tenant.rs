//! The tenant record: one per customer of the platform, with free-form string metadata.

use serde::{Deserialize, Serialize};

use super::identifiers::TenantId;
use super::StrMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub metadata: StrMap,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}
