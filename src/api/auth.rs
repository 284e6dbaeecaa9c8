//! Authentication and authorization exactly as upstream: the admin API key or a tenant JWT
//! (HS256, `iss` outpost, `sub` tenant, 24 h), checked per route in upstream's order, with
//! empty-bodied 401/403 answers.

use hyper::header::AUTHORIZATION;
use hyper::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::clock::Clock;
use crate::model::identifiers::TenantId;
use crate::model::tenant::Tenant;
use crate::store::Store;

/// Lifetime of a tenant JWT.
pub const TOKEN_TTL_SECONDS: i64 = 86_400;
const ISSUER: &str = "outpost";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deployment_id: Option<String>,
}

/// What the credentials configured at start allow.
pub struct AuthKeys {
    /// `None` in no-auth mode (`API_AUTH_DISABLED=true`): every request is admin.
    pub api_key: Option<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    deployment_id: Option<String>,
    /// Token expiry is judged by this clock, not the system's.
    clock: Clock,
}

impl AuthKeys {
    pub fn new(
        api_key: Option<String>,
        jwt_secret: &str,
        deployment_id: Option<String>,
        clock: Clock,
    ) -> AuthKeys {
        AuthKeys {
            api_key,
            encoding: EncodingKey::from_secret(jwt_secret.as_bytes()),
            decoding: DecodingKey::from_secret(jwt_secret.as_bytes()),
            deployment_id,
            clock,
        }
    }

    /// Mints a tenant JWT valid for 24 hours from `now_seconds`.
    pub fn mint(&self, tenant_id: &str, now_seconds: i64) -> Result<String, ApiError> {
        let claims = Claims {
            iss: ISSUER.into(),
            sub: tenant_id.into(),
            iat: now_seconds,
            exp: now_seconds + TOKEN_TTL_SECONDS,
            deployment_id: self.deployment_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| ApiError::internal())
    }

    /// The tenant id of a valid token issued by outpost that has not expired by the clock.
    fn verify(&self, token: &str) -> Option<String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Expiry is checked below against the clock seam, with the library's rule: a token
        // is expired once `exp` is in the past.
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        (claims.exp >= self.clock.now_seconds()).then_some(claims.sub)
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Tenant(TenantId),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }
}

/// What a route allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// API key only; a JWT gets 403.
    AdminOnly,
    /// API key, or a tenant JWT (confined to its own tenant).
    AdminOrTenant,
}

/// The authenticated caller, with the path tenant loaded when the route has one.
pub struct Authorized {
    pub caller: Caller,
    pub tenant: Option<Tenant>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    (!token.is_empty()).then_some(token)
}

fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant not found")
}

/// Applies upstream's middleware steps for one route. `path_tenant` is the `:tenant_id`
/// segment; `tenant_must_exist` is false only for `PUT /tenants/:id` with the API key.
pub fn authorize(
    keys: &AuthKeys,
    store: &Store,
    headers: &HeaderMap,
    access: Access,
    path_tenant: Option<&str>,
    tenant_must_exist: bool,
) -> Result<Authorized, ApiError> {
    let admin = |store: &Store| -> Result<Authorized, ApiError> {
        let tenant = match path_tenant {
            Some(id) => {
                let tenant = store.get_tenant(id)?;
                if tenant.is_none() && tenant_must_exist {
                    return Err(tenant_not_found());
                }
                tenant
            }
            None => None,
        };
        Ok(Authorized {
            caller: Caller::Admin,
            tenant,
        })
    };
    let Some(api_key) = &keys.api_key else {
        return admin(store);
    };
    let token = bearer(headers).ok_or_else(|| ApiError::bare(StatusCode::UNAUTHORIZED))?;
    if constant_time_eq(token.as_bytes(), api_key.as_bytes()) {
        return admin(store);
    }
    let tenant_id = keys
        .verify(token)
        .ok_or_else(|| ApiError::bare(StatusCode::UNAUTHORIZED))?;
    if access == Access::AdminOnly {
        return Err(ApiError::bare(StatusCode::FORBIDDEN));
    }
    if let Some(path) = path_tenant {
        if path != tenant_id {
            return Err(ApiError::bare(StatusCode::FORBIDDEN));
        }
    }
    let tenant = store
        .get_tenant(&tenant_id)?
        .ok_or_else(|| ApiError::bare(StatusCode::UNAUTHORIZED))?;
    Ok(Authorized {
        caller: Caller::Tenant(tenant_id.into()),
        tenant: Some(tenant),
    })
}

/// Who a request's credentials say it comes from, whatever the route allows; for the audit
/// log of refused requests. Never carries the credential itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// Auth is disabled: every request is admin.
    AuthDisabled,
    /// No usable `Authorization: Bearer` header.
    Nothing,
    /// The admin API key.
    ApiKey,
    /// A valid tenant JWT (its tenant may since have been deleted).
    Tenant(String),
    /// A bearer token that is neither the key nor a valid JWT.
    Invalid,
}

/// Classifies a request's credentials.
pub fn presented(keys: &AuthKeys, headers: &HeaderMap) -> Presented {
    let Some(api_key) = &keys.api_key else {
        return Presented::AuthDisabled;
    };
    let Some(token) = bearer(headers) else {
        return Presented::Nothing;
    };
    if constant_time_eq(token.as_bytes(), api_key.as_bytes()) {
        return Presented::ApiKey;
    }
    keys.verify(token)
        .map_or(Presented::Invalid, Presented::Tenant)
}

/// Compares two byte strings in time that depends on their lengths only: every byte is
/// examined, differences are OR-ed together, and there is no early exit on a mismatch.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_carry_the_tenant() {
        let (clock, control) = Clock::manual(1_700_000_000 * 1_000_000_000);
        let keys = AuthKeys::new(
            Some("k".into()),
            "secret",
            Some("dep".into()),
            clock.clone(),
        );
        let now = clock.now_seconds();
        let token = keys.mint("t1", now).unwrap();
        assert_eq!(keys.verify(&token).as_deref(), Some("t1"));
        let other = AuthKeys::new(Some("k".into()), "other", None, clock.clone());
        assert_eq!(other.verify(&token), None);
        let expired = keys.mint("t1", now - TOKEN_TTL_SECONDS - 10).unwrap();
        assert_eq!(keys.verify(&expired), None);
        // Valid through its last second, refused once the clock passes `exp`.
        control.advance(std::time::Duration::from_secs(TOKEN_TTL_SECONDS as u64));
        assert_eq!(keys.verify(&token).as_deref(), Some("t1"));
        control.advance(std::time::Duration::from_secs(1));
        assert_eq!(keys.verify(&token), None);
    }

    #[test]
    fn compares_keys_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
