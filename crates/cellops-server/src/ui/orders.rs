//! Orders, vein to vein: the site's orders, and one order's timeline (what happened, who did
//! it and when, and which module's record it came from), what is next and the predicted
//! dates, from the orders API (`GET /api/orders`, `GET /api/orders/{id}`, so visibility per
//! site and role is the API's). At the hospital the nurses record the thaw (e-signature),
//! the two-person bedside verification (the second nurse re-enters their password) with a
//! big PASS / STOP, and the infusion, each through the orders API handler itself.

use super::i18n::Lang;
use super::order_forms;
use super::{Ui, error_message, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::{AppJson, AppQuery};
use crate::routes::orders::{
    BedsideBody, InfusionBody, ListQuery, MilestoneBody, ScanPair, SecondChecker,
    bedside as api_bedside, infusion as api_infusion, list as api_list, milestone as api_milestone,
    show as api_show,
};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::{Role, SiteId};
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who records thaw, bedside verification and infusion (at the order's hospital).
const BEDSIDE_ROLES: [Role; 2] = [Role::Nurse, Role::Physician];

/// Payload fields of a timeline record shown as facts (language-neutral values).
const FACT_FIELDS: [&str; 8] = [
    "batch",
    "unit",
    "starting_unit",
    "dose",
    "shipment",
    "first_checker",
    "second_checker",
    "location",
];

#[derive(Deserialize)]
pub struct OrderQuery {
    #[serde(default)]
    pub order: String,
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

/// The translation of `prefix` + `code`, else the code itself (an API name, not prose).
fn label(lang: Lang, prefix: &str, code: &str) -> String {
    lang.texts()
        .get(&format!("{prefix}{}", code.replace(['.', '-'], "_")))
        .cloned()
        .unwrap_or_else(|| code.to_string())
}

/// The module whose record a timeline line is: the source of that milestone.
fn source_module(event_type: &str, stream: &str) -> &'static str {
    match event_type.split('.').next().unwrap_or("") {
        "batch" | "culture" => "batch",
        "qc" => "release",
        "bank" => "bank",
        "shipment" => "shipment",
        "bedside" | "infusion" => "bedside",
        "schedule" => "schedule",
        "esig" if !stream.starts_with("order/") => "release",
        _ => "order",
    }
}

/// What the ledger says about the records behind a timeline: (event type, stream, site,
/// payload) per seq, read in one blocking call.
async fn timeline_records<B: Backend>(
    state: &AppState<B>,
    seqs: Vec<u64>,
) -> Result<Vec<(String, String, String, Value)>, ApiError> {
    state
        .blocking(move |s| {
            seqs.iter()
                .map(|seq| {
                    let r = s.ledger.record(*seq)?;
                    let payload = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
                    Ok((r.event_type, r.stream, r.site.to_string(), payload))
                })
                .collect()
        })
        .await
}

fn time(ui: &Ui, v: &Value) -> String {
    v.as_str()
        .map(|t| ui.format_time_text(t))
        .unwrap_or_else(|| "—".to_string())
}

/// A number of cells as `1.0 × 10⁸` (the same in both languages).
pub(crate) fn cells_text(cells: f64) -> String {
    if cells <= 0.0 || !cells.is_finite() {
        return cells.to_string();
    }
    let exp = cells.log10().floor() as i32;
    let mantissa = cells / 10f64.powi(exp);
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let sup: String = exp
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            d => SUP[d.to_digit(10).unwrap_or(0) as usize],
        })
        .collect();
    format!("{mantissa:.1} × 10{sup}")
}

/// The order as the page shows it.
async fn order_view<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    o: &Value,
) -> Result<Value, ApiError> {
    let happened = o["happened"].as_array().cloned().unwrap_or_default();
    let seqs: Vec<u64> = happened.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let records = timeline_records(state, seqs).await?;
    let readable: Vec<SiteId> = ui.caller.user.sites().into_iter().collect();
    let timeline: Vec<Value> = happened
        .iter()
        .zip(records.iter())
        .map(|(e, (event_type, stream, site, payload))| {
            let what = e["what"].as_str().unwrap_or("");
            let module = source_module(event_type, stream);
            let facts: Vec<Value> = FACT_FIELDS
                .iter()
                .filter_map(|f| {
                    payload
                        .get(*f)
                        .and_then(Value::as_str)
                        .map(|v| json!({"name": label(ui.lang, "field_", f), "value": v}))
                })
                .collect();
            json!({
                "seq": e["seq"],
                "at": time(ui, &e["at"]),
                "what": label(ui.lang, "order_what_", what),
                "code": what,
                "by": e["by"],
                "manual": e["manual"].as_bool().unwrap_or(false),
                "refusal": matches!(what, "refused" | "bedside.mismatch"),
                "source": {"module": module, "label": label(ui.lang, "order_source_", module),
                           "event_type": event_type, "site": site,
                           "linked": readable.iter().any(|s| s.as_str() == site)},
                "facts": facts,
                // The order book's sentence is English: shown in English only.
                "detail": if ui.lang == Lang::En { e["detail"].clone() } else { Value::Null },
            })
        })
        .collect();
    let predicted: Vec<Value> = o["predicted"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let basis = match p["basis"].as_str().unwrap_or("") {
                "twin prediction of the dose" => "twin",
                "start of the treatment window" => "window",
                "booked schedule" => "booked",
                _ => "typical",
            };
            json!({
                "step": label(ui.lang, "order_step_", p["step"].as_str().unwrap_or("")),
                "code": p["step"],
                "at": time(ui, &p["at"]),
                "basis": label(ui.lang, "order_basis_", basis),
            })
        })
        .collect();
    let stage = o["stage"].as_str().unwrap_or("");
    let site = o["site"].as_str().unwrap_or("").to_string();
    let at_hospital = SiteId::parse(&site).ok().is_some_and(|s| {
        BEDSIDE_ROLES
            .iter()
            .any(|r| ui.caller.user.has_role(*r, &s))
    }) && ui.site_text() == site;
    let unit = o["product_unit"].as_str().map(str::to_string);
    let dose = &o["dose"];
    // What the dose counts, per product in the user's language.
    let counts = ui
        .lang
        .texts()
        .get(&format!(
            "order_counts_{}",
            o["product"].as_str().unwrap_or("").replace('-', "_")
        ))
        .cloned()
        .unwrap_or_else(|| o["dose_counts"].as_str().unwrap_or("").to_string());
    let mut dose_text = format!(
        "{} {counts}",
        cells_text(dose["cells"].as_f64().unwrap_or(0.0))
    );
    if dose["basis"] == "per_kg" {
        dose_text = format!("{dose_text} / kg");
    }
    Ok(json!({
        "id": o["order"],
        "subject": o["subject"],
        "site": site,
        "manufacturer": o["manufacturer"],
        "product": o["product"],
        "dose": dose_text,
        "physician": o["physician"],
        "window_earliest": time(ui, &o["window"]["earliest"]),
        "window_latest": time(ui, &o["window"]["latest"]),
        "stage": stage,
        "stage_label": label(ui.lang, "order_stage_", stage),
        "next": label(ui.lang, "order_next_", stage),
        "batch": o["batch"],
        // The batch view is for those with a role at the manufacturing site (as its API).
        "batch_linked": o["manufacturer"].as_str().and_then(|m| SiteId::parse(m).ok())
            .is_some_and(|m| ui.caller.user.has_any_role_at(&m)),
        "product_unit": unit,
        "collected_units": o["collected_units"],
        "released_at_risk": o["released_at_risk"],
        "failed_batches": o["failed_batches"],
        "infused_at": if o["infused_at"].is_null() { Value::Null } else { json!(time(ui, &o["infused_at"])) },
        "timeline": timeline,
        "predicted": predicted,
        "may_thaw": at_hospital && stage == "received_at_hospital",
        "flow_step": flow_step(ui, stage, &site, o["manufacturer"].as_str().unwrap_or("")),
        "may_verify": at_hospital && matches!(stage, "thawed" | "verified"),
        "may_infuse": at_hospital && stage == "verified",
        "may_sign": order_forms::may_sign(ui, o),
        "may_collect": order_forms::may_collect(ui, o),
        "esig_acknowledged": ui.caller.user.esig_policy_acknowledged,
    }))
}

/// The page context: the site's orders, or one order.
pub(crate) async fn context<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    order: &str,
) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/orders", "orders_title");
    ctx["order_id"] = json!(order);
    ctx["order"] = Value::Null;
    ctx["orders"] = Value::Null;
    ctx["key"] = json!(super::form_key(state));
    ctx["bedside"] = Value::Null;
    ctx["default_location"] = json!(format!("{}/ward", ui.site_text()));
    // The hospital's forms (`order_forms`): new order, signature, collection.
    ctx["new_order"] = if order.is_empty() && order_forms::may_order(ui) {
        order_forms::new_order_view(state, ui, None, None)
    } else {
        Value::Null
    };
    ctx["sign"] = order_forms::sign_view(ui, None);
    ctx["collection"] = order_forms::collection_view(ui, None, None);
    if order.is_empty() {
        let Some(site) = ui.site.clone() else {
            return (StatusCode::OK, ctx);
        };
        let listed = api_list(
            State(state.clone()),
            ui.caller.clone(),
            AppQuery(ListQuery {
                site: site.to_string(),
            }),
        )
        .await;
        match listed {
            Ok(body) => {
                let rows: Vec<Value> = body.0["orders"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .map(|o| {
                        let stage = o["stage"].as_str().unwrap_or("");
                        let infusion = o["predicted"]
                            .as_array()
                            .and_then(|p| p.iter().find(|x| x["step"] == "infusion"))
                            .map(|p| time(ui, &p["at"]));
                        json!({
                            "id": o["order"], "subject": o["subject"], "product": o["product"],
                            "site": o["site"], "stage": stage,
                            "stage_label": label(ui.lang, "order_stage_", stage),
                            "next": label(ui.lang, "order_next_", stage),
                            "infusion": infusion,
                        })
                    })
                    .collect();
                ctx["orders"] = json!(rows);
                ctx["orders_count"] = json!(ui.lang.format_count(rows.len() as u64));
                (StatusCode::OK, ctx)
            }
            Err(e) => {
                ctx["error"] = json!(error_message(ui.lang, &e));
                (e.status, ctx)
            }
        }
    } else {
        ctx["back"] = json!(format!("/ui/orders?order={}", urlencode(order)));
        let shown = api_show(
            State(state.clone()),
            ui.caller.clone(),
            Path(order.to_string()),
        )
        .await;
        match shown {
            Ok(body) => match order_view(state, ui, &body.0).await {
                Ok(view) => {
                    ctx["order"] = view;
                    (StatusCode::OK, ctx)
                }
                Err(e) => {
                    ctx["error"] = json!(error_message(ui.lang, &e));
                    (e.status, ctx)
                }
            },
            Err(e) => {
                ctx["error"] = json!(error_message(ui.lang, &e));
                (e.status, ctx)
            }
        }
    }
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<OrderQuery>,
) -> Response {
    let (status, ctx) = context(&state, &ui, q.order.trim()).await;
    render(status, "orders.html", &ctx)
}

/// Renders the order page after a form: the API's refusal as the page's error.
async fn after<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    order: &str,
    result: Result<(), ApiError>,
    notice: &str,
) -> Response {
    let (status, mut ctx) = context(state, ui, order).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t(notice));
            render(status, "orders.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "orders.html", &ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct ThawForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub order: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
    /// `on` when the user accepts the e-signature policy with this first signature.
    #[serde(default)]
    pub acknowledge: String,
}

/// Acknowledges the e-signature policy for a first signature when the user ticked it
/// (`acknowledge = on`); the `Ui` then knows it is acknowledged.
async fn acknowledge_if_ticked<B: Backend>(
    state: &AppState<B>,
    ui: &mut Ui,
    acknowledge: &str,
) -> Result<(), ApiError> {
    if !ui.caller.user.esig_policy_acknowledged && acknowledge == "on" {
        let _acknowledged = crate::routes::auth::acknowledge_esig_policy(
            State(state.clone()),
            HeaderMap::new(),
            ui.caller.clone(),
        )
        .await?;
        ui.caller.user.esig_policy_acknowledged = true;
    }
    Ok(())
}

/// The order flow's own step due after the collection that the user may sign: the hand-off
/// to the courier for the CPC (at the hospital), then the receipt and identity check at the
/// CPC (at the manufacturer); `null` otherwise. (The thaw has its own form.)
fn flow_step(ui: &Ui, stage: &str, hospital: &str, manufacturer: &str) -> Value {
    let (milestone, site) = match stage {
        "collected" => (cellops_orders::Milestone::ShippedToCpc, hospital),
        "shipped_to_cpc" => (cellops_orders::Milestone::ReceivedAtCpc, manufacturer),
        _ => return Value::Null,
    };
    let allowed = SiteId::parse(site).ok().is_some_and(|s| {
        crate::routes::orders::milestone_roles(milestone)
            .iter()
            .any(|r| ui.caller.user.has_role(*r, &s))
    });
    if !allowed {
        return Value::Null;
    }
    let id = milestone.as_str();
    json!({"milestone": id, "site": site,
           "title": ui.t(&format!("order_what_{id}")),
           "explain": ui.t(&format!("orders_step_explain_{id}"))})
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub order: String,
    pub milestone: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub password: String,
    /// `on` when the user accepts the e-signature policy with this first signature.
    #[serde(default)]
    pub acknowledge: String,
}

/// The flow step shown by [`flow_step`], signed by its performer ("Performed") at the site
/// where it happens (the order's hospital, or its manufacturer for the receipt); the
/// e-signature policy is acknowledged first when the user ticked it.
pub async fn step<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<StepForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let mut ui = ui;
    if let Err(e) = acknowledge_if_ticked(&state, &mut ui, &form.acknowledge).await {
        return after(&state, &ui, &order, Err(e), "orders_step_recorded").await;
    }
    let site = match context(&state, &ui, &order).await.1["order"]["flow_step"]["site"].as_str() {
        Some(site) => site.to_string(),
        None => ui.site_text(),
    };
    let body = MilestoneBody {
        site,
        milestone: form.milestone.trim().to_string(),
        unit: None,
        batch: None,
        predicted_at: None,
        note: None,
        password: form.password,
        user_id: Some(form.user_id.trim().to_string()).filter(|u| !u.is_empty()),
    };
    let result = api_milestone(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path(order.clone()),
        AppJson(body),
    )
    .await
    .map(|_| ());
    after(&state, &ui, &order, result, "orders_step_recorded").await
}

/// The thaw at the bedside, signed by the nurse who did it ("Performed").
pub async fn thaw<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ThawForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let mut ui = ui;
    if let Err(e) = acknowledge_if_ticked(&state, &mut ui, &form.acknowledge).await {
        return after(&state, &ui, &order, Err(e), "orders_thawed").await;
    }
    let body = MilestoneBody {
        site: ui.site_text(),
        milestone: "thawed".to_string(),
        unit: None,
        batch: None,
        predicted_at: None,
        note: None,
        password: form.password,
        user_id: Some(form.user_id.trim().to_string()).filter(|u| !u.is_empty()),
    };
    let result = api_milestone(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path(order.clone()),
        AppJson(body),
    )
    .await
    .map(|_| ());
    after(&state, &ui, &order, result, "orders_thawed").await
}

#[derive(Deserialize)]
pub struct BedsideForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub order: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub first_wristband: String,
    #[serde(default)]
    pub first_unit: String,
    #[serde(default)]
    pub second_user: String,
    #[serde(default)]
    pub second_password: String,
    #[serde(default)]
    pub second_wristband: String,
    #[serde(default)]
    pub second_unit: String,
}

/// The two-person bedside verification: PASS when both checkers' scans match the order,
/// else the API's hard stop (recorded by the API) as a big STOP naming the reason.
pub async fn bedside<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<BedsideForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let body = BedsideBody {
        site: ui.site_text(),
        location: form.location.trim().to_string(),
        first: ScanPair {
            wristband: form.first_wristband.trim().to_string(),
            unit: form.first_unit.trim().to_string(),
        },
        second: SecondChecker {
            user_id: form.second_user.trim().to_string(),
            password: form.second_password,
            wristband: form.second_wristband.trim().to_string(),
            unit: form.second_unit.trim().to_string(),
        },
    };
    let result = api_bedside(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path(order.clone()),
        AppJson(body),
    )
    .await;
    let (status, mut ctx) = context(&state, &ui, &order).await;
    match result {
        Ok(_) => {
            ctx["bedside"] = json!({"kind": "pass", "headline": ui.t("bedside_pass"),
                                    "detail": ui.t("bedside_pass_detail")});
            render(status, "orders.html", &ctx)
        }
        Err(e) => {
            // A hard stop (409) is the check's refusal; anything else is an input problem.
            let stop = e.status == StatusCode::CONFLICT;
            let reason = label(ui.lang, "bedside_reason_", e.code);
            let detail = if ui.lang == Lang::En || !stop {
                error_message(ui.lang, &e)
            } else {
                reason.clone()
            };
            ctx["bedside"] = json!({
                "kind": if stop { "stop" } else { "error" },
                "headline": ui.t(if stop { "bedside_stop" } else { "bedside_not_checked" }),
                "reason": reason,
                "code": e.code,
                "detail": detail,
            });
            ctx["bedside_form"] = json!({"location": form.location});
            render(e.status, "orders.html", &ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct InfusionForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub order: String,
    #[serde(default)]
    pub volume_ml: String,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub observations: String,
}

/// Records the infusion (the API checks release, a fresh bedside verification, the window).
pub async fn infusion<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<InfusionForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let order = form.order.trim().to_string();
    let volume = form.volume_ml.trim().replace(',', ".");
    let result = match volume.parse::<f64>() {
        Ok(volume_ml) if volume_ml.is_finite() => {
            let body = InfusionBody {
                site: ui.site_text(),
                volume_ml,
                started_at: None,
                route: form.route.trim().to_string(),
                observations: Some(form.observations.trim().to_string()).filter(|o| !o.is_empty()),
            };
            api_infusion(
                State(state.clone()),
                ui.caller.clone(),
                idempotency_headers(&form.key),
                Path(order.clone()),
                AppJson(body),
            )
            .await
            .map(|_| ())
        }
        _ => Err(ApiError::bad_request(
            "volume_ml",
            format!(
                "{:?} is not a volume: enter millilitres as a number, e.g. 50",
                form.volume_ml
            ),
        )),
    };
    after(&state, &ui, &order, result, "orders_infused").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_written_in_powers_of_ten() {
        assert_eq!(cells_text(1e8), "1.0 × 10⁸");
        assert_eq!(cells_text(2.5e10), "2.5 × 10¹⁰");
    }

    #[test]
    fn each_record_names_its_module() {
        assert_eq!(source_module("batch.batch_completed", "batch/b1"), "batch");
        assert_eq!(
            source_module("culture.prediction_made", "batch/b1"),
            "batch"
        );
        assert_eq!(source_module("esig.signed", "batch/b1"), "release");
        assert_eq!(source_module("esig.signed", "order/o-1"), "order");
        assert_eq!(source_module("shipment.received", "shipment/s"), "shipment");
        assert_eq!(source_module("bank.dose_allocated", "bank/x"), "bank");
        assert_eq!(source_module("bedside.mismatch", "unit/x"), "bedside");
        assert_eq!(source_module("order.milestone", "order/o-1"), "order");
    }
}
