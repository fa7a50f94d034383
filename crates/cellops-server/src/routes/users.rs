//! User administration by site administrators: create, grant and revoke roles per site,
//! unlock, deactivate. Every change is a ledger record (Annex 11 §12.3).

use super::auth::{user_event, user_view};
use crate::accounts::UserPayload;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::AppJson;
use crate::provision::{NewUser, ProvisionError, add_user};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use cellops_domain::{Role, SiteId};
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct RoleGrant {
    pub role: String,
    pub site: String,
}

impl RoleGrant {
    fn parse(&self, field: &str) -> ApiResult<(Role, SiteId)> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|e| ApiError::bad_request(&format!("{field}.role"), e.to_string()))?;
        let site = SiteId::parse(&self.site)
            .map_err(|e| ApiError::bad_request(&format!("{field}.site"), e.to_string()))?;
        Ok((role, site))
    }
}

#[derive(Deserialize)]
pub struct NewUserBody {
    pub user_id: String,
    pub full_name: String,
    pub password: String,
    pub roles: Vec<RoleGrant>,
}

pub async fn create_user<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<NewUserBody>,
) -> ApiResult<Json<Value>> {
    let mut grants = Vec::new();
    for (i, g) in body.roles.iter().enumerate() {
        let (role, site) = g.parse(&format!("roles[{i}]"))?;
        caller.require(&[Role::SiteAdmin], &site)?;
        grants.push((role, site));
    }
    state.sync().await?;
    let exists = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(&body.user_id)
        .is_some();
    let actor = caller.user.id.clone();
    let id = body.user_id.clone();
    state
        .blocking(move |s| {
            let user = NewUser {
                user_id: &body.user_id,
                full_name: &body.full_name,
                password: &body.password,
                roles: &grants,
                // An administrator never knows a user's working password: it must be
                // changed at first login (Part 11 §11.300, standards.md row 16).
                must_change_password: true,
            };
            s.with_rng(|rng| add_user(&s.ledger, rng, &actor, &user, exists))
                .map_err(|e| match e {
                    ProvisionError::Invalid { field, rule } if field == "user_id" && exists => {
                        ApiError::conflict(rule).field(&field)
                    }
                    ProvisionError::Invalid { field, rule } => ApiError::bad_request(&field, rule),
                    ProvisionError::Ledger(e) => e.into(),
                })
        })
        .await?;
    state.sync().await?;
    let user = target(&state, &id)?;
    Ok(Json(user_view(&user)))
}

pub async fn list_users<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let sites: Vec<SiteId> = caller
        .user
        .sites()
        .into_iter()
        .filter(|s| {
            caller.user.has_role(Role::SiteAdmin, s) || caller.user.has_role(Role::Auditor, s)
        })
        .collect();
    if sites.is_empty() {
        return Err(ApiError::forbidden(
            "listing users needs site_admin or auditor at a site",
        ));
    }
    let accounts = state.accounts.lock().expect("accounts lock");
    let users: Vec<Value> = accounts
        .users()
        .filter(|u| sites.iter().any(|s| u.has_any_role_at(s)))
        .map(user_view)
        .collect();
    Ok(Json(json!({ "users": users })))
}

fn target<B: Backend>(state: &AppState<B>, id: &str) -> ApiResult<crate::accounts::User> {
    state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no user {id:?}")))
}

pub async fn grant_role<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
    AppJson(body): AppJson<RoleGrant>,
) -> ApiResult<Json<Value>> {
    let (role, site) = body.parse("body")?;
    caller.require(&[Role::SiteAdmin], &site)?;
    state.sync().await?;
    target(&state, &id)?;
    let mut p = UserPayload::new(&id);
    p.role = Some(role);
    p.site = Some(site);
    state
        .append(vec![user_event("role.granted", &p, &caller.user.id)], None)
        .await?;
    Ok(Json(user_view(&target(&state, &id)?)))
}

pub async fn revoke_role<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path((id, site, role)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let (role, site) = RoleGrant { role, site }.parse("path")?;
    caller.require(&[Role::SiteAdmin], &site)?;
    state.sync().await?;
    if !target(&state, &id)?.has_role(role, &site) {
        return Err(ApiError::not_found(format!(
            "{id} does not hold {role} at {site}"
        )));
    }
    let mut p = UserPayload::new(&id);
    p.role = Some(role);
    p.site = Some(site);
    state
        .append(vec![user_event("role.revoked", &p, &caller.user.id)], None)
        .await?;
    Ok(Json(user_view(&target(&state, &id)?)))
}

/// Site administrators act on users who hold a role at one of their sites.
fn require_admin_of(caller: &Caller, user: &crate::accounts::User) -> ApiResult<()> {
    if user
        .sites()
        .iter()
        .any(|s| caller.user.has_role(Role::SiteAdmin, s))
    {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "you are not site_admin at any site where {} works",
            user.id
        )))
    }
}

pub async fn unlock<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let user = target(&state, &id)?;
    require_admin_of(&caller, &user)?;
    if !user.locked {
        return Err(ApiError::conflict(format!("{id} is not locked")));
    }
    state
        .append(
            vec![user_event(
                "auth.unlocked",
                &UserPayload::new(&id),
                &caller.user.id,
            )],
            None,
        )
        .await?;
    Ok(Json(user_view(&target(&state, &id)?)))
}

pub async fn deactivate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let user = target(&state, &id)?;
    require_admin_of(&caller, &user)?;
    state
        .append(
            vec![user_event(
                "user.deactivated",
                &UserPayload::new(&id),
                &caller.user.id,
            )],
            None,
        )
        .await?;
    Ok(Json(user_view(&target(&state, &id)?)))
}
