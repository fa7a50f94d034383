//! The shipment forms on the shipments page, through the shipments API handlers themselves:
//! **pack** a shipment at the chosen site (units scanned one per line, dry shipper, logger,
//! destination, planned transit; `POST /api/shipments`), **dispatch** what the site packed
//! (`POST /api/shipments/{id}/dispatch`), and **receive** what comes to the site (every unit
//! scanned again, the condition found, where it goes; `POST /api/shipments/{id}/receive`).
//! The API decides (roles, the shipper's charge and qualification, the logger, custody);
//! a refusal is shown on the form with everything typed kept.

use super::{Ui, form_error, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::shipments::{
    AssessBody, CloseBody, InvestigateBody, LoggerUploadBody, PackBody, ReceiveBody, assess,
    charge, close, dispatch, investigate, pack, receive, upload_logger,
};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_cold::{AssessmentDecision, ShipmentCondition};
use cellops_domain::{Role, SiteId};
use cellops_ledger::Backend;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Who packs and dispatches (as the shipments API).
const LOGISTICS_ROLES: [Role; 3] = [Role::Logistics, Role::Operator, Role::SiteAdmin];

#[derive(Deserialize, Serialize, Clone, Default)]
pub struct PackForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipment: String,
    #[serde(default)]
    pub to_site: String,
    /// Unit labels as scanned, one per line.
    #[serde(default)]
    pub units: String,
    #[serde(default)]
    pub shipper: String,
    #[serde(default)]
    pub logger: String,
    #[serde(default)]
    pub transit_hours: String,
}

#[derive(Deserialize, Serialize, Clone, Default)]
pub struct ReceiveForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipment: String,
    /// Unit labels as scanned at unpacking, one per line.
    #[serde(default)]
    pub units: String,
    #[serde(default)]
    pub temperature_c: String,
    /// `on` when the shipper, seals and labels are intact.
    #[serde(default)]
    pub acceptable: String,
    #[serde(default)]
    pub note: String,
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

/// A number typed in a form, or an error naming the field.
fn number(field: &str, text: &str) -> Result<Option<f64>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        t => super::order_forms::parse_cells(t)
            .or_else(|| t.replace('−', "-").parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_a_number",
                    format!("{t:?} is not a number: enter {field} as a number, e.g. 6"),
                )
                .field(field)
            }),
    }
}

/// The pack form for logistics at the chosen site (else `null`): what was typed, or the
/// defaults (6 h transit), and the refusal.
pub(crate) fn pack_view(ui: &Ui, typed: Option<&PackForm>, error: Option<String>) -> Value {
    if !ui.has_any(&LOGISTICS_ROLES) {
        return Value::Null;
    }
    let form = typed.cloned().unwrap_or_else(|| PackForm {
        transit_hours: "6".into(),
        ..PackForm::default()
    });
    json!({"site": ui.site_text(), "values": form, "error": error,
           "charge_error": null, "charge_shipper": ""})
}

/// May the user dispatch the shipment shown (packed at a site where they do logistics)?
pub(crate) fn may_dispatch(ui: &Ui, status: &str, from: &Value) -> bool {
    status == "packed"
        && from
            .as_str()
            .and_then(|s| SiteId::parse(s).ok())
            .is_some_and(|s| {
                LOGISTICS_ROLES
                    .iter()
                    .any(|r| ui.caller.user.has_role(*r, &s))
            })
}

/// The receive form for a shipment in transit to a site where the user works (else
/// `null`): what was typed, or the defaults (intact, put at `<site>/pharmacy`).
pub(crate) fn receive_view(
    ui: &Ui,
    status: &str,
    to: &Value,
    typed: Option<&ReceiveForm>,
    error: Option<String>,
) -> Value {
    let Some(site) = to.as_str().and_then(|s| SiteId::parse(s).ok()) else {
        return Value::Null;
    };
    let writer = Role::WRITERS
        .iter()
        .any(|r| ui.caller.user.has_role(*r, &site));
    if status != "dispatched" || !writer {
        return Value::Null;
    }
    let form = typed.cloned().unwrap_or_else(|| ReceiveForm {
        acceptable: "on".into(),
        location: format!("{site}/pharmacy"),
        ..ReceiveForm::default()
    });
    json!({"site": site.as_str(), "values": form, "error": error})
}

/// Packs the shipment at the chosen site.
pub async fn pack_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<PackForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipment = f.shipment.trim().to_string();
    let transit = number("transit_hours", &f.transit_hours).and_then(|t| {
        t.ok_or_else(|| {
            ApiError::bad_request(
                "transit_hours",
                "give the planned transit time in hours, e.g. 6",
            )
        })
    });
    let result = match transit {
        Err(e) => Err(e),
        Ok(transit) => pack(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&f.key),
            AppJson(PackBody {
                site: ui.site_text(),
                shipment: shipment.clone(),
                to_site: f.to_site.trim().to_string(),
                units: lines(&f.units),
                shipper: f.shipper.trim().to_string(),
                logger: f.logger.trim().to_string(),
                transit_hours: transit,
                margin_hours: None,
                alarm_above_c: None,
                reject_above_c: None,
                gap_minutes_max: None,
            }),
        )
        .await
        .map(|_| ()),
    };
    match result {
        Ok(()) => {
            let (status, mut ctx) = super::cold::shipments_context(&state, &ui, &shipment).await;
            ctx["notice"] = json!(ui.t("shipment_packed_notice"));
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            let (_, mut ctx) = super::cold::shipments_context(&state, &ui, "").await;
            ctx["pack"] = pack_view(&ui, Some(&f), Some(form_error(&ui, &e)));
            render(e.status, "shipments.html", &ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct DispatchForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipment: String,
}

/// Hands the packed shipment to the courier.
pub async fn dispatch_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<DispatchForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipment = f.shipment.trim().to_string();
    let result = dispatch(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&f.key),
        Path(shipment.clone()),
    )
    .await;
    let (status, mut ctx) = super::cold::shipments_context(&state, &ui, &shipment).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("shipment_dispatched_notice"));
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(form_error(&ui, &e));
            render(e.status, "shipments.html", &ctx)
        }
    }
}

/// Receives the shipment at its destination: every unit scanned, the condition found.
pub async fn receive_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<ReceiveForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipment = f.shipment.trim().to_string();
    let (_, shown) = super::cold::shipments_context(&state, &ui, &shipment).await;
    let to_site = shown["shipment"]["to"].as_str().unwrap_or("").to_string();
    let result = match number("temperature_c", &f.temperature_c) {
        Err(e) => Err(e),
        Ok(temperature_c) => receive(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(&f.key),
            Path(shipment.clone()),
            AppJson(ReceiveBody {
                site: to_site.clone(),
                scanned_units: lines(&f.units),
                condition: ShipmentCondition {
                    acceptable: f.acceptable == "on",
                    temperature_c,
                    note: f.note.trim().to_string(),
                },
                location: f.location.trim().to_string(),
            }),
        )
        .await
        .map(|_| ()),
    };
    let (status, mut ctx) = super::cold::shipments_context(&state, &ui, &shipment).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t("shipment_received_notice"));
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            ctx["receive"] = receive_view(
                &ui,
                "dispatched",
                &json!(to_site),
                Some(&f),
                Some(form_error(&ui, &e)),
            );
            render(e.status, "shipments.html", &ctx)
        }
    }
}

/// QA's roles for excursions (as the shipments API).
const QA_ROLES: [Role; 2] = [Role::QaReviewer, Role::QaReleaser];

/// May the user upload the shipment's logger file (a writer at the destination, or
/// logistics at the origin, as the API), once it has left?
pub(crate) fn may_upload_logger(ui: &Ui, status: &str, from: &Value, to: &Value) -> bool {
    let site = |v: &Value| v.as_str().and_then(|s| SiteId::parse(s).ok());
    let at_to = site(to).is_some_and(|s| {
        Role::WRITERS
            .iter()
            .any(|r| ui.caller.user.has_role(*r, &s))
    });
    let at_from = site(from).is_some_and(|s| {
        LOGISTICS_ROLES
            .iter()
            .any(|r| ui.caller.user.has_role(*r, &s))
    });
    status != "packed" && (at_to || at_from)
}

/// The QA step due on an excursion of a shipment from `from` for a QA person there:
/// `investigate` (open), `assess` (investigated) or `close` (assessed), else none.
pub(crate) fn excursion_step(ui: &Ui, from: &Value, deviation_state: &str) -> Option<&'static str> {
    let qa = from
        .as_str()
        .and_then(|s| SiteId::parse(s).ok())
        .is_some_and(|s| QA_ROLES.iter().any(|r| ui.caller.user.has_role(*r, &s)));
    if !qa {
        return None;
    }
    match deviation_state {
        "open" => Some("investigate"),
        "investigating" => Some("assess"),
        "assessed" => Some("close"),
        _ => None,
    }
}

#[derive(Deserialize, Serialize, Clone, Default)]
pub struct LoggerForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipment: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub csv: String,
}

/// Uploads the logger file's text (pasted or read from the file by the browser).
pub async fn logger_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoggerForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipment = f.shipment.trim().to_string();
    let result = upload_logger(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&f.key),
        Path(shipment.clone()),
        AppJson(LoggerUploadBody {
            format: f.format.trim().to_string(),
            csv: f.csv.clone(),
            timestamp_column: None,
            temperature_column: None,
            unit: None,
            delimiter: None,
            utc_offset: None,
        }),
    )
    .await;
    let (status, mut ctx) = super::cold::shipments_context(&state, &ui, &shipment).await;
    match result {
        Ok(found) => {
            let n = found.0["excursions"].as_array().map_or(0, Vec::len);
            ctx["notice"] = json!(format!(
                "{} {}",
                ui.t("shipment_logger_uploaded"),
                ui.t(if n == 0 {
                    "shipment_logger_clean"
                } else {
                    "shipment_logger_excursions"
                })
            ));
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            ctx["logger_form"] = json!({"values": f, "error": form_error(&ui, &e)});
            render(e.status, "shipments.html", &ctx)
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Default)]
pub struct ExcursionForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipment: String,
    #[serde(default)]
    pub excursion: String,
    /// `investigate`, `assess` or `close`.
    #[serde(default)]
    pub step: String,
    #[serde(default)]
    pub findings: String,
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub justification: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
}

/// QA's step on an excursion's deviation: the investigation's findings, the assessment
/// (accept or reject, justified), or the closure with the e-signature that puts the
/// assessment in force.
pub async fn excursion_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<ExcursionForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipment = f.shipment.trim().to_string();
    let excursion = f.excursion.trim().to_string();
    let st = State(state.clone());
    let key = idempotency_headers(&f.key);
    let path = Path(excursion.clone());
    let result = match f.step.as_str() {
        "investigate" => investigate(
            st,
            ui.caller.clone(),
            key,
            path,
            AppJson(InvestigateBody {
                findings: f.findings.trim().to_string(),
            }),
        )
        .await
        .map(|_| ()),
        "assess" => match f.decision.as_str() {
            "accept" | "reject" => assess(
                st,
                ui.caller.clone(),
                key,
                path,
                AppJson(AssessBody {
                    decision: if f.decision == "accept" {
                        AssessmentDecision::Accept
                    } else {
                        AssessmentDecision::Reject
                    },
                    justification: f.justification.trim().to_string(),
                }),
            )
            .await
            .map(|_| ()),
            _ => Err(ApiError::bad_request("decision", "choose accept or reject")),
        },
        "close" => close(
            st,
            ui.caller.clone(),
            key,
            path,
            AppJson(CloseBody {
                password: Some(f.password.clone()).filter(|p| !p.is_empty()),
                user_id: Some(f.user_id.trim().to_string()).filter(|u| !u.is_empty()),
            }),
        )
        .await
        .map(|_| ()),
        _ => Err(ApiError::bad_request(
            "step",
            "use investigate, assess or close",
        )),
    };
    let (status, mut ctx) = super::cold::shipments_context(&state, &ui, &shipment).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t(&format!("shipment_excursion_{}_done", f.step)));
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            let error = form_error(&ui, &e);
            if let Some(rows) = ctx["shipment"]["excursions"].as_array_mut() {
                for row in rows.iter_mut().filter(|r| r["id"] == json!(excursion)) {
                    row["typed"] = json!(f);
                    row["error"] = json!(error);
                }
            }
            render(e.status, "shipments.html", &ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct ChargeForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub shipper: String,
}

/// Records an LN2 charge of a dry shipper (before it is packed).
pub async fn charge_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<ChargeForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let shipper = f.shipper.trim().to_string();
    let result = charge(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&f.key),
        Path(shipper.clone()),
    )
    .await;
    let (status, mut ctx) = super::cold::shipments_context(&state, &ui, "").await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(format!("{} {shipper}", ui.t("shipment_charged_notice")));
            if ctx["pack"].is_object() {
                ctx["pack"]["values"]["shipper"] = json!(shipper);
            }
            render(status, "shipments.html", &ctx)
        }
        Err(e) => {
            if ctx["pack"].is_object() {
                ctx["pack"]["charge_error"] = json!(form_error(&ui, &e));
                ctx["pack"]["charge_shipper"] = json!(shipper);
            } else {
                ctx["error"] = json!(form_error(&ui, &e));
            }
            render(e.status, "shipments.html", &ctx)
        }
    }
}
