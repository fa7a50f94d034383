//! A batch deviation worked on the batch view through the batch API's deviation handlers:
//! **investigate** (operators, QA, site administrators at the batch's site; `POST
//! /api/batches/{id}/deviations/{d}/investigate`), the **root cause and CAPA** (`…/capa`)
//! and QA's **close** with the e-signature "Approved" (`…/close`, the password re-typed).
//! The API decides the roles, the order of the states and the signature; a refusal is shown
//! on the deviation's form with what was typed kept.

use super::{Ui, form_error, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::batch::{CapaBody, SignatureBody, close_deviation, define_capa, investigate};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cellops_domain::{Role, SiteId};
use serde::Deserialize;
use serde_json::json;

/// Who works a deviation (as the API), and who closes it.
const WORKERS: &[Role] = &[
    Role::Operator,
    Role::QaReviewer,
    Role::QaReleaser,
    Role::SiteAdmin,
];
const CLOSERS: &[Role] = &[Role::QaReviewer, Role::QaReleaser];

/// The action the user may take on a deviation in `state` at `site`, if any.
pub(crate) fn action(ui: &Ui, site: &str, state: &str) -> Option<&'static str> {
    let site = SiteId::parse(site).ok()?;
    let holds = |roles: &[Role]| roles.iter().any(|r| ui.caller.user.has_role(*r, &site));
    match state {
        "Open" if holds(WORKERS) => Some("investigate"),
        "Investigating" if holds(WORKERS) => Some("capa"),
        "CapaDefined" if holds(CLOSERS) => Some("close"),
        _ => None,
    }
}

#[derive(Deserialize)]
pub struct DeviationForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub batch: String,
    pub deviation: String,
    pub action: String,
    #[serde(default)]
    pub root_cause: String,
    #[serde(default)]
    pub capa: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
}

/// Investigates, records the CAPA, or closes the deviation with QA's e-signature.
pub async fn act<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<DeviationForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let batch = f.batch.trim().to_string();
    let path = Path((batch.clone(), f.deviation.trim().to_string()));
    let keys = idempotency_headers(&f.key);
    let result = match f.action.as_str() {
        "investigate" => investigate(State(state.clone()), ui.caller.clone(), keys, path)
            .await
            .map(|_| "batch_deviation_investigating"),
        "capa" => define_capa(
            State(state.clone()),
            ui.caller.clone(),
            keys,
            path,
            AppJson(CapaBody {
                root_cause: f.root_cause.trim().to_string(),
                capa: f.capa.trim().to_string(),
            }),
        )
        .await
        .map(|_| "batch_deviation_capa_recorded"),
        "close" => close_deviation(
            State(state.clone()),
            ui.caller.clone(),
            keys,
            path,
            AppJson(SignatureBody {
                password: Some(f.password.clone()).filter(|p| !p.is_empty()),
                user_id: Some(f.user_id.trim().to_string()).filter(|u| !u.is_empty()),
            }),
        )
        .await
        .map(|_| "batch_deviation_closed"),
        other => Err(ApiError::bad_request(
            "action",
            format!("{other:?} is not a deviation action: investigate, capa or close"),
        )),
    };
    let (status, mut ctx) = super::batch::context(&state, &ui, &batch).await;
    match result {
        Ok(notice) => {
            ctx["notice"] = json!(ui.t(notice));
            render(status, "batch.html", &ctx)
        }
        Err(e) => {
            let row = ctx["view"]["deviations"]
                .as_array_mut()
                .and_then(|list| list.iter_mut().find(|d| d["id"] == f.deviation.trim()));
            match row {
                Some(d) => {
                    d["root_cause"] = json!(f.root_cause);
                    d["capa"] = json!(f.capa);
                    d["error"] = json!(form_error(&ui, &e));
                }
                None => ctx["error"] = json!(form_error(&ui, &e)),
            }
            render(e.status, "batch.html", &ctx)
        }
    }
}
