//! QC: the queue of batches registered for QC at the current site (tests with a current
//! result out of the specification's tests, failures, release status), and one batch's
//! tests with their criteria and current results, with the result entry form. Results are
//! entered through the QC API (`POST /api/batches/{batch}/results`), which checks the
//! method, the analyst's qualification and evaluates pass/fail.

use super::{Ui, error_message, form_key, idempotency_headers, render};
use crate::json::AppJson;
use crate::routes::qc::{QcModel, ResultBody, enter_result};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cellops_domain::Role;
use cellops_ledger::Backend;
use cellops_qc::{ReleaseTiming, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

/// Roles that see the QC screens.
pub(crate) const QC_SCREEN_ROLES: [Role; 4] = [
    Role::QcAnalyst,
    Role::QaReviewer,
    Role::QaReleaser,
    Role::Auditor,
];
/// Batches at the current site for the home page: `(batch, results missing, out of
/// specification, released)`.
pub(crate) fn site_batches<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
) -> Vec<(String, usize, usize, bool)> {
    let site = ui.site_text();
    state.read_model(|m: &mut QcModel| {
        m.batches()
            .filter(|b| b.site == site)
            .take(QUEUE_BATCHES_MAX)
            .map(|b| {
                let tests: Vec<String> = m
                    .specs()
                    .get(&b.product, &b.spec_version)
                    .map(|s| s.tests().iter().map(|t| t.id.clone()).collect())
                    .unwrap_or_default();
                let missing = tests
                    .iter()
                    .filter(|t| b.results.current(t).is_none())
                    .count();
                let failed = tests
                    .iter()
                    .filter(|t| {
                        b.results
                            .current(t)
                            .is_some_and(|r| matches!(r.verdict, Verdict::Fail { .. }))
                    })
                    .count();
                (
                    b.batch.clone(),
                    missing,
                    failed,
                    b.signed_decision().is_some(),
                )
            })
            .collect()
    })
}

/// Batches listed in the queue.
const QUEUE_BATCHES_MAX: usize = 200;

#[derive(Deserialize)]
pub struct QcQuery {
    #[serde(default)]
    pub batch: String,
}

fn status_key(status: &Value) -> String {
    format!(
        "release_status_{}",
        status["status"].as_str().unwrap_or("not_released")
    )
}

/// The queue: batches at the current site, those with missing results first.
fn queue<B: Backend>(state: &AppState<B>, ui: &Ui) -> Vec<Value> {
    let site = ui.site_text();
    let mut rows: Vec<(usize, Value)> = state.read_model(|m: &mut QcModel| {
        m.batches()
            .filter(|b| b.site == site)
            .take(QUEUE_BATCHES_MAX)
            .map(|b| {
                let tests = m
                    .specs()
                    .get(&b.product, &b.spec_version)
                    .map(|s| s.tests().iter().map(|t| t.id.clone()).collect::<Vec<_>>())
                    .unwrap_or_default();
                let done = tests
                    .iter()
                    .filter(|t| b.results.current(t).is_some())
                    .count();
                let failed = tests
                    .iter()
                    .filter(|t| {
                        b.results
                            .current(t)
                            .is_some_and(|r| matches!(r.verdict, Verdict::Fail { .. }))
                    })
                    .count();
                let status = serde_json::to_value(m.release_status(&b.batch)).unwrap_or_default();
                (
                    tests.len() - done,
                    json!({
                        "batch": b.batch, "product": b.product,
                        "done": ui.lang.format_count(done as u64),
                        "total": ui.lang.format_count(tests.len() as u64),
                        "failed": failed,
                        "status": ui.t(&status_key(&status)),
                    }),
                )
            })
            .collect()
    });
    rows.sort_by_key(|(missing, _)| std::cmp::Reverse(*missing));
    rows.into_iter().map(|(_, v)| v).collect()
}

/// One batch: each specification test with its criterion and current result.
fn batch_view<B: Backend>(state: &AppState<B>, ui: &Ui, batch: &str) -> Option<Value> {
    state.read_model(|m: &mut QcModel| {
        let b = m.batch(batch)?;
        if ui.site.as_ref().map(|s| s.as_str()) != Some(b.site.as_str()) {
            return None;
        }
        let spec = m.specs().get(&b.product, &b.spec_version).ok()?;
        let tests: Vec<Value> = spec
            .tests()
            .iter()
            .map(|t| {
                let current = b.results.current(&t.id).map(|r| {
                    let (pass, reason) = match &r.verdict {
                        Verdict::Pass => (true, String::new()),
                        Verdict::Fail { reason } => (false, reason.clone()),
                    };
                    json!({
                        "value": r.value.text(), "pass": pass, "reason": reason,
                        "analyst": r.analyst, "at": ui.format_time(r.recorded_at),
                        "seq": r.seq,
                    })
                });
                json!({
                    "id": t.id, "name": t.name, "method": t.method, "method_name": t.method_name,
                    "criterion": t.criterion_display(),
                    "may_follow": matches!(t.release, ReleaseTiming::MayFollow),
                    "current": current,
                })
            })
            .collect();
        let status = serde_json::to_value(m.release_status(batch)).unwrap_or_default();
        Some(json!({
            "batch": b.batch, "product": b.product, "spec": spec.key(),
            "units": b.units, "tests": tests, "status": ui.t(&status_key(&status)),
        }))
    })
}

async fn context<B: Backend>(state: &AppState<B>, ui: &Ui, batch: &str) -> (StatusCode, Value) {
    let mut ctx = ui.context("/ui/qc", "qc_title");
    ctx["batch"] = json!(batch);
    ctx["key"] = json!(form_key(state));
    ctx["may_enter"] = json!(ui.has_any(&[Role::QcAnalyst]));
    ctx["view"] = Value::Null;
    ctx["queue"] = Value::Null;
    ctx["register"] = Value::Null;
    if let Err(e) = state.sync().await {
        ctx["error"] = json!(error_message(ui.lang, &e));
        return (e.status, ctx);
    }
    if batch.is_empty() {
        ctx["queue"] = json!(queue(state, ui));
        return (StatusCode::OK, ctx);
    }
    ctx["back"] = json!(format!("/ui/qc?batch={batch}"));
    match batch_view(state, ui, batch) {
        Some(v) => {
            ctx["view"] = v;
            (StatusCode::OK, ctx)
        }
        None => match register_view(state, ui, batch, None) {
            // A batch made at the site but not registered yet: the analyst registers it.
            Some(form) => {
                ctx["register"] = form;
                (StatusCode::OK, ctx)
            }
            None => {
                ctx["error"] = json!(format!("{}: {batch}", ui.t("error_not_found")));
                (StatusCode::NOT_FOUND, ctx)
            }
        },
    }
}

#[derive(Deserialize, serde::Serialize, Clone, Default)]
pub struct RegisterForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub batch: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub spec_version: String,
    #[serde(default)]
    pub recipe_version: String,
    /// Product units (DIN-product code), one per line.
    #[serde(default)]
    pub units: String,
}

/// The registration form for a batch the batch read model knows at a site where the user
/// is a QC analyst and QC does not have yet: product, recipe version and harvested units
/// from the batch, specification version 1 (or what was typed, with the refusal).
fn register_view<B: Backend>(
    state: &AppState<B>,
    ui: &Ui,
    batch: &str,
    typed: Option<(&RegisterForm, String)>,
) -> Option<Value> {
    let (site, form) = state.read_model(|m: &mut crate::routes::batch::BatchModel| {
        let b = m.batch(batch)?;
        Some((
            b.opened.site.clone(),
            RegisterForm {
                batch: batch.to_string(),
                product: b.opened.product.clone(),
                spec_version: "1".into(),
                recipe_version: b.opened.recipe_version.clone(),
                units: b.harvested_units.join("\n"),
                ..RegisterForm::default()
            },
        ))
    })?;
    let site = cellops_domain::SiteId::parse(&site).ok()?;
    if !ui.caller.user.has_role(Role::QcAnalyst, &site) {
        return None;
    }
    let (values, error) = match typed {
        Some((f, e)) => (f.clone(), Some(e)),
        None => (form, None),
    };
    Some(json!({"site": site.as_str(), "values": values, "error": error}))
}

/// Registers the batch for QC through the QC API, then shows its tests.
pub async fn register_submit<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let site = state
        .read_model(|m: &mut crate::routes::batch::BatchModel| {
            m.batch(&batch).map(|b| b.opened.site.clone())
        })
        .unwrap_or_else(|| ui.site_text());
    let result = crate::routes::qc::register(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path(batch.clone()),
        AppJson(crate::routes::qc::RegisterBody {
            site,
            product: form.product.trim().to_string(),
            spec_version: form.spec_version.trim().to_string(),
            recipe_version: form.recipe_version.trim().to_string(),
            units: form
                .units
                .lines()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
        }),
    )
    .await;
    let (status, mut ctx) = context(&state, &ui, &batch).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("qc_registered"));
            render(status, "qc.html", &ctx)
        }
        Err(e) => {
            let message = error_message(ui.lang, &e);
            match register_view(&state, &ui, &batch, Some((&form, message.clone()))) {
                Some(view) => ctx["register"] = view,
                None => ctx["error"] = json!(message),
            }
            render(e.status, "qc.html", &ctx)
        }
    }
}

pub async fn page<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    Query(q): Query<QcQuery>,
) -> Response {
    let (status, ctx) = context(&state, &ui, q.batch.trim()).await;
    render(status, "qc.html", &ctx)
}

#[derive(Deserialize)]
pub struct ResultForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub key: String,
    pub batch: String,
    pub test: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub instrument: String,
}

/// Enters a result: the method is the specification's for the chosen test; a number goes
/// with its unit, anything else is a qualitative outcome.
pub async fn enter<B: Backend>(
    State(state): State<AppState<B>>,
    ui: Ui,
    headers: HeaderMap,
    Form(form): Form<ResultForm>,
) -> Response {
    if let Some(refused) = ui.csrf_refusal(&headers, &form.csrf) {
        return refused;
    }
    let batch = form.batch.trim().to_string();
    let method = batch_view(&state, &ui, &batch)
        .and_then(|v| {
            v["tests"]
                .as_array()?
                .iter()
                .find(|t| t["id"] == json!(form.test))
                .and_then(|t| t["method"].as_str().map(str::to_string))
        })
        .unwrap_or_default();
    let value = form.value.trim().replace(',', "");
    let (value, outcome) = match value.parse::<f64>() {
        Ok(v) if !value.is_empty() => (Some(v), None),
        _ => (
            None,
            Some(form.outcome.trim().to_string()).filter(|o| !o.is_empty()),
        ),
    };
    let body = ResultBody {
        test: form.test.clone(),
        value,
        unit: Some(form.unit.trim().to_string()).filter(|u| !u.is_empty()),
        outcome,
        method,
        instrument: form.instrument.trim().to_string(),
        sample: None,
    };
    let result = enter_result(
        State(state.clone()),
        ui.caller.clone(),
        idempotency_headers(&form.key),
        Path(batch.clone()),
        AppJson(body),
    )
    .await;
    let (status, mut ctx) = context(&state, &ui, &batch).await;
    match result {
        Ok(_) => {
            ctx["notice"] = json!(ui.t("qc_recorded"));
            render(status, "qc.html", &ctx)
        }
        Err(e) => {
            ctx["error"] = json!(error_message(ui.lang, &e));
            render(e.status, "qc.html", &ctx)
        }
    }
}
