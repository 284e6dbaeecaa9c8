//! Typed identifiers: a tenant id cannot be passed where a destination id is expected, and a
//! signature says which id it takes. Each is a string newtype, serialized transparently, so the
//! stored records and the wire format are exactly those of a plain string.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        /// Debug output is the quoted text, as for a `String`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

identifier!(
    /// A tenant's id, chosen by the platform (`PUT /tenants/{tenant_id}`).
    TenantId
);
identifier!(
    /// A destination's id, unique within its tenant.
    DestinationId
);
identifier!(
    /// An event's id: the publisher's, or generated; also its idempotency key.
    EventId
);
identifier!(
    /// A delivery attempt's id, generated.
    AttemptId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_encode_exactly_as_strings() {
        let typed = EventId::new("evt_1");
        assert_eq!(
            postcard::to_allocvec(&typed).unwrap(),
            postcard::to_allocvec("evt_1").unwrap()
        );
        assert_eq!(serde_json::to_string(&typed).unwrap(), r#""evt_1""#);
        let back: EventId = postcard::from_bytes(&postcard::to_allocvec("evt_1").unwrap()).unwrap();
        assert_eq!(back, "evt_1");
    }

    #[test]
    fn identifiers_compare_with_text() {
        let tenant = TenantId::from("acme");
        assert_eq!(tenant, "acme");
        assert_eq!(tenant, "acme".to_string());
        assert_eq!(&*tenant, "acme");
        assert_eq!(tenant.to_string(), "acme");
        assert_eq!(format!("{tenant:?}"), r#""acme""#);
    }
}
