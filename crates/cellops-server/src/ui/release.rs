//! The release page of a batch: the release status, what is still missing (every blocker of
//! the QC API's readiness, in the user's language), the certificate of analysis, and the
//! release itself as an e-signature ("Released") through the QC API, which refuses with
//! every blocker while anything is missing.

use super::i18n::Lang;
use super::{Ui, error_message, idempotency_headers, render};
use crate::json::AppJson;
use crate::routes::auth::acknowledge_esig_policy;
use crate::routes::qc::{ReleaseBody, readiness, release as api_release};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct ReleaseQuery {
    #[serde(default)]
    pub batch: String,
}

/// `text` for a query string (letters, digits and `-._~` kept, the rest percent-encoded).
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The release status as a translated line.
fn status_view(ui: &Ui, s: &Value) -> Value {
    let status = s["status"].as_str().unwrap_or("not_released");
    let mut text = ui.t(&format!("release_status_{status}"));
    if let Some(by) = s["signed_by"].as_str() {
        let at = ui.format_time_text(s["signed_at"].as_str().unwrap_or(""));
        text = format!("{text} · {by} · {at}");
    }
    for key in ["pending_tests", "failed_tests"] {
        if let Some(tests) = s[key].as_array().filter(|t| !t.is_empty()) {
            let names: Vec<&str> = tests.iter().filter_map(Value::as_str).collect();
            text = format!("{text} · {}", names.join(", "));
        }
    }
    json!({"status": status, "text": text, "permits_use": matches!(status, "released" | "released_at_risk")})
}

/// A blocker: its translated kind and subject; the API's English sentence only in English.
fn blocker_view(ui: &Ui, b: &Value) -> Value {
    let code = b["code"].as_str().unwrap_or("");
    let kind = ui
        .lang
        .texts()
        .get(&format!("blocker_{code}"))
        .cloned()
        .unwrap_or_else(|| code.to_string());
    json!({
        "kind": kind,
        "subject": b["subject"],
        "explanation": if ui.lang == Lang::En { b["explanation"].clone() } else { Value::Null },
        "at_risk_allowed": b["at_risk_allowed"],
    })
}

async fn context<B: Backend>(state: &AppState<B>, ui: &Ui, batch: &str) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/release", "release_title");
    ctx["batch"] = json!(batch);
    ctx["back"] = json!(format!("/ui/release?batch={}", urlencode(batch)));
    ctx["readiness"] = Value::Null;
    ctx["key"] = json!(super::form_key(state));
    ctx["may_release"] = json!(ui.has_any(&[Role::QaReleaser]));
    ctx["esig_acknowledged"] = json!(ui.caller.user.esig_policy_acknowledged);
    if batch.is_empty() {
        return (StatusCode::OK, ctx);
    }
    match readiness(
        State(state.clone()),
        ui.caller.clone(),
        Path(batch.to_string()),
    )
    .await
    {
        Ok(body) => {
            let r = body.0;
            let blockers: Vec<Value> = r["blockers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|b| blocker_view(ui, b))
                .collect();
            ctx["readiness"] = json!({
                "releasable": r["releasable"],
                "status": status_view(ui, &r["release_status"]),
                "blockers": blockers,
                "blocker_count": ui.lang.format_count(blockers.len() as u64),
                "spec": r["spec"],
            });
            (StatusCode::OK, ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            (e.status, ctx)
        }
    }
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<ReleaseQuery>,
) -> Response {
    let (status, ctx) = context(&state, &ui, q.batch.trim()).await;
    render(status, "release.html", &ctx)
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub batch: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
    /// "on" when the user accepts the e-signature policy with this signature.
    #[serde(default)]
    pub acknowledge: String,
}

/// Signs the release ("Released"): first acknowledges the e-signature policy when the user
/// ticked it, then asks the QC API, which re-authenticates and checks every blocker.
pub async fn sign<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ReleaseForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let mut caller = ui.caller.clone();
    if !caller.user.esig_policy_acknowledged && form.acknowledge == "on" {
        if let Err(e) =
            acknowledge_esig_policy(State(state.clone()), HeaderMap::new(), caller.clone()).await
        {
            let (_, mut ctx) = context(&state, &ui, &batch).await;
            ctx["error"] = json!(error_message(ui.lang, &e));
            return render(e.status, "release.html", &ctx);
        }
        caller.user.esig_policy_acknowledged = true;
    }
    let body = ReleaseBody {
        password: form.password,
        user_id: Some(form.user_id.trim().to_string()).filter(|u| !u.is_empty()),
        at_risk_request: None,
    };
    let result = api_release(
        State(state.clone()),
        caller,
        idempotency_headers(&form.key),
        Path(batch.clone()),
        AppJson(body),
    )
    .await;
    let mut ui = ui;
    ui.caller.user.esig_policy_acknowledged = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(&ui.caller.user.id)
        .is_some_and(|u| u.esig_policy_acknowledged);
    let (status, mut ctx) = context(&state, &ui, &batch).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("release_signed"));
            render(status, "release.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "release.html", &ctx)
        }
    }
}
