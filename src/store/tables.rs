//! Table definitions and key layouts. Composite keys are byte strings built so that redb's
//! ordering is the order we list in: fixed-width big-endian numbers and length-prefixed strings.

use redb::TableDefinition;

/// `schema_version` → u32 (big-endian).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// tenant id → `Tenant` record.
pub const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
/// `created_at_ms (u64 BE) ++ tenant id` → (). Listing order for `GET /tenants`.
pub const TENANTS_BY_CREATED: TableDefinition<&[u8], ()> =
    TableDefinition::new("tenants_by_created");
/// `tenant prefix ++ destination id` → `Destination` record.
pub const DESTINATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("destinations");

/// The schema version this binary writes and the newest it can open.
pub const SCHEMA_VERSION: u32 = 1;

/// Length-prefixed tenant id: all of one tenant's rows share this prefix and no other
/// tenant's key can start with it.
pub fn tenant_prefix(tenant_id: &str) -> Vec<u8> {
    let len = u32::try_from(tenant_id.len()).unwrap_or(u32::MAX);
    let mut key = Vec::with_capacity(4 + tenant_id.len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(tenant_id.as_bytes());
    key
}

pub fn destination_key(tenant_id: &str, destination_id: &str) -> Vec<u8> {
    let mut key = tenant_prefix(tenant_id);
    key.extend_from_slice(destination_id.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub fn tenant_created_key(created_at_ms: i64, tenant_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + tenant_id.len());
    key.extend_from_slice(&(created_at_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(tenant_id.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_prefixes_do_not_collide() {
        let a = destination_key("ab", "c");
        let b = destination_key("a", "bc");
        assert_ne!(a, b);
        assert!(!a.starts_with(&tenant_prefix("a")));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }

    #[test]
    fn created_keys_sort_by_time_then_id() {
        assert!(tenant_created_key(1, "z") < tenant_created_key(2, "a"));
        assert!(tenant_created_key(2, "a") < tenant_created_key(2, "b"));
    }
}
