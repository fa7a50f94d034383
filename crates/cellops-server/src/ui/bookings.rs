//! The hospital's collection-slot booking: check a date end to end with the planner behind
//! `POST /api/bookings/check` (stage dates and the risk: the chance the dates hold, and the
//! dates an OOS retest or a re-manufacture would give), or see the binding constraint and the
//! earliest alternatives; then book the date or an alternative through
//! `routes::schedule::book_slot`, as `POST /api/bookings` does. The site's bookings below.
//!
//! A check records nothing, so it is a GET form; booking is a POST with the CSRF token and
//! the form's one-time key as the idempotency key.

use super::{Ui, error_message, form_key, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::{AppJson, AppQuery};
use crate::routes::schedule::{
    BOOKING_ROLES, BookBody, BookOutcome, ScheduleModel, SiteQuery, book_slot, check as api_check,
    list as api_list,
};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// What the check form asks (all optional: an empty page shows the form only).
#[derive(Debug, Default, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub latest: String,
    /// The booking just made (after the redirect of a booking).
    #[serde(default)]
    pub booked: String,
}

/// A booking as posted: the checked date or an alternative.
#[derive(Debug, Default, Deserialize)]
pub struct BookForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub latest: String,
}

fn percent(p: Option<f64>) -> Option<String> {
    p.map(|p| format!("{:.0} %", p * 100.0))
}

/// A stage name in the language (the network's own name when there is no translation).
fn stage_name(ui: &Ui, stage: &str) -> String {
    let key = format!("booking_stage_{stage}");
    ui.lang
        .texts()
        .get(&key)
        .cloned()
        .unwrap_or_else(|| stage.to_string())
}

/// A repeat (`if_oos` / `if_failed`) for the page.
fn rescue_view(ui: &Ui, r: &Value) -> Value {
    if r.is_null() {
        return Value::Null;
    }
    let within = r["within_window"].as_bool().unwrap_or(false);
    json!({
        "known": r["known"],
        "infusion": r["infusion"].as_str().map_or_else(|| ui.t("booking_no_repeat"), str::to_string),
        "delay": r["delay_days"].as_i64().map(|d| ui.t("booking_days_later").replace("{n}", &d.to_string())),
        "within": within,
        "window": ui.t(if within { "booking_in_window" } else { "booking_out_of_window" }),
    })
}

/// A proposal (the checked date or an alternative) for the page.
fn proposal_view(ui: &Ui, p: &Value) -> Value {
    let stages: Vec<Value> = p["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            json!({"stage": stage_name(ui, s["stage"].as_str().unwrap_or("")),
                   "start": s["start"], "end": s["end"]})
        })
        .collect();
    let risk = &p["risk"];
    json!({
        "collection": p["collection"],
        "infusion": p["infusion"],
        "days": p["vein_to_vein_days"],
        "stages": stages,
        "on_time": percent(risk["p_on_time"].as_f64()),
        "first_time_right": percent(risk["p_first_time_right"].as_f64()),
        "if_oos": rescue_view(ui, &risk["if_oos"]),
        "if_failed": rescue_view(ui, &risk["if_failed"]),
    })
}

/// The binding constraint in the language: the planner's sentence in English; in Japanese
/// the constraint's translation with its resource and dates.
fn binding_view(ui: &Ui, b: &Value) -> Value {
    let constraint = b["constraint"].as_str().unwrap_or("");
    let message = match ui.lang {
        super::i18n::Lang::En => b["message"].as_str().unwrap_or("").to_string(),
        super::i18n::Lang::Ja => {
            let mut text = ui.t(&format!("booking_binding_{constraint}"));
            for (field, value) in [
                ("resource", &b["resource"]),
                ("from", &b["from"]),
                ("to", &b["to"]),
            ] {
                text = text.replace(&format!("{{{field}}}"), value.as_str().unwrap_or("-"));
            }
            text
        }
    };
    json!({"constraint": constraint, "message": message})
}

/// The network's products and whether each is chosen.
fn products<B: Backend>(state: &AppState<B>, chosen: &str) -> Vec<Value> {
    state.read_model(|m: &mut ScheduleModel| {
        m.planner()
            .network()
            .instance()
            .products
            .iter()
            .map(|p| json!({"id": p.id, "selected": p.id == chosen}))
            .collect()
    })
}

fn body(ui: &Ui, product: &str, date: &str, latest: &str) -> BookBody {
    let optional = |t: &str| (!t.trim().is_empty()).then(|| t.trim().to_string());
    BookBody {
        product: product.trim().to_string(),
        hospital: ui.site_text(),
        collection_date: date.trim().to_string(),
        earliest_date: None,
        latest_infusion: optional(latest),
        due_date: None,
        weight: None,
        order: None,
    }
}

/// The page: the check form, the answer to a check, the site's bookings.
async fn page_with<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    q: &CheckQuery,
    error: Option<&ApiError>,
) -> Response {
    let mut ctx = ui.context("/ui/bookings", "booking_title");
    let may_book = ui.has_any(&BOOKING_ROLES);
    ctx["may_book"] = json!(may_book);
    ctx["form"] = json!({"product": q.product, "date": q.date, "latest": q.latest,
                         "key": form_key(state)});
    ctx["products"] = json!(products(state, &q.product));
    ctx["answer"] = Value::Null;
    ctx["error"] = json!(error.map(|e| error_message(ui.lang, e)));
    let mut status = error.map_or(StatusCode::OK, |e| e.status);
    if !q.date.trim().is_empty() {
        let b = body(ui, &q.product, &q.date, &q.latest);
        match api_check(State(state.clone()), ui.caller.clone(), AppJson(b)).await {
            Ok(answer) => {
                let a = answer.0;
                ctx["answer"] = if a["feasible"] == true {
                    json!({"feasible": true, "proposal": proposal_view(ui, &a)})
                } else {
                    let alternatives: Vec<Value> = a["alternatives"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| proposal_view(ui, p))
                        .collect();
                    json!({"feasible": false, "binding": binding_view(ui, &a["binding"]),
                           "alternatives": alternatives})
                };
            }
            Err(e) => {
                status = e.status;
                ctx["error"] = json!(error_message(ui.lang, &e));
            }
        }
    }
    let listed = api_list(
        State(state.clone()),
        ui.caller.clone(),
        AppQuery(SiteQuery {
            site: ui.site_text(),
        }),
    )
    .await;
    let bookings: Vec<Value> = match listed {
        Ok(l) => l.0["bookings"].as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    ctx["booked"] = json!(bookings.iter().find(|b| b["id"] == q.booked.as_str()));
    ctx["bookings"] = json!(bookings);
    render(status, "bookings.html", &ctx)
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<CheckQuery>,
) -> Response {
    page_with(&state, &ui, &q, None).await
}

/// Books the date of the form (the checked date or an alternative); then back to the page
/// with the booking shown. A refusal shows the page again with the reason; an infeasible
/// date (taken since the check) shows the check's answer for it.
pub async fn book<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(f): Form<BookForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &f.csrf) {
        return refused;
    }
    let q = CheckQuery {
        product: f.product.clone(),
        date: f.date.clone(),
        latest: f.latest.clone(),
        booked: String::new(),
    };
    let site = match ui.site.clone() {
        Some(s) => s,
        None => {
            let e = ApiError::bad_request("site", "choose the hospital you book for");
            return page_with(&state, &ui, &q, Some(&e)).await;
        }
    };
    if let Err(e) = ui.caller.require(&BOOKING_ROLES, &site) {
        return page_with(&state, &ui, &q, Some(&e)).await;
    }
    let b = body(&ui, &f.product, &f.date, &f.latest);
    let key = crate::json::idempotency_key(&idempotency_headers(&f.key));
    match book_slot(&state, &ui.caller.user.id, &b, key).await {
        Ok(BookOutcome::Booked { booking, .. } | BookOutcome::Existing(booking)) => {
            Redirect::to(&format!("/ui/bookings?booked={}", booking.id)).into_response()
        }
        // Taken since the check: the page shows why and what works now.
        Ok(BookOutcome::Infeasible { binding, .. }) => {
            let e = ApiError::conflict(binding.message);
            page_with(&state, &ui, &q, Some(&e)).await
        }
        Err(e) => page_with(&state, &ui, &q, Some(&e)).await,
    }
}
