//! One audit entry: who changed what, when, and how it ended.

use serde::{Deserialize, Serialize};

/// How a recorded request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer: the change was made.
    Ok,
    /// A 401 or 403 answer: the change was refused.
    Refused,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the answer was known, RFC 3339 UTC.
    pub time: String,
    /// Who: `admin` (the API key, never its value), `tenant:<id>` (a tenant JWT),
    /// `auth-disabled` (`API_AUTH_DISABLED=true`), `anonymous` (no credentials) or
    /// `invalid-credentials` (a bearer token that is neither).
    pub actor: String,
    /// The HTTP method.
    pub method: String,
    /// The route's pattern from the route table, never the path with its values.
    pub route: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Whether the change rotated a destination's signing secret (a PATCH with
    /// `credentials.rotate_secret`); omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret_rotated: bool,
    /// The answer's status code.
    pub status: u16,
    pub outcome: Outcome,
}

/// Ids a handler learned while serving that the path does not hold (a created destination's
/// id, a retried event's tenant and destination); attached to its reply as an extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub tenant_id: Option<String>,
    pub destination_id: Option<String>,
    pub event_id: Option<String>,
    /// The update rotated the destination's signing secret.
    pub secret_rotated: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}
