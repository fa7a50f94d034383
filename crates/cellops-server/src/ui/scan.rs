//! The scan page for keyboard-wedge scanners: scan (or type) the expected unit, then the
//! bag in hand; Enter submits. The answer is the custody API's (`POST /api/scans`): the
//! expected unit passes, any other is refused (409) and both outcomes are recorded.

use super::{Ui, error_message, form_key, idempotency_headers, render};
use crate::json::AppJson;
use crate::routes::custody::{HandOffBody, ScanBody, hand_off, scan as api_scan};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_custody::{CustodyStep, ReceiptCondition};
use cellops_domain::Role;
use cellops_ledger::Backend;
use serde::{Deserialize, Serialize};
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
    ctx["new_unit"] = json!({"values": NewUnitForm {
        location: ui.site_text(),
        ..NewUnitForm::default()
    }, "error": null});
    ctx["new_unit_code"] = Value::Null;
    ctx["derive"] = json!({"values": DeriveForm {
        operation: "formulate".into(),
        location: ui.site_text(),
        ..DeriveForm::default()
    }, "error": null, "made": null});
    ctx["handoff"] = json!({"values": HandOffForm {
        location: format!("{}/dock", ui.site_text()),
        acceptable: "on".into(),
        ..HandOffForm::default()
    }, "error": null});
    ctx
}

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct NewUnitForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    /// ISBT 128 product code with its division, e.g. `S1000100`.
    #[serde(default)]
    pub product_code: String,
    /// The patient's pseudonymous subject id (autologous material); empty for donor material.
    #[serde(default)]
    pub patient: String,
    /// Expiry, `YYYY-MM-DDTHH:MM` in the user's time zone.
    #[serde(default)]
    pub expires: String,
    #[serde(default)]
    pub location: String,
}

/// A new labelled unit at the chosen site: a DIN allocated from the site's sequence
/// (`POST /api/dins`), the unit registered with its product code, patient, expiry and
/// location (`POST /api/units`); the page names the new unit's code.
pub async fn new_unit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<NewUnitForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let expires = ui.zone.parse_local(&form.expires).ok_or_else(|| {
        crate::error::ApiError::bad_request(
            "expires_at",
            format!(
                "{:?} is not a date and time: use YYYY-MM-DDTHH:MM",
                form.expires.trim()
            ),
        )
    });
    let product = form.product_code.trim().to_string();
    let result = match expires {
        Err(e) => Err(e),
        Ok(expires_at) => {
            let allocated = crate::routes::custody::allocate_dins(
                State(state.clone()),
                ui.caller.clone(),
                idempotency_headers(&format!("{}-din", form.key)),
                AppJson(crate::routes::custody::AllocateBody {
                    site: ui.site_text(),
                    count: 1,
                }),
            )
            .await;
            match allocated.map(|r| r.0["dins"][0].as_str().unwrap_or("").to_string()) {
                Err(e) => Err(e),
                Ok(din) => {
                    let code = format!("{din}-{product}");
                    crate::routes::custody::create_unit(
                        State(state.clone()),
                        ui.caller.clone(),
                        idempotency_headers(&form.key),
                        AppJson(crate::routes::custody::UnitBody {
                            code: code.clone(),
                            patient: Some(form.patient.trim().to_string())
                                .filter(|p| !p.is_empty()),
                            expires_at,
                            site: ui.site_text(),
                            location: form.location.trim().to_string(),
                        }),
                    )
                    .await
                    .map(|_| code)
                }
            }
        }
    };
    let mut ctx = context(&state, &ui, &ScanForm::default());
    match result {
        Ok(code) => {
            ctx["notice"] = json!(ui.t("new_unit_registered"));
            ctx["new_unit_code"] = json!(code);
            render(StatusCode::OK, "scan.html", &ctx)
        }
        Err(e) => {
            ctx["new_unit"] = json!({"values": form, "error": error_message(ui.lang, &e)});
            render(e.status, "scan.html", &ctx)
        }
    }
}

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct HandOffForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub unit: String,
    /// The current custodian's user id.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub temperature_c: String,
    /// `on` when container, label and seal are intact.
    #[serde(default)]
    pub acceptable: String,
    #[serde(default)]
    pub note: String,
}

/// Takes custody of a unit from its current custodian at the chosen site, with the
/// condition found (`POST /api/units/{code}/handoffs`): who, from whom, where, in what state.
pub async fn handoff<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<HandOffForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let temperature = match form.temperature_c.trim() {
        "" => Ok(None),
        t => t.replace('−', "-").parse::<f64>().map(Some).map_err(|_| {
            crate::error::ApiError::bad_request(
                "temperature_c",
                format!("{t:?} is not a number: enter the temperature in °C, e.g. 4 or -170"),
            )
        }),
    };
    let result = match temperature {
        Err(e) => Err(e),
        Ok(temperature_c) => hand_off(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&form.key),
            Path(form.unit.trim().to_string()),
            AppJson(HandOffBody {
                from: form.from.trim().to_string(),
                site: ui.site_text(),
                location: form.location.trim().to_string(),
                condition: ReceiptCondition {
                    acceptable: form.acceptable == "on",
                    temperature_c,
                    note: form.note.trim().to_string(),
                },
            }),
        )
        .await
        .map(|_| ()),
    };
    let mut ctx = context(&state, &ui, &ScanForm::default());
    match result {
        Ok(()) => {
            ctx["notice"] = json!(format!("{} {}", ui.t("handoff_recorded"), form.unit.trim()));
            render(StatusCode::OK, "scan.html", &ctx)
        }
        Err(e) => {
            ctx["handoff"] = json!({"values": form, "error": error_message(ui.lang, &e)});
            render(e.status, "scan.html", &ctx)
        }
    }
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

/// The derivation form: units made from units (formulate, aliquot, split, pool, sample),
/// codes scanned one per line.
#[derive(Deserialize, Serialize, Default, Clone)]
pub struct DeriveForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operation: String,
    /// The parent units, one code per line.
    #[serde(default)]
    pub parents: String,
    /// The child units, one code per line.
    #[serde(default)]
    pub children: String,
    /// The children's expiry, `YYYY-MM-DDTHH:MM` in the user's time zone.
    #[serde(default)]
    pub expires: String,
    /// Reagent lots used, one per line.
    #[serde(default)]
    pub reagent_lots: String,
    #[serde(default)]
    pub location: String,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Makes child units from parent units through the custody API's derive handler
/// (`POST /api/units/derive`): the same rules (custody, expiry, the site's roles), the
/// reagent lots recorded for recall. A refusal shows the form again as typed.
pub async fn derive<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<DeriveForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let bad = |field: &str, message: String| crate::error::ApiError::bad_request(field, message);
    let operation = serde_json::from_value::<cellops_custody::Derivation>(json!(form.operation))
        .map_err(|_| {
            bad(
                "operation",
                format!(
                    "{:?} is not an operation: choose formulate, aliquot, split, pool or sample",
                    form.operation
                ),
            )
        });
    let expires = ui.zone.parse_local(&form.expires).ok_or_else(|| {
        bad(
            "expires_at",
            format!(
                "{:?} is not a date and time: use YYYY-MM-DDTHH:MM",
                form.expires.trim()
            ),
        )
    });
    let children = lines(&form.children);
    let result = match (operation, expires) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(_), Ok(_)) if children.is_empty() => Err(bad(
            "children",
            "no child unit: scan or type each new unit's code, one per line".into(),
        )),
        (Ok(operation), Ok(expires_at)) => crate::routes::custody::derive(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&form.key),
            AppJson(crate::routes::custody::DeriveBody {
                operation,
                parents: lines(&form.parents),
                children: children
                    .iter()
                    .map(|code| crate::routes::custody::ChildBody {
                        code: code.clone(),
                        expires_at,
                    })
                    .collect(),
                reagent_lots: lines(&form.reagent_lots),
                site: ui.site_text(),
                location: form.location.trim().to_string(),
            }),
        )
        .await
        .map(|_| children.clone()),
    };
    let mut ctx = context(&state, &ui, &ScanForm::default());
    match result {
        Ok(made) => {
            ctx["notice"] = json!(ui.t("derive_done"));
            ctx["derive"]["made"] = json!(made);
            render(StatusCode::OK, "scan.html", &ctx)
        }
        Err(e) => {
            ctx["derive"] =
                json!({"values": form, "error": error_message(ui.lang, &e), "made": null});
            render(e.status, "scan.html", &ctx)
        }
    }
}
