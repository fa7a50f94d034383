//! The operator's actions on the batch view besides confirming a step: starting the step
//! that is due (with the lot numbers of the materials the recipe says must be recorded)
//! and entering the results of the sampling step in progress (each parameter with its
//! in-process limits), through the batch API handlers themselves
//! (`POST /api/batches/{id}/steps/{step}/start`, `…/results`). The API decides: the
//! qualification, the hold, the lots, the limits (an out-of-limit result opens the
//! deviation the recipe names).
//!
//! A value the form cannot read is refused here naming its field; every value typed is
//! shown again after a refusal.

use super::i18n::Lang;
use super::{Ui, form_error, idempotency_headers, render};
use crate::error::ApiError;
use crate::json::AppJson;
use crate::routes::batch::{
    EvaluateBody, ResultsBody, StartStepBody, evaluate, record_results, start_step,
};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cellops_process::engine::{DecisionOutcome, evaluate_decision};
use cellops_process::recipe::model::{
    DecisionStep, LimitAction, Recipe, SamplingStep, Step, StepKind,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A limit value as the page writes it (large counts as `1.0 × 10⁸`).
fn limit_text(v: f64) -> String {
    if v.abs() >= 1e5 {
        super::orders::cells_text(v)
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The translated name of a parameter, else its recipe name (an identifier with its unit).
fn parameter_label(lang: Lang, name: &str) -> String {
    lang.texts()
        .get(&format!("batch_param_{name}"))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// The due step to start: its id, name and the materials whose lot must be recorded; a
/// decision step is evaluated, not started, so it has no start form.
pub(crate) fn start_step_view(ui: &Ui, recipe: &Recipe, s: &Step) -> Option<Value> {
    if matches!(s.kind, StepKind::Decision(_)) {
        return None;
    }
    let lots: Vec<Value> = s
        .kind
        .materials()
        .iter()
        .filter_map(|u| recipe.material(&u.material))
        .filter(|m| m.lot_required)
        .map(|m| json!({"id": m.id, "name": m.name, "value": "", "error": null}))
        .collect();
    Some(json!({
        "id": s.id,
        "name": s.name,
        "kind": ui.t(&format!("batch_kind_{}", s.kind.name())),
        "lots": lots,
        "error": null,
    }))
}

/// The sampling step in progress: instruction and each parameter with its limits.
pub(crate) fn sampling_view(ui: &Ui, s: &Step, sm: &SamplingStep) -> Value {
    let parameters: Vec<Value> = sm
        .limits
        .iter()
        .map(|(name, l)| {
            let range = match (l.min, l.max) {
                (Some(min), Some(max)) => format!("{} – {}", limit_text(min), limit_text(max)),
                (Some(min), None) => format!("≥ {}", limit_text(min)),
                (None, Some(max)) => format!("≤ {}", limit_text(max)),
                (None, None) => "—".to_string(),
            };
            json!({
                "name": name,
                "label": parameter_label(ui.lang, name),
                "range": range,
                "holds": l.on_out_of_limit == LimitAction::Hold,
                "value": "",
                "error": null,
            })
        })
        .collect();
    json!({
        "id": s.id,
        "name": s.name,
        "instruction": if ui.lang == Lang::Ja { &sm.instruction_ja } else { &sm.instruction_en },
        "parameters": parameters,
        "error": null,
    })
}

/// The decision due, for a culturist to confirm with an e-signature: what the twin sees
/// now (the decision parameter's value and the predicted dose day, as
/// `routes::batch::decision_preview` computes them, recording nothing), the target, the
/// culture day and the window, and what signing will decide. Without a simulated device
/// there is no prediction and the culturist types the value.
pub(crate) async fn decision_view<B: cellops_ledger::Backend>(
    state: &AppState<B>,
    ui: &Ui,
    batch: &str,
    id: &str,
    name: &str,
    d: &DecisionStep,
) -> Value {
    let preview = crate::routes::batch::decision_preview(state, batch, id)
        .await
        .ok()
        .flatten();
    let value = preview.as_ref().map(|(v, _)| *v);
    let prediction = preview.as_ref().map(|(_, p)| p);
    let elapsed_h = prediction.and_then(|p| p["elapsed_hours"].as_f64());
    let outcome = match (value, elapsed_h) {
        (Some(v), Some(h)) => Some(match evaluate_decision(d, h, v) {
            DecisionOutcome::ContinueBeforeEarliestDay => "before_earliest_day",
            DecisionOutcome::ContinueTargetNotMet => "target_not_met",
            DecisionOutcome::ProceedTargetMet => "target_met",
            DecisionOutcome::ProceedLatestDayReached => "latest_day_reached",
        }),
        _ => None,
    };
    json!({
        "id": id,
        "name": name,
        "parameter": parameter_label(ui.lang, &d.parameter),
        "value": value.map(limit_text),
        "target": limit_text(d.target_min),
        "dose_day": prediction.and_then(|p| p["median_day"].as_f64()).map(super::batch::format_day),
        "day": elapsed_h.map(|h| super::batch::format_day(h / 24.0)),
        "window": format!("{} – {}", d.earliest_day, d.latest_day),
        "outcome": outcome,
        "outcome_label": outcome.map(|o| ui.t(&format!("batch_outcome_{o}"))),
        "needs_value": preview.is_none(),
        "typed": "",
        "error": null,
    })
}

/// The culturist's decision, signed ("Performed") through the batch API's evaluate handler
/// with the password: the twin's value on a simulated batch, else the value typed.
pub async fn decide<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<Fields>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, field(&f, "csrf")) {
        return refused;
    }
    let batch = field(&f, "batch").trim().to_string();
    let step = field(&f, "step").trim().to_string();
    let typed = field(&f, "value").trim();
    let value = match typed {
        "" => Ok(None),
        text => super::order_forms::parse_cells(text)
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "not_a_number",
                    format!("{text:?} is not a number: enter the value as a number, e.g. 3.2e8"),
                )
                .field("value")
            }),
    };
    let result = match value {
        Err(e) => Err(e),
        Ok(value) => evaluate(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(field(&f, "key")),
            Path((batch.clone(), step)),
            AppJson(EvaluateBody {
                value,
                password: Some(field(&f, "password").to_string()).filter(|p| !p.is_empty()),
                user_id: Some(field(&f, "user_id").trim().to_string()).filter(|u| !u.is_empty()),
            }),
        )
        .await
        .map(|_| ()),
    };
    let (status, mut ctx) = super::batch::context(&state, &ui, &batch).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t("batch_decision_recorded"));
            render(status, "batch.html", &ctx)
        }
        Err(e) => {
            match ctx["view"]
                .get_mut("decision_step")
                .and_then(Value::as_object_mut)
            {
                Some(form) => {
                    form.insert("typed".into(), json!(typed));
                    form.insert("error".into(), json!(form_error(&ui, &e)));
                }
                None => ctx["error"] = json!(form_error(&ui, &e)),
            }
            render(e.status, "batch.html", &ctx)
        }
    }
}

/// The form's fields: `csrf`, `key`, `batch`, `step`, and `lot.<material>` or
/// `result.<parameter>` (names from the recipe, so the form is read as a map).
type Fields = BTreeMap<String, String>;

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or("")
}

/// Starts the due step with the lots typed.
pub async fn start<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<Fields>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, field(&f, "csrf")) {
        return refused;
    }
    let batch = field(&f, "batch").trim().to_string();
    let step = field(&f, "step").trim().to_string();
    let lots: BTreeMap<String, String> = f
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("lot.")?.to_string(), v.trim().to_string())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let result = start_step(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(field(&f, "key")),
        Path((batch.clone(), step)),
        AppJson(StartStepBody { lots }),
    )
    .await;
    let (status, mut ctx) = super::batch::context(&state, &ui, &batch).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("batch_step_started"));
            render(status, "batch.html", &ctx)
        }
        Err(e) => {
            if let Some(form) = ctx["view"]
                .get_mut("start_step")
                .and_then(Value::as_object_mut)
            {
                keep_typed(form, "lots", "lot.", &f, &e, &ui);
            }
            render(e.status, "batch.html", &ctx)
        }
    }
}

/// Records the sampling step's results (every parameter of the step, as the API needs).
pub async fn results<B: cellops_ledger::Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    axum::Form(f): axum::Form<Fields>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, field(&f, "csrf")) {
        return refused;
    }
    let batch = field(&f, "batch").trim().to_string();
    let step = field(&f, "step").trim().to_string();
    let mut values = BTreeMap::new();
    let mut unreadable = None;
    for (k, v) in &f {
        let Some(parameter) = k.strip_prefix("result.") else {
            continue;
        };
        match super::order_forms::parse_cells(v) {
            Some(x) => {
                values.insert(parameter.to_string(), x);
            }
            None if unreadable.is_none() => {
                unreadable = Some(ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "not_a_number",
                    format!(
                        "{:?} is not a number: enter {parameter} as a number, e.g. 92.5 or 1.2e6",
                        v.trim()
                    ),
                ).field(k));
            }
            None => {}
        }
    }
    let result = match unreadable {
        Some(e) => Err(e),
        None => record_results(
            State(state.clone()),
            ui.caller.clone(),
            idempotency_headers(field(&f, "key")),
            Path((batch.clone(), step)),
            AppJson(ResultsBody { results: values }),
        )
        .await
        .map(|_| ()),
    };
    let (status, mut ctx) = super::batch::context(&state, &ui, &batch).await;
    match result {
        Ok(()) => {
            ctx["notice"] = json!(ui.t("batch_results_recorded"));
            render(status, "batch.html", &ctx)
        }
        Err(e) => {
            if let Some(form) = ctx["view"]
                .get_mut("sampling_step")
                .and_then(Value::as_object_mut)
            {
                keep_typed(form, "parameters", "result.", &f, &e, &ui);
            }
            render(e.status, "batch.html", &ctx)
        }
    }
}

/// Puts what was typed back into the form's rows (`rows` of the form view, each with an
/// `id` or `name` after `prefix`), the error at the row it names, else on the form.
fn keep_typed(
    form: &mut Map<String, Value>,
    rows: &str,
    prefix: &str,
    typed: &Fields,
    e: &ApiError,
    ui: &Ui,
) {
    // The API names a lot as `lots.<material>`; the form as `lot.<material>`.
    let named = e.field.as_deref().map(|f| {
        f.strip_prefix("lots.")
            .map(|m| format!("lot.{m}"))
            .unwrap_or_else(|| f.to_string())
    });
    let mut placed = false;
    if let Some(Value::Array(list)) = form.get_mut(rows) {
        for row in list.iter_mut() {
            let key = row["id"]
                .as_str()
                .or_else(|| row["name"].as_str())
                .unwrap_or("")
                .to_string();
            let name = format!("{prefix}{key}");
            if let Some(v) = typed.get(&name) {
                row["value"] = json!(v);
            }
            if named.as_deref() == Some(name.as_str()) {
                row["error"] = json!(form_error(ui, e));
                placed = true;
            }
        }
    }
    if !placed {
        form.insert("error".into(), json!(form_error(ui, e)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_written_for_people() {
        assert_eq!(limit_text(85.0), "85");
        assert_eq!(limit_text(2.5), "2.5");
        assert_eq!(limit_text(5.0e9), "5.0 × 10⁹");
    }
}
