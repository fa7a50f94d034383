//! Login, logout, password change, API tokens and the e-signature policy.

use crate::accounts::{FAILURES_BEFORE_LOCK_MAX, UserPayload};
use crate::auth::{Caller, SESSION_COOKIE};
use crate::credentials::{
    check_password_policy, hash_password, new_token, secret_name_password,
    secret_name_session_seen, token_hash,
};
use crate::error::{ApiError, ApiResult};
use crate::json::AppJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use cellops_ledger::{Backend, NewRecord};
use serde::Deserialize;
use serde_json::{Value, json};

/// Site recorded on events about a user that belong to no one site.
pub const SYSTEM_SITE: &str = "system";

pub fn user_event(event: &str, payload: &UserPayload, actor: &str) -> NewRecord {
    let stream = match cellops_domain::UserId::parse(&payload.user_id) {
        Ok(id) => format!("user/{id}"),
        Err(_) => "auth/unknown-user".to_string(),
    };
    NewRecord::new(
        &stream,
        event,
        1,
        serde_json::to_value(payload).expect("payload serializes"),
        actor,
        SYSTEM_SITE,
    )
}

#[derive(Deserialize)]
pub struct LoginBody {
    pub user_id: String,
    pub password: String,
}

/// Checks a user's password; records a failure (and a lock at the threshold) when wrong.
/// Shared by login and e-signature.
pub async fn check_password<B: Backend>(
    state: &AppState<B>,
    user_id: &str,
    password: &str,
    failure_event: &'static str,
    failure_detail: Value,
) -> ApiResult<()> {
    let user = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(user_id)
        .cloned();
    let phc_name = secret_name_password(user_id);
    let password = password.to_string();
    let matches = state
        .blocking(move |s| {
            let phc = s.ledger.read(|b| b.secret_get(&phc_name))?;
            // Hash even for unknown users so timing does not reveal which ids exist.
            let phc = phc.unwrap_or_else(|| {
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string()
            });
            Ok(s.recently_verified.verify(&password, &phc))
        })
        .await?;
    let usable = user.as_ref().is_some_and(|u| u.active && !u.locked);
    if matches && usable {
        return Ok(());
    }
    state.metrics.auth_failures.inc();
    let reason = match &user {
        None => "unknown user",
        Some(u) if !u.active => "deactivated account",
        Some(u) if u.locked => "locked account",
        Some(_) => "wrong password",
    };
    let mut payload = UserPayload::new(user_id);
    payload.failure = Some(match failure_detail {
        Value::Null => reason.to_string(),
        detail => format!("{reason}; {detail}"),
    });
    let mut records = vec![user_event(failure_event, &payload, user_id)];
    let lock_now = user.as_ref().is_some_and(|u| {
        u.active && !u.locked && u.consecutive_failures + 1 >= FAILURES_BEFORE_LOCK_MAX
    });
    if lock_now {
        let mut lock = UserPayload::new(user_id);
        lock.failure = Some(format!(
            "{FAILURES_BEFORE_LOCK_MAX} consecutive failed logins or e-signatures"
        ));
        records.push(user_event("auth.locked", &lock, "system"));
        state.metrics.accounts_locked.inc();
        tracing::warn!(
            user = user_id,
            "account locked after repeated failures (security alert)"
        );
    }
    state.append(records, None).await?;
    if lock_now || user.as_ref().is_some_and(|u| u.locked) {
        return Err(ApiError::unauthenticated(
            "this account is locked after repeated failures: ask a site administrator to unlock it",
        ));
    }
    Err(ApiError::unauthenticated("user id or password is wrong"))
}

pub async fn login<B: Backend>(
    State(state): State<AppState<B>>,
    AppJson(body): AppJson<LoginBody>,
) -> ApiResult<Response> {
    if body.user_id.is_empty() {
        return Err(ApiError::bad_request("user_id", "give your user id"));
    }
    state.sync().await?;
    check_password(
        &state,
        &body.user_id,
        &body.password,
        "auth.login_failed",
        Value::Null,
    )
    .await?;
    let token = state.with_rng(new_token);
    let hash = token_hash(&token);
    let mut payload = UserPayload::new(&body.user_id);
    payload.token_hash = Some(hash.clone());
    let outcome = state
        .append(
            vec![user_event("auth.login", &payload, &body.user_id)],
            None,
        )
        .await?;
    let started = outcome.records[0].recorded_at;
    let seen_name = secret_name_session_seen(&hash);
    state
        .blocking(move |s| {
            Ok(s.ledger
                .read(|b| b.secret_put(&seen_name, &started.to_string()))?)
        })
        .await?;
    let user = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(&body.user_id)
        .cloned()
        .ok_or_else(|| ApiError::internal("user vanished after login"))?;
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let body = json!({
        "user": user_view(&user),
        "session_started_at": started,
        "must_change_password": user.must_change_password,
    });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

pub fn user_view(user: &crate::accounts::User) -> Value {
    json!({
        "user_id": user.id,
        "full_name": user.full_name,
        "active": user.active,
        "locked": user.locked,
        "roles": user.roles.iter().map(|(r, s)| json!({"role": r, "site": s})).collect::<Vec<_>>(),
        "esig_policy_acknowledged": user.esig_policy_acknowledged,
    })
}

pub async fn logout<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Response> {
    let Some(hash) = caller.session_hash else {
        return Err(ApiError::bad_request(
            "Authorization",
            "an API token has no session to end: revoke it instead",
        ));
    };
    let mut payload = UserPayload::new(&caller.user.id);
    payload.token_hash = Some(hash);
    state
        .append(
            vec![user_event("auth.logout", &payload, &caller.user.id)],
            None,
        )
        .await?;
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"ended": true}))).into_response())
}

pub async fn me<B: Backend>(
    State(_state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let mut view = user_view(&caller.user);
    view["must_change_password"] = json!(caller.user.must_change_password);
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

pub async fn change_password<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<PasswordBody>,
) -> ApiResult<Json<Value>> {
    check_password_policy(&body.new_password)
        .map_err(|m| ApiError::bad_request("new_password", m))?;
    check_password(
        &state,
        &caller.user.id,
        &body.current_password,
        "auth.login_failed",
        json!("password change"),
    )
    .await?;
    set_password(
        &state,
        &caller.user.id,
        &body.new_password,
        false,
        &caller.user.id,
    )
    .await?;
    Ok(Json(json!({"changed": true})))
}

/// Stores a new password hash and records that it was set.
pub async fn set_password<B: Backend>(
    state: &AppState<B>,
    user_id: &str,
    password: &str,
    must_change: bool,
    actor: &str,
) -> ApiResult<()> {
    let name = secret_name_password(user_id);
    let password = password.to_string();
    state
        .blocking(move |s| {
            let phc = s.with_rng(|rng| hash_password(&password, rng));
            Ok(s.ledger.read(|b| b.secret_put(&name, &phc))?)
        })
        .await?;
    let mut payload = UserPayload::new(user_id);
    payload.must_change = Some(must_change);
    state
        .append(vec![user_event("credential.set", &payload, actor)], None)
        .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct TokenBody {
    pub name: String,
    pub password: String,
}

/// Issues an API token (shown once). Needs the password again: a token is a credential.
pub async fn issue_token<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<TokenBody>,
) -> ApiResult<Json<Value>> {
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name",
            "name the token (e.g. the device or script using it)",
        ));
    }
    check_password(
        &state,
        &caller.user.id,
        &body.password,
        "auth.login_failed",
        json!("token issue"),
    )
    .await?;
    let token = state.with_rng(new_token);
    let mut payload = UserPayload::new(&caller.user.id);
    payload.token_hash = Some(token_hash(&token));
    payload.name = Some(body.name.clone());
    state
        .append(
            vec![user_event("token.issued", &payload, &caller.user.id)],
            None,
        )
        .await?;
    Ok(Json(
        json!({"token": token, "name": body.name, "note": "shown once: store it now"}),
    ))
}

pub async fn acknowledge_esig_policy<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let mut payload = UserPayload::new(&caller.user.id);
    payload.name = Some(ESIG_POLICY_V1.to_string());
    let key = crate::json::idempotency_key(&headers);
    state
        .append(
            vec![user_event(
                "esig.policy_acknowledged",
                &payload,
                &caller.user.id,
            )],
            key,
        )
        .await?;
    Ok(Json(json!({"acknowledged": ESIG_POLICY_V1})))
}

/// The statement a user accepts before their first e-signature (Part 11 §11.100(c)).
pub const ESIG_POLICY_V1: &str = "esig-policy-v1: my electronic signature is the legally binding equivalent of my handwritten signature";
