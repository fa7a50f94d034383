//! The shipment forms on the shipments page, through the shipments API handlers themselves:
//! **pack** a shipment at the chosen site (units scanned one per line, dry shipper, logger,
//! destination, planned transit; `POST /api/shipments`), **dispatch** what the site packed
//! (`POST /api/shipments/{id}/dispatch`), and **receive** what comes to the site (every unit
//! scanned again, the condition found, where it goes; `POST /api/shipments/{id}/receive`).
//! The API decides (roles, the shipper's charge and qualification, the logger, custody);
//! a refusal is shown on the form with everything typed kept.

use super::{Ui, error_message, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::shipments::{PackBody, ReceiveBody, dispatch, pack, receive};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_cold::ShipmentCondition;
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

/// A refusal's message: the API's sentence in English, the translated rule in Japanese.
fn message(ui: &Ui, e: &ApiError) -> String {
    match ui.lang {
        super::i18n::Lang::En => error_message(ui.lang, e),
        super::i18n::Lang::Ja => ui
            .lang
            .texts()
            .get(&format!("form_err_{}", e.code))
            .cloned()
            .unwrap_or_else(|| error_message(ui.lang, &ApiError::new(e.status, e.code, ""))),
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
    json!({"site": ui.site_text(), "values": form, "error": error})
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
            ctx["pack"] = pack_view(&ui, Some(&f), Some(message(&ui, &e)));
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
            ctx["error"] = json!(message(&ui, &e));
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
                Some(message(&ui, &e)),
            );
            render(e.status, "shipments.html", &ctx)
        }
    }
}
