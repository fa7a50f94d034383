//! Who is calling: the session cookie (web UI) or a bearer token (API), checked on every
//! request against the accounts read model.

use crate::accounts::{SESSION_ABSOLUTE_US_MAX, SESSION_IDLE_US_MAX, User};
use crate::credentials::{secret_name_session_seen, token_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use cellops_domain::{Role, SiteId, Timestamp};
use cellops_ledger::Backend;

pub const SESSION_COOKIE: &str = "cellops_session";
/// Session activity is written at most this often (a write per request would be wasteful).
const SESSION_TOUCH_US_MIN: i64 = 30 * 1_000_000;

/// Paths a user who must change their password may still call.
const PASSWORD_CHANGE_PATHS: [&str; 3] = ["/api/auth/password", "/api/auth/logout", "/api/auth/me"];

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// SHA-256 of the session token, when the caller came with a session cookie.
    pub session_hash: Option<String>,
}

impl Caller {
    /// Refuses unless the caller holds one of `roles` at `site`.
    pub fn require(&self, roles: &[Role], site: &SiteId) -> ApiResult<()> {
        if roles.iter().any(|r| self.user.has_role(*r, site)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "{} needs one of the roles {} at site {site}",
            self.user.id,
            names.join(", ")
        )))
    }

    /// Refuses unless the caller holds any role at `site` (site scoping of reads).
    pub fn require_site(&self, site: &SiteId) -> ApiResult<()> {
        if self.user.has_any_role_at(site) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} has no role at site {site}",
                self.user.id
            )))
        }
    }
}

/// The token the request carries, if any: bearer first, then the session cookie.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.to_string())
    })
}

impl<B: Backend> FromRequestParts<AppState<B>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<B>,
    ) -> Result<Caller, ApiError> {
        let token = presented_token(&parts.headers).ok_or_else(|| {
            ApiError::unauthenticated(
                "sign in first (POST /api/auth/login) or send Authorization: Bearer <token>",
            )
        })?;
        let hash = token_hash(&token);
        state.sync().await?;
        let now = state.clock.now();
        let (user_id, session_started) = {
            let accounts = state.accounts.lock().expect("accounts lock");
            if let Some(s) = accounts.session(&hash) {
                if s.ended {
                    return Err(ApiError::unauthenticated(
                        "this session has ended: sign in again",
                    ));
                }
                (s.user.clone(), Some(s.started_at))
            } else if let Some(t) = accounts.token(&hash) {
                if t.revoked {
                    return Err(ApiError::unauthenticated(format!(
                        "API token {:?} was revoked: ask for a new one",
                        t.name
                    )));
                }
                (t.user.clone(), None)
            } else {
                return Err(ApiError::unauthenticated(
                    "unknown session or token: sign in again",
                ));
            }
        };
        if let Some(started) = session_started {
            check_session_time(state, &hash, started, now).await?;
        }
        let user = state
            .accounts
            .lock()
            .expect("accounts lock")
            .user(&user_id)
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
        if !user.active {
            return Err(ApiError::unauthenticated("this account is deactivated"));
        }
        if user.locked {
            return Err(ApiError::unauthenticated(
                "this account is locked after repeated failures: ask a site administrator to unlock it",
            ));
        }
        if user.must_change_password && !PASSWORD_CHANGE_PATHS.contains(&parts.uri.path()) {
            return Err(ApiError::forbidden(
                "change your password first (POST /api/auth/password)",
            ));
        }
        Ok(Caller {
            user,
            session_hash: session_started.map(|_| hash),
        })
    }
}

/// Enforces the absolute and idle timeouts and records activity. Idle time is kept in the
/// backend's secrets table so that every server process sees it.
async fn check_session_time<B: Backend>(
    state: &AppState<B>,
    hash: &str,
    started: Timestamp,
    now: Timestamp,
) -> ApiResult<()> {
    // A person's minutes, however fast a live demo's clock runs.
    let pace = state.clock.pace();
    let absolute_us = (SESSION_ABSOLUTE_US_MAX as f64 * pace) as i64;
    let idle_us = (SESSION_IDLE_US_MAX as f64 * pace) as i64;
    let touch_us = (SESSION_TOUCH_US_MIN as f64 * pace) as i64;
    if now.unix_us() - started.unix_us() > absolute_us {
        return Err(ApiError::unauthenticated(
            "this session is older than 12 hours: sign in again",
        ));
    }
    let name = secret_name_session_seen(hash);
    state
        .blocking(move |s| {
            let seen = s
                .ledger
                .read(|b| b.secret_get(&name))?
                .and_then(|t| Timestamp::parse(&t).ok())
                .unwrap_or(started);
            if now.unix_us() - seen.unix_us() > idle_us {
                return Err(ApiError::unauthenticated(
                    "this session was idle for more than 15 minutes: sign in again",
                ));
            }
            if now.unix_us() - seen.unix_us() >= touch_us {
                s.ledger.read(|b| b.secret_put(&name, &now.to_string()))?;
            }
            Ok(())
        })
        .await
}
