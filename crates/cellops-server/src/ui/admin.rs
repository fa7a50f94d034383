//! Users and roles for site administrators (auditors see the list read-only): create a
//! user with a first role, grant and revoke roles per site, unlock, deactivate, all through
//! the users API (each change is a ledger record).

use super::{Ui, error_message, render};
use crate::json::AppJson;
use crate::routes::users::{
    NewUserBody, RoleGrant, create_user, deactivate, grant_role, list_users, revoke_role, unlock,
};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

async fn context<B: Backend>(state: &AppState<B>, ui: &Ui) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/admin/users", "users_title");
    let admin_sites: Vec<String> = ui
        .caller
        .user
        .sites()
        .into_iter()
        .filter(|s| ui.caller.user.has_role(Role::SiteAdmin, s))
        .map(|s| s.to_string())
        .collect();
    ctx["admin_sites"] = json!(admin_sites);
    ctx["roles"] = json!(
        Role::ALL
            .iter()
            .map(|r| json!({"value": r.as_str(), "label": ui.t(&format!("role_{}", r.as_str()))}))
            .collect::<Vec<_>>()
    );
    ctx["users"] = json!([]);
    match list_users(State(state.clone()), ui.caller.clone()).await {
        Ok(body) => {
            let users: Vec<Value> = body.0["users"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|u| {
                    let roles: Vec<Value> = u["roles"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| {
                            let role = r["role"].as_str().unwrap_or("").to_string();
                            let site = r["site"].as_str().unwrap_or("").to_string();
                            json!({
                                "role": role,
                                "label": ui.t(&format!("role_{role}")),
                                "site": site,
                                "may_revoke": admin_sites.contains(&site),
                            })
                        })
                        .collect();
                    json!({
                        "id": u["user_id"], "name": u["full_name"], "active": u["active"],
                        "locked": u["locked"], "roles": roles,
                    })
                })
                .collect();
            ctx["users"] = json!(users);
            (StatusCode::OK, ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            (e.status, ctx)
        }
    }
}

pub async fn page<B: Backend>(State(state): State<AppState<B>>, ui: Ui) -> Response {
    let (status, ctx) = context(&state, &ui).await;
    render(status, "users.html", &ctx)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    pub csrf: String,
    pub user_id: String,
    pub full_name: String,
    pub password: String,
    pub role: String,
    pub site: String,
}

pub async fn create<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let body = NewUserBody {
        user_id: form.user_id.trim().to_string(),
        full_name: form.full_name.trim().to_string(),
        password: form.password,
        roles: vec![RoleGrant {
            role: form.role,
            site: form.site,
        }],
    };
    let result = create_user(State(state.clone()), ui.caller.clone(), AppJson(body)).await;
    finish(&state, &ui, result.map(|_| ui.t("users_created"))).await
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub csrf: String,
    /// grant, revoke, unlock or deactivate.
    pub action: String,
    pub user_id: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub site: String,
}

pub async fn action<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let st = State(state.clone());
    let caller = ui.caller.clone();
    let id = form.user_id.clone();
    let result = match form.action.as_str() {
        "grant" => {
            let grant = RoleGrant {
                role: form.role,
                site: form.site,
            };
            grant_role(st, caller, Path(id), AppJson(grant)).await
        }
        "revoke" => revoke_role(st, caller, Path((id, form.site, form.role))).await,
        "unlock" => unlock(st, caller, Path(id)).await,
        "deactivate" => deactivate(st, caller, Path(id)).await,
        _ => Err(crate::error::ApiError::bad_request(
            "action",
            "use grant, revoke, unlock or deactivate",
        )),
    };
    finish(&state, &ui, result.map(|_| ui.t("users_changed"))).await
}

async fn finish<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    result: Result<String, crate::error::ApiError>,
) -> Response {
    let (status, mut ctx) = context(state, ui).await;
    match result {
        Ok(notice) => {
            ctx["notice"] = json!(notice);
            render(status, "users.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "users.html", &ctx)
        }
    }
}
