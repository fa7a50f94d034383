//! The scan page for keyboard-wedge scanners: scan (or type) the expected unit, then the
//! bag in hand; Enter submits. The answer is the custody API's (`POST /api/scans`): the
//! expected unit passes, any other is refused (409) and both outcomes are recorded.

use super::{Ui, error_message, form_key, idempotency_headers, render};
use crate::json::AppJson;
use crate::routes::custody::{ScanBody, scan as api_scan};
use crate::state::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_custody::CustodyStep;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
pub struct ScanForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub step: String,
    #[serde(default)]
    pub expected_unit: String,
    #[serde(default)]
    pub scanned: String,
    #[serde(default)]
    pub location: String,
}

fn context<B: Backend>(state: &AppState<B>, ui: &Ui, form: &ScanForm) -> Value {
    let mut ctx = ui.context("/ui/scan", "scan_title");
    let step = if form.step.is_empty() {
        "receive"
    } else {
        &form.step
    };
    ctx["steps"] = json!(
        CustodyStep::ALL
            .iter()
            .map(|s| json!({"value": s.as_str(), "label": ui.t(&format!("step_{}", s.as_str())), "selected": s.as_str() == step}))
            .collect::<Vec<_>>()
    );
    ctx["expected_unit"] = json!(form.expected_unit);
    ctx["location"] = json!(form.location);
    ctx["key"] = json!(form_key(state));
    ctx["may_scan"] = json!(ui.has_any(&Role::WRITERS));
    ctx
}

pub async fn page<B: Backend>(State(state): State<AppState<B>>, ui: Ui) -> Response {
    let ctx = context(&state, &ui, &ScanForm::default());
    render(StatusCode::OK, "scan.html", &ctx)
}

pub async fn submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ScanForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let result = api_scan(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        AppJson(ScanBody {
            step: form.step.clone(),
            expected_unit: form.expected_unit.trim().to_string(),
            scanned: form.scanned.clone(),
            site: ui.site_text(),
            location: form.location.trim().to_string(),
        }),
    )
    .await;
    let mut ctx = context(&state, &ui, &form);
    ctx["scanned_last"] = json!(form.scanned);
    let status = match result {
        Ok(body) => {
            ctx["outcome"] = json!({
                "kind": "pass",
                "headline": ui.t("scan_pass"),
                "detail": format!("{} {}", ui.t("scan_recorded_as"), body.0["seq"]),
            });
            StatusCode::OK
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            ctx["outcome"] = json!({
                "kind": "refuse",
                "headline": ui.t("scan_refused"),
                "detail": e.message,
            });
            StatusCode::CONFLICT
        }
        Err(e) => {
            ctx["outcome"] = json!({
                "kind": "error",
                "headline": ui.t("scan_not_checked"),
                "detail": error_message(ui.lang, &e),
            });
            e.status
        }
    };
    render(status, "scan.html", &ctx)
}
