//! Pure domain: ids (and the random source behind them), tenants, destinations, topic rules,
//! the filter language, destination-type validation, secrets and signatures.
//!
//! Nothing in here performs I/O, touches tokio or knows about redb; everything is unit-tested
//! beside the code.

use std::collections::BTreeMap;

pub mod destination;
pub mod destination_type;
pub mod event;
pub mod filter;
pub mod identifiers;
pub mod ids;
pub mod matching;
pub mod random;
pub mod retry;
pub mod secret;
pub mod signing;
pub mod strmap;
pub mod tenant;
pub mod topics;

/// A JSON `map<string,string>` field (metadata, config, credentials, …). Sorted, like Go's
/// encoder writes maps, so responses are byte-stable.
pub type StrMap = BTreeMap<String, String>;
