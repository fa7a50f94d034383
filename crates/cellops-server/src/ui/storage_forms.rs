//! The storage screen's put-away and retrieval forms: the unit label and the position
//! label (freezer or dewar → rack → box → position, `dewar-01/R2/B3/P5`) scanned or typed,
//! through the storage API's own handlers (`POST /api/storage/put-away`, `POST
//! /api/storage/retrieve`): the same qualification check, custody scan and position, expiry,
//! storage-limit, FEFO and excursion checks; a refusal (recorded by the API) is shown at the
//! field it concerns with everything typed kept.

use super::cold::{StorageQuery, storage_context};
use super::{Ui, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::storage::{PutAwayBody, RetrieveBody, STORAGE_ROLES, put_away, retrieve};
use crate::state::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_ledger::Backend;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct PutAwayForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// The unit label as scanned (or `DIN-PRODUCT`).
    #[serde(default)]
    pub unit: String,
    /// The position label as scanned (`dewar-01/R2/B3/P5`).
    #[serde(default)]
    pub position: String,
}

/// The form field an API error of the put-away points at. The API names the position for
/// every storage refusal; a unit already stored or expired is about the unit scanned.
fn error_field(e: &ApiError) -> &'static str {
    match e.code {
        "already_stored"
        | "expired"
        | "not_stored"
        | "storage_limit_exceeded"
        | "excursion_rejected"
        | "excursion_unassessed" => return "unit",
        "fefo_violation" => return "fefo_override",
        _ => {}
    }
    match e.field.as_deref() {
        Some("scanned_unit") => "unit",
        Some("scanned_position" | "expected_position") => "position",
        Some("purpose") => "purpose",
        Some("fefo_override") => "fefo_override",
        _ => "general",
    }
}

/// The put-away form for the page (`null` for those who do not handle storage at the chosen
/// site): what was typed and the error at its field.
pub(crate) fn put_away_view(
    ui: &Ui,
    typed: Option<&PutAwayForm>,
    error: Option<&ApiError>,
) -> Value {
    if !ui.has_any(&STORAGE_ROLES) {
        return Value::Null;
    }
    json!({"values": typed.cloned().unwrap_or_default(), "errors": errors_map(ui, error)})
}

/// `{field: message-or-null}` for the storage forms' fields, the error at its field.
fn errors_map(ui: &Ui, error: Option<&ApiError>) -> Value {
    let mut errors = json!({"unit": null, "position": null, "purpose": null,
                            "fefo_override": null, "general": null});
    if let Some(e) = error {
        let field = error_field(e);
        errors[field] = json!(super::field_error(ui.lang, e, field, "form_err_storage_"));
    }
    errors
}

#[derive(Deserialize, Serialize, Clone)]
pub struct RetrieveForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// The unit label as scanned.
    #[serde(default)]
    pub unit: String,
    /// The position label as scanned.
    #[serde(default)]
    pub position: String,
    /// use, ship, transfer or discard.
    #[serde(default)]
    pub purpose: String,
    /// Why first-expiry-first-out is overridden (empty: not overridden).
    #[serde(default)]
    pub fefo_override: String,
}

impl Default for RetrieveForm {
    fn default() -> RetrieveForm {
        RetrieveForm {
            csrf: String::new(),
            key: String::new(),
            unit: String::new(),
            position: String::new(),
            purpose: "use".into(),
            fefo_override: String::new(),
        }
    }
}

const PURPOSES: [&str; 4] = ["use", "ship", "transfer", "discard"];

/// The retrieval form for the page (`null` for those who do not handle storage at the
/// chosen site).
pub(crate) fn retrieve_view(
    ui: &Ui,
    typed: Option<&RetrieveForm>,
    error: Option<&ApiError>,
) -> Value {
    if !ui.has_any(&STORAGE_ROLES) {
        return Value::Null;
    }
    let values = typed.cloned().unwrap_or_default();
    let purposes: Vec<Value> = PURPOSES
        .iter()
        .map(|p| json!({"value": p, "label": ui.t(&format!("retrieve_purpose_{p}")), "selected": *p == values.purpose}))
        .collect();
    json!({"values": values, "purposes": purposes, "errors": errors_map(ui, error)})
}

/// Retrieves a unit by scan at the chosen site (`POST /api/storage/retrieve`); on success the
/// box it came from is shown.
pub async fn retrieve_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<RetrieveForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let position = form.position.trim().to_string();
    let purpose = serde_json::from_value(json!(form.purpose.trim())).map_err(|_| {
        ApiError::bad_request(
            "purpose",
            format!(
                "{:?} is not a purpose: use, ship, transfer or discard",
                form.purpose.trim()
            ),
        )
    });
    let result = match purpose {
        Err(e) => Err(e),
        Ok(purpose) => {
            retrieve(
                State(state.clone()),
                ui.caller.clone(),
                idempotency_headers(&form.key),
                AppJson(RetrieveBody {
                    site: ui.site_text(),
                    scanned_unit: form.unit.trim().to_string(),
                    scanned_position: position.clone(),
                    purpose,
                    expected_unit: None,
                    fefo_override: Some(form.fefo_override.trim().to_string())
                        .filter(|r| !r.is_empty()),
                }),
            )
            .await
        }
    };
    match result {
        Ok(answer) => {
            let (status, mut ctx) =
                storage_context(&state, &ui, &box_of(&answer.0, &position)).await;
            if status == StatusCode::OK {
                ctx["notice"] = json!(format!(
                    "{} {} ← {}",
                    ui.t("retrieve_recorded"),
                    answer.0["unit"].as_str().unwrap_or(""),
                    answer.0["position"].as_str().unwrap_or(&position)
                ));
            }
            render(status, "storage.html", &ctx)
        }
        Err(e) => {
            let (_, mut ctx) = storage_context(&state, &ui, &StorageQuery::default()).await;
            let mut typed = form.clone();
            typed.csrf.clear();
            ctx["retrieve"] = retrieve_view(&ui, Some(&typed), Some(&e));
            render(e.status, "storage.html", &ctx)
        }
    }
}

/// The box of the position the API answered (else the one typed).
fn box_of(answer: &Value, typed: &str) -> StorageQuery {
    let at = cellops_cold::Position::parse(answer["position"].as_str().unwrap_or(typed)).ok();
    StorageQuery {
        storage: at
            .as_ref()
            .map(|p| p.storage().as_str().to_string())
            .unwrap_or_default(),
        rack: at.as_ref().map(|p| p.rack()),
        r#box: at.as_ref().map(|p| p.r#box()),
    }
}

/// Puts a unit away at the chosen site; on success the box with the unit is shown.
pub async fn put_away_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<PutAwayForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let position = form.position.trim().to_string();
    let result = put_away(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        AppJson(PutAwayBody {
            site: ui.site_text(),
            scanned_unit: form.unit.trim().to_string(),
            scanned_position: position.clone(),
            expected_position: None,
        }),
    )
    .await;
    match result {
        Ok(answer) => {
            let (status, mut ctx) =
                storage_context(&state, &ui, &box_of(&answer.0, &position)).await;
            if status == StatusCode::OK {
                ctx["notice"] = json!(format!(
                    "{} {} → {}",
                    ui.t("putaway_recorded"),
                    answer.0["unit"].as_str().unwrap_or(""),
                    answer.0["position"].as_str().unwrap_or(&position)
                ));
            }
            render(status, "storage.html", &ctx)
        }
        Err(e) => {
            let (_, mut ctx) = storage_context(&state, &ui, &StorageQuery::default()).await;
            let mut typed = form.clone();
            typed.csrf.clear();
            ctx["put_away"] = put_away_view(&ui, Some(&typed), Some(&e));
            render(e.status, "storage.html", &ctx)
        }
    }
}
