//! Labels: print (the PDF comes straight back), record labels applied or destroyed, and the
//! reconciliation of a label batch (printed = applied + destroyed before release), all
//! through the label API.

use super::{Ui, error_message, form_key, idempotency_headers, render};
use crate::json::{AppJson, AppQuery};
use crate::routes::labels::{
    BatchQuery, CountBody, PrintBody, apply as api_apply, destroy as api_destroy,
    print as api_print, reconciliation as api_reconciliation,
};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// Roles that handle labels (the label API's own check decides; this only shapes the menu).
pub(crate) const LABEL_ROLES: [Role; 4] = [
    Role::Collector,
    Role::Operator,
    Role::Nurse,
    Role::QcAnalyst,
];

#[derive(Deserialize)]
pub struct LabelsQuery {
    #[serde(default)]
    pub batch: String,
}

async fn context<B: Backend>(state: &AppState<B>, ui: &Ui, batch: &str) -> Value {
    let mut ctx = ui.context("/ui/labels", "labels_title");
    ctx["batch"] = json!(batch);
    ctx["key"] = json!(form_key(state));
    ctx["reconciliation"] = Value::Null;
    if batch.is_empty() {
        return ctx;
    }
    let query = BatchQuery {
        batch: batch.to_string(),
    };
    match api_reconciliation(State(state.clone()), ui.caller.clone(), AppQuery(query)).await {
        Ok(body) => {
            let r = body.0;
            let n = |k: &str| ui.lang.format_count(r[k].as_u64().unwrap_or(0));
            ctx["reconciliation"] = json!({
                "printed": n("printed"),
                "applied": n("applied"),
                "destroyed": n("destroyed"),
                "outstanding": n("outstanding"),
                "reconciled": r["reconciled"],
            });
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            ctx["notice"] = json!(ui.t("labels_none_printed"));
        }
        Err(e) => ctx["error"] = json!(error_message(ui.lang, &e)),
    }
    ctx
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<LabelsQuery>,
) -> Response {
    let ctx = context(&state, &ui, q.batch.trim()).await;
    render(StatusCode::OK, "labels.html", &ctx)
}

#[derive(Deserialize)]
pub struct PrintForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub batch: String,
    pub unit: String,
    pub copies: String,
    pub description: String,
    #[serde(default)]
    pub reason: String,
}

/// Prints: answers with the PDF (recorded as `label.printed`), or the page with the reason.
pub async fn print<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<PrintForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let Ok(copies) = form.copies.trim().parse::<u32>() else {
        let mut ctx = context(&state, &ui, &batch).await;
        ctx["error"] = json!(format!("{} (copies)", ui.t("error_invalid")));
        return render(StatusCode::UNPROCESSABLE_ENTITY, "labels.html", &ctx);
    };
    let body = PrintBody {
        batch: batch.clone(),
        unit: form.unit.trim().to_string(),
        copies,
        description: form.description.trim().to_string(),
        site: ui.site_text(),
        reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
    };
    match api_print(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        AppJson(body),
    )
    .await
    {
        Ok(mut pdf) => {
            pdf.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline; filename=\"labels.pdf\""),
            );
            pdf.into_response()
        }
        Err(e) => {
            let mut ctx = context(&state, &ui, &batch).await;
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "labels.html", &ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct CountForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// `apply` or `destroy`.
    pub action: String,
    pub batch: String,
    pub unit: String,
    pub count: String,
    #[serde(default)]
    pub reason: String,
}

/// Records labels applied to a container or destroyed unused.
pub async fn count<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<CountForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let Ok(count) = form.count.trim().parse::<u32>() else {
        let mut ctx = context(&state, &ui, &batch).await;
        ctx["error"] = json!(format!("{} (count)", ui.t("error_invalid")));
        return render(StatusCode::UNPROCESSABLE_ENTITY, "labels.html", &ctx);
    };
    let body = CountBody {
        batch: batch.clone(),
        unit: form.unit.trim().to_string(),
        count,
        site: ui.site_text(),
        reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
    };
    let h = idempotency_headers(&form.key);
    let st = State(state.clone());
    let result = match form.action.as_str() {
        "destroy" => api_destroy(st, ui.caller.clone(), h, AppJson(body)).await,
        _ => api_apply(st, ui.caller.clone(), h, AppJson(body)).await,
    };
    let (status, message) = match result {
        Ok(_) => (StatusCode::OK, ("notice", ui.t("labels_recorded"))),
        Err(e) => (e.status, ("error", error_message(ui.lang, &e))),
    };
    let mut ctx = context(&state, &ui, &batch).await;
    ctx[message.0] = json!(message.1);
    render(status, "labels.html", &ctx)
}
