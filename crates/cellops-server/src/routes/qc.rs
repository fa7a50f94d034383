//! QC and release over HTTP: batches registered for QC with their specification, the sample
//! plan from the recipe, samples as child units, results entered by QC analysts (value, unit,
//! method, instrument) with automatic pass/fail, OOS investigations, corrections that never
//! overwrite, the certificate of analysis as PDF, the release page, release and release at
//! risk as e-signatures, and alerts when a released batch later fails a test.
//!
//! The decisions are `cellops-qc`'s; this module checks who may ask, records the decided
//! facts, and serves the read model ([`QcModel`]). Signatures go through the one e-signature
//! path, [`super::ledger::sign`].

mod model;

pub use model::{
    AcknowledgedPayload, AlertPayload, AtRiskPayload, DecisionPayload,
    InvestigationConcludedPayload, InvestigationOpenedPayload, NotificationPayload, QcBatch,
    QcModel, RegisteredPayload, ResultPayload, SamplePayload,
};

use super::ledger::SignBody;
use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, idempotency_key};
use crate::openapi::RouteDoc;
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellops_custody::{ChildUnit, Derivation, Derive, LocationId, UnitCode, decide_derive};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Stream, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord};
use cellops_qc::release::{TEXT_CHARS_MAX, check_justification};
use cellops_qc::{
    EnteredValue, InvestigationState, LabelFacts, ProcessFacts, QcError, Readiness, ReleaseKind,
    SpecCatalog, Specification, Verdict, check_release, evaluate, sample_plan,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const fn ev(name: &'static str, description: &'static str) -> EventType {
    EventType {
        name,
        version: 1,
        description,
    }
}

/// The ledger event types of this module.
pub const EVENT_TYPES: &[EventType] = &[
    ev(
        "qc.batch.registered",
        "a batch was registered for QC with its specification and product units",
    ),
    ev(
        "qc.sample.registered",
        "a QC sample (a child unit) was taken for planned tests",
    ),
    ev(
        "qc.result.recorded",
        "a QC result with unit, method, instrument and its pass/fail verdict",
    ),
    ev(
        "qc.result.corrected",
        "a QC result was corrected by a new result (corrects, reason)",
    ),
    ev(
        "qc.investigation.opened",
        "an out-of-specification result opened an investigation",
    ),
    ev(
        "qc.investigation.concluded",
        "QA concluded an OOS investigation: confirmed or invalidated",
    ),
    ev(
        "qc.at_risk.requested",
        "QA requested release at risk: pending tests, clinical justification, physician",
    ),
    ev(
        "qc.at_risk.acknowledged",
        "the treating physician acknowledged a release at risk (e-signed Reviewed)",
    ),
    ev(
        "qc.release.decided",
        "QA's release decision, e-signed with meaning Released",
    ),
    ev(
        "qc.alert.raised",
        "a released batch failed a test afterwards",
    ),
    ev(
        "qc.notification.recorded",
        "a notification of a QC alert to a named person",
    ),
];

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "get",
        "/api/qc/specifications",
        "Release specifications known to the server",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{batch}/qc",
        "Register a batch for QC with its specification, recipe version and product units",
        true,
        &["site", "product", "spec_version", "recipe_version", "units"],
    ),
    (
        "get",
        "/api/batches/{batch}/qc",
        "The batch's QC record: results, investigations, samples, decisions, alerts",
        true,
        &[],
    ),
    (
        "get",
        "/api/batches/{batch}/sample-plan",
        "The sample plan generated from the recipe and specification",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{batch}/samples",
        "Take a planned QC sample as a child unit of a product unit",
        true,
        &["planned", "parent", "code", "expires_at", "location"],
    ),
    (
        "post",
        "/api/batches/{batch}/results",
        "Enter a QC result (qc_analyst): value and unit or outcome, method, instrument; pass/fail is automatic",
        true,
        &[
            "test",
            "value",
            "unit",
            "outcome",
            "method",
            "instrument",
            "sample",
        ],
    ),
    (
        "post",
        "/api/qc/results/{seq}/corrections",
        "Correct a result: a new result that supersedes it, with a reason",
        true,
        &["value", "unit", "outcome", "instrument", "reason"],
    ),
    (
        "post",
        "/api/qc/investigations/{id}/conclusion",
        "Conclude an OOS investigation as confirmed_oos or invalidated (QA)",
        true,
        &["conclusion", "summary"],
    ),
    (
        "get",
        "/api/batches/{batch}/release-readiness",
        "Everything missing or exceptional before release, each blocker explained",
        true,
        &[],
    ),
    (
        "get",
        "/api/batches/{batch}/release-status",
        "Is the batch released (or released at risk) now",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{batch}/release-at-risk",
        "Request release at risk: pending tests, clinical justification, treating physician (QA)",
        true,
        &["pending_tests", "clinical_justification", "physician"],
    ),
    (
        "post",
        "/api/batches/{batch}/release-at-risk/{seq}/acknowledgement",
        "The treating physician acknowledges a release at risk (e-signature Reviewed)",
        true,
        &["site", "statement", "password", "user_id"],
    ),
    (
        "post",
        "/api/batches/{batch}/release",
        "Release the batch: e-signature with meaning Released (qa_releaser); at risk with at_risk_request",
        true,
        &["password", "user_id", "at_risk_request"],
    ),
    (
        "get",
        "/api/batches/{batch}/coa",
        "Certificate of analysis as PDF, generated from the record",
        true,
        &[],
    ),
    (
        "get",
        "/api/qc/alerts",
        "QC alerts and notifications at your sites",
        true,
        &[],
    ),
];

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/qc/specifications", get(specifications::<B>))
        .route(
            "/api/batches/{batch}/qc",
            post(register::<B>).get(batch_view::<B>),
        )
        .route("/api/batches/{batch}/sample-plan", get(plan::<B>))
        .route("/api/batches/{batch}/samples", post(take_sample::<B>))
        .route("/api/batches/{batch}/results", post(enter_result::<B>))
        .route(
            "/api/qc/results/{seq}/corrections",
            post(correct_result::<B>),
        )
        .route(
            "/api/qc/investigations/{id}/conclusion",
            post(conclude::<B>),
        )
        .route(
            "/api/batches/{batch}/release-readiness",
            get(readiness::<B>),
        )
        .route("/api/batches/{batch}/release-status", get(status::<B>))
        .route(
            "/api/batches/{batch}/release-at-risk",
            post(request_at_risk::<B>),
        )
        .route(
            "/api/batches/{batch}/release-at-risk/{seq}/acknowledgement",
            post(acknowledge::<B>),
        )
        .route("/api/batches/{batch}/release", post(release::<B>))
        .route("/api/batches/{batch}/coa", get(coa::<B>))
        .route("/api/qc/alerts", get(alerts::<B>))
}

/// The read model with the shipped specifications.
pub fn projection() -> QcModel {
    // Cannot fail: the `every_shipped_spec_validates...` test of cellops-qc parses them.
    QcModel::new(SpecCatalog::shipped().expect("shipped specifications are valid"))
}

impl From<QcError> for ApiError {
    fn from(e: QcError) -> ApiError {
        let field = match &e {
            QcError::UnitMissing { .. }
            | QcError::UnitUnknown { .. }
            | QcError::UnitMismatch { .. } => "unit",
            QcError::NotFinite { .. } | QcError::OutsidePhysicalRange { .. } => "value",
            QcError::WrongKind { .. } | QcError::UnknownOutcome { .. } => "outcome",
            QcError::UnknownTest { .. } => "test",
            QcError::SpecNotFound { .. } => "spec_version",
            QcError::PlanRecipeVersion { .. } => "recipe_version",
            QcError::PlanProductMismatch { .. } => "product",
            _ => "body",
        };
        ApiError::bad_request(field, e.to_string())
    }
}

const QC_ROLES: [Role; 3] = [Role::QcAnalyst, Role::QaReviewer, Role::QaReleaser];
const QA_ROLES: [Role; 2] = [Role::QaReviewer, Role::QaReleaser];

fn stream_of(batch: &str) -> ApiResult<String> {
    let stream = format!("qc/{batch}");
    Stream::parse(&stream).map_err(|e| ApiError::bad_request("batch", e.to_string()))?;
    Ok(stream)
}

fn record(
    stream: &str,
    event_type: &str,
    payload: &impl Serialize,
    actor: &str,
    site: &str,
) -> NewRecord {
    // Cannot fail: the payloads are plain structs of strings, numbers and lists.
    let payload = serde_json::to_value(payload).expect("QC payloads serialize");
    NewRecord::new(stream, event_type, 1, payload, actor, site)
}

/// The batch's QC record, or 404 saying how to register it; the caller must have a role at
/// its site.
async fn qc_batch<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    batch: &str,
) -> ApiResult<(QcBatch, SiteId)> {
    state.sync().await?;
    let b = state
        .read_model(|m: &mut QcModel| m.batch(batch).cloned())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "batch {batch} is not registered for QC: POST /api/batches/{batch}/qc first"
            ))
        })?;
    let site = SiteId::parse(&b.site).map_err(ApiError::internal)?;
    caller.require_site(&site)?;
    Ok((b, site))
}

fn spec_of<B: Backend>(state: &AppState<B>, b: &QcBatch) -> ApiResult<Specification> {
    state.read_model(|m: &mut QcModel| {
        m.specs()
            .get(&b.product, &b.spec_version)
            .cloned()
            .map_err(ApiError::from)
    })
}

/// Refuses (403, recorded by the training module) unless the caller holds, now, the
/// qualification the site's matrix names for `action` (`qc.result.<method>`, `release.sign`).
async fn require_qualified<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    site: &SiteId,
    action: &str,
) -> ApiResult<()> {
    let user = UserId::parse(&caller.user.id).map_err(ApiError::internal)?;
    super::training::require_qualified(state, &user, site, action, state.clock.now()).await
}

fn text(field: &str, value: &str) -> ApiResult<String> {
    let chars = value.trim().chars().count();
    if chars == 0 || chars > TEXT_CHARS_MAX {
        return Err(ApiError::bad_request(
            field,
            format!("write 1 to {TEXT_CHARS_MAX} characters"),
        ));
    }
    Ok(value.trim().to_string())
}

pub async fn specifications<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
) -> Json<Value> {
    let specs = state.read_model(|m: &mut QcModel| {
        serde_json::to_value(m.specs().specs()).unwrap_or(Value::Null)
    });
    Json(json!({ "specifications": specs }))
}

#[derive(Deserialize)]
pub struct RegisterBody {
    pub site: String,
    pub product: String,
    pub spec_version: String,
    pub recipe_version: String,
    /// Final product units (DIN + product code), registered custody units.
    pub units: Vec<String>,
}

/// Most product units in one batch (an allogeneic lot's doses included).
pub const BATCH_UNITS_MAX: usize = 1_000;

/// Registers a batch for QC: the specification must exist for the product and version and
/// cover the recipe version (the sample plan must build), and every unit must be known.
pub async fn register<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(batch): Path<String>,
    AppJson(body): AppJson<RegisterBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&QC_ROLES, &site)?;
    let stream = stream_of(&batch)?;
    if body.units.len() > BATCH_UNITS_MAX {
        return Err(ApiError::bad_request(
            "units",
            format!("at most {BATCH_UNITS_MAX} units"),
        ));
    }
    state.sync().await?;
    let spec = state.read_model(|m: &mut QcModel| {
        if m.batch(&batch).is_some() {
            return Err(ApiError::conflict(format!(
                "batch {batch} is already registered for QC"
            )));
        }
        m.specs()
            .get(&body.product, &body.spec_version)
            .cloned()
            .map_err(ApiError::from)
    })?;
    let recipe = shipped_recipe(&body.product, &body.recipe_version)?;
    sample_plan(&spec, &recipe)?;
    let mut units = Vec::with_capacity(body.units.len());
    for (i, u) in body.units.iter().enumerate() {
        let code =
            UnitCode::parse(u).map_err(|e| ApiError::from(e).field(&format!("units[{i}]")))?;
        if state
            .custody
            .lock()
            .expect("custody lock")
            .unit(&code)
            .is_none()
        {
            return Err(ApiError::bad_request(
                &format!("units[{i}]"),
                format!("unit {code} is not registered (POST /api/units first)"),
            ));
        }
        units.push(code.to_string());
    }
    let payload = RegisteredPayload {
        batch: batch.clone(),
        product: body.product,
        spec_version: body.spec_version,
        recipe_version: body.recipe_version,
        units,
    };
    let out = state
        .append(
            vec![record(
                &stream,
                "qc.batch.registered",
                &payload,
                &caller.user.id,
                site.as_str(),
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "batch": batch, "seq": out.records[0].seq, "spec": spec.key() }),
    ))
}

/// The shipped recipe of `product` at `version`.
fn shipped_recipe(product: &str, version: &str) -> ApiResult<cellops_process::Recipe> {
    let recipes = cellops_process::shipped::shipped_recipes().map_err(ApiError::internal)?;
    recipes
        .into_iter()
        .find(|r| r.product() == product && r.version().to_string() == version)
        .ok_or_else(|| {
            ApiError::bad_request(
                "recipe_version",
                format!("no recipe {product} version {version} is known"),
            )
        })
}

pub async fn batch_view<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _) = qc_batch(&state, &caller, &batch).await?;
    let status = state.read_model(|m: &mut QcModel| m.release_status(&batch));
    Ok(Json(json!({ "qc": b, "release_status": status })))
}

pub async fn plan<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _) = qc_batch(&state, &caller, &batch).await?;
    let spec = spec_of(&state, &b)?;
    let recipe = shipped_recipe(&b.product, &b.recipe_version)?;
    let plan = sample_plan(&spec, &recipe)?;
    let taken: Vec<&str> = b.samples.iter().map(|s| s.planned.as_str()).collect();
    Ok(Json(json!({ "plan": plan, "taken": taken })))
}

#[derive(Deserialize)]
pub struct SampleBody {
    /// The planned sample (`qc-<step>` from the sample plan).
    pub planned: String,
    /// The product unit the sample is drawn from.
    pub parent: String,
    /// The sample's own code (same DIN, its own product/division code).
    pub code: String,
    pub expires_at: Timestamp,
    pub location: String,
}

/// Takes a planned sample as a child unit of `parent` (custody derivation `sample`, so a
/// trace of the product finds its samples) and records which tests it feeds.
pub async fn take_sample<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(batch): Path<String>,
    AppJson(body): AppJson<SampleBody>,
) -> ApiResult<Json<Value>> {
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&[Role::QcAnalyst, Role::Operator], &site)?;
    let spec = spec_of(&state, &b)?;
    let recipe = shipped_recipe(&b.product, &b.recipe_version)?;
    let plan = sample_plan(&spec, &recipe)?;
    let planned = plan.sample(&body.planned).ok_or_else(|| {
        let ids: Vec<&str> = plan.release_samples.iter().map(|s| s.id.as_str()).collect();
        ApiError::bad_request(
            "planned",
            format!(
                "{:?} is not in the sample plan ({})",
                body.planned,
                ids.join(", ")
            ),
        )
    })?;
    let parent = UnitCode::parse(&body.parent).map_err(|e| ApiError::from(e).field("parent"))?;
    if !b.units.contains(&parent.to_string()) {
        return Err(ApiError::bad_request(
            "parent",
            format!(
                "unit {parent} is not a product unit of batch {batch} ({})",
                b.units.join(", ")
            ),
        ));
    }
    let code = UnitCode::parse(&body.code).map_err(|e| ApiError::from(e).field("code"))?;
    let location =
        LocationId::parse(&body.location).map_err(|e| ApiError::from(e).field("location"))?;
    let user = UserId::parse(&caller.user.id).map_err(ApiError::internal)?;
    let command = Derive {
        operation: Derivation::Sample,
        parents: vec![parent],
        children: vec![ChildUnit {
            code,
            expires_at: body.expires_at,
        }],
        reagent_lots: vec![],
        site: site.clone(),
        location,
        by: user,
        at: state.clock.now(),
    };
    let events = decide_derive(&state.custody.lock().expect("custody lock"), &command)?;
    // The derivation goes on the parent's custody stream, as custody's own derive does.
    let unit_stream = format!("unit/{}", parent.to_string().to_ascii_lowercase());
    let mut records: Vec<NewRecord> = events
        .iter()
        .map(|e| {
            let payload: Value =
                serde_json::from_str(&e.to_json()).expect("custody events serialize to JSON");
            NewRecord::new(
                &unit_stream,
                e.type_name(),
                1,
                payload,
                &caller.user.id,
                site.as_str(),
            )
        })
        .collect();
    let payload = SamplePayload {
        batch: batch.clone(),
        sample: code.to_string(),
        parent: parent.to_string(),
        planned: planned.id.clone(),
        tests: planned.tests.clone(),
    };
    records.push(record(
        &stream_of(&batch)?,
        "qc.sample.registered",
        &payload,
        &caller.user.id,
        site.as_str(),
    ));
    let out = state.append(records, idempotency_key(&headers)).await?;
    Ok(Json(json!({
        "sample": code.to_string(),
        "tests": planned.tests,
        "seq": out.records.last().map(|r| r.seq),
    })))
}

#[derive(Deserialize)]
pub struct ResultBody {
    pub test: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub outcome: Option<String>,
    /// The method used; must be the specification's validated method.
    pub method: String,
    pub instrument: String,
    /// The sample unit measured, if registered.
    pub sample: Option<String>,
}

fn entered(
    value: Option<f64>,
    unit: Option<String>,
    outcome: Option<String>,
) -> ApiResult<EnteredValue> {
    match (value, outcome) {
        (Some(value), None) => Ok(EnteredValue::Number { value, unit }),
        (None, Some(outcome)) => Ok(EnteredValue::Outcome(outcome)),
        _ => Err(ApiError::bad_request(
            "value",
            "give either `value` with `unit` (numeric tests) or `outcome` (qualitative tests)",
        )),
    }
}

/// Enters a result: checked against the specification (units, method), recorded with its
/// verdict; a failing result opens an OOS investigation, and on a released batch raises an
/// alert with recorded notifications.
pub async fn enter_result<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(batch): Path<String>,
    AppJson(body): AppJson<ResultBody>,
) -> ApiResult<Json<Value>> {
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&[Role::QcAnalyst], &site)?;
    let spec = spec_of(&state, &b)?;
    let test = spec.test(&body.test)?;
    if body.method != test.method {
        return Err(ApiError::bad_request(
            "method",
            format!(
                "test {} uses the validated method {} ({}), not {:?}",
                test.id, test.method, test.method_name, body.method
            ),
        ));
    }
    let instrument = text("instrument", &body.instrument)?;
    require_qualified(
        &state,
        &caller,
        &site,
        &format!("qc.result.{}", test.method),
    )
    .await?;
    if let Some(sample) = &body.sample
        && !b
            .samples
            .iter()
            .any(|s| &s.code == sample && s.tests.contains(&test.id))
    {
        return Err(ApiError::bad_request(
            "sample",
            format!(
                "{sample} is not a registered sample of batch {batch} for test {}",
                test.id
            ),
        ));
    }
    let (value, verdict) = evaluate(test, &entered(body.value, body.unit, body.outcome)?)?;
    let payload = ResultPayload {
        batch: batch.clone(),
        spec: spec.key(),
        test: test.id.clone(),
        sample: body.sample,
        value,
        verdict,
        method: test.method.clone(),
        instrument,
    };
    let rec = record(
        &stream_of(&batch)?,
        "qc.result.recorded",
        &payload,
        &caller.user.id,
        site.as_str(),
    );
    record_result(&state, &caller, &headers, &b, rec, payload).await
}

/// Appends a result (or correction), then its investigation and, on a released batch, the
/// alert and notifications.
async fn record_result<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    headers: &HeaderMap,
    b: &QcBatch,
    rec: NewRecord,
    payload: ResultPayload,
) -> ApiResult<Json<Value>> {
    let out = state.append(vec![rec], idempotency_key(headers)).await?;
    let seq = out.records[0].seq;
    let mut follow_up = Vec::new();
    let stream = stream_of(&b.batch)?;
    if let Verdict::Fail { reason } = &payload.verdict
        && !out.replayed
    {
        let investigation = cellops_qc::results::investigation_id(seq);
        let opened = InvestigationOpenedPayload {
            batch: b.batch.clone(),
            investigation: investigation.clone(),
            result_seq: seq,
            test: payload.test.clone(),
            reason: reason.clone(),
        };
        follow_up.push(record(
            &stream,
            "qc.investigation.opened",
            &opened,
            "system",
            &b.site,
        ));
        let decision = b.signed_decision();
        if let Some(d) = decision {
            follow_up.extend(alert_records(state, b, d, seq, &payload.test, reason)?);
        }
        state.append(follow_up, None).await?;
    }
    let status = state.read_model(|m: &mut QcModel| m.release_status(&b.batch));
    Ok(Json(json!({
        "seq": seq,
        "test": payload.test,
        "value": payload.value,
        "verdict": payload.verdict,
        "investigation": (!payload.verdict.is_pass()).then(|| cellops_qc::results::investigation_id(seq)),
        "release_status": status,
        "by": caller.user.id,
    })))
}

/// The alert of a failure after release and one notification per person who must act: the
/// treating physician of an at-risk release (at the physician's site) and the QA releaser
/// who signed.
fn alert_records<B: Backend>(
    state: &AppState<B>,
    b: &QcBatch,
    decision: &model::Decision,
    result_seq: u64,
    test: &str,
    reason: &str,
) -> ApiResult<Vec<NewRecord>> {
    let stream = stream_of(&b.batch)?;
    let released = match decision.kind {
        ReleaseKind::Released => "released",
        ReleaseKind::ReleasedAtRisk { .. } => "released at risk",
    };
    let message = format!(
        "Batch {} was {released} (decision {}) and test {test} has now failed: {reason}. Do not use its units; QA and the treating physician must decide on recall and patient follow-up.",
        b.batch, decision.seq
    );
    let alert = AlertPayload {
        batch: b.batch.clone(),
        test: test.to_string(),
        result_seq,
        decision_seq: decision.seq,
        message: message.clone(),
    };
    let mut records = vec![record(
        &stream,
        "qc.alert.raised",
        &alert,
        "system",
        &b.site,
    )];
    let mut recipients: Vec<(String, &str, String)> = Vec::new();
    if let Some(q) = decision.at_risk_request.and_then(|s| b.at_risk_request(s)) {
        let physician_site = physician_site(state, &q.physician).unwrap_or_else(|| b.site.clone());
        recipients.push((q.physician.clone(), "treating_physician", physician_site));
    }
    if let Some(sig) = &decision.signature {
        recipients.push((sig.signer.clone(), "qa_releaser", b.site.clone()));
    }
    for (to, role, site) in recipients {
        let n = NotificationPayload {
            batch: b.batch.clone(),
            alert_result_seq: result_seq,
            to,
            role: role.to_string(),
            channel: "cellops-inbox".to_string(),
            message: message.clone(),
        };
        records.push(record(
            &stream,
            "qc.notification.recorded",
            &n,
            "system",
            &site,
        ));
    }
    Ok(records)
}

/// The site where `user` holds the physician role (the first, in site order).
fn physician_site<B: Backend>(state: &AppState<B>, user: &str) -> Option<String> {
    let accounts = state.accounts.lock().expect("accounts lock");
    accounts
        .user(user)?
        .roles
        .iter()
        .find(|(r, _)| *r == Role::Physician)
        .map(|(_, s)| s.as_str().to_string())
}

#[derive(Deserialize)]
pub struct CorrectionBody {
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub outcome: Option<String>,
    /// The instrument of the corrected value (defaults to the original's).
    pub instrument: Option<String>,
    pub reason: Option<String>,
}

/// Corrects a result: a new record that supersedes it (`corrects` + `reason`); the original
/// stays in the ledger and on the certificate's notes.
pub async fn correct_result<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(seq): Path<u64>,
    AppJson(body): AppJson<CorrectionBody>,
) -> ApiResult<Json<Value>> {
    let reason = text("reason", body.reason.as_deref().unwrap_or("")).map_err(|_| {
        ApiError::bad_request("reason", "a correction must say why the result was wrong")
    })?;
    state.sync().await?;
    let batch = state
        .read_model(|m: &mut QcModel| m.batch_of_result(seq).map(str::to_string))
        .ok_or_else(|| ApiError::not_found(format!("record {seq} is not a QC result")))?;
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&[Role::QcAnalyst], &site)?;
    let original = b
        .results
        .result(seq)
        .cloned()
        .ok_or_else(|| ApiError::internal("result index out of step"))?;
    if let Some(newer) = original.superseded_by {
        return Err(ApiError::conflict(format!(
            "result {seq} was already corrected by result {newer}: correct that one"
        ))
        .field("seq"));
    }
    let spec = spec_of(&state, &b)?;
    let test = spec.test(&original.test)?;
    require_qualified(
        &state,
        &caller,
        &site,
        &format!("qc.result.{}", test.method),
    )
    .await?;
    let (value, verdict) = evaluate(test, &entered(body.value, body.unit, body.outcome)?)?;
    let instrument = match body.instrument {
        Some(i) => text("instrument", &i)?,
        None => original.instrument.clone(),
    };
    let payload = ResultPayload {
        batch: batch.clone(),
        spec: spec.key(),
        test: test.id.clone(),
        sample: original.sample.clone(),
        value,
        verdict,
        method: test.method.clone(),
        instrument,
    };
    let mut rec = record(
        &stream_of(&batch)?,
        "qc.result.corrected",
        &payload,
        &caller.user.id,
        site.as_str(),
    );
    rec.corrects = Some(seq);
    rec.reason = Some(reason);
    record_result(&state, &caller, &headers, &b, rec, payload).await
}

#[derive(Deserialize)]
pub struct ConclusionBody {
    /// `confirmed_oos` (the result stands) or `invalidated` (laboratory error; retest).
    pub conclusion: InvestigationState,
    pub summary: String,
}

/// QA concludes an OOS investigation.
pub async fn conclude<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<ConclusionBody>,
) -> ApiResult<Json<Value>> {
    if body.conclusion == InvestigationState::Open {
        return Err(ApiError::bad_request(
            "conclusion",
            "use confirmed_oos or invalidated",
        ));
    }
    let summary = text("summary", &body.summary)?;
    state.sync().await?;
    let batch = state
        .read_model(|m: &mut QcModel| m.batch_of_investigation(&id).map(str::to_string))
        .ok_or_else(|| ApiError::not_found(format!("no investigation {id}")))?;
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&QA_ROLES, &site)?;
    let inv = b
        .results
        .investigation(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no investigation {id}")))?;
    if inv.state != InvestigationState::Open {
        return Err(ApiError::conflict(format!(
            "investigation {id} is already concluded"
        )));
    }
    let payload = InvestigationConcludedPayload {
        batch: batch.clone(),
        investigation: id.clone(),
        conclusion: body.conclusion,
        summary,
    };
    let out = state
        .append(
            vec![record(
                &stream_of(&batch)?,
                "qc.investigation.concluded",
                &payload,
                &caller.user.id,
                site.as_str(),
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "investigation": id, "conclusion": body.conclusion, "seq": out.records[0].seq }),
    ))
}

/// Label reconciliation of the batch from the labels read model.
fn label_facts<B: Backend>(state: &AppState<B>, batch: &str) -> LabelFacts {
    match state.labels.lock().expect("labels lock").batch(batch) {
        None => LabelFacts::NonePrinted,
        Some(l) => LabelFacts::Counts {
            printed: l.printed,
            applied: l.applied,
            destroyed: l.destroyed,
        },
    }
}

/// Release readiness of a batch from every input (pure `cellops_qc::release_readiness`),
/// each from the read model that owns it: results (`QcModel`), the batch record's blockers
/// (`BatchModel`), the excursions of its units and their deviations (`ColdModel`), labels.
fn readiness_of<B: Backend>(state: &AppState<B>, b: &QcBatch) -> ApiResult<Readiness> {
    let labels = label_facts(state, &b.batch);
    let process = state.read_model(|m: &mut super::batch::BatchModel| {
        m.release_blockers(&b.batch)
            .map_or(ProcessFacts::NotRecorded, ProcessFacts::Recorded)
    });
    let excursions =
        state.read_model(|m: &mut super::storage::ColdModel| m.excursion_facts(&b.units));
    state
        .read_model(|m: &mut QcModel| m.readiness(&b.batch, labels, &process, &excursions))
        .ok_or_else(|| ApiError::not_found(format!("batch {} is not registered for QC", b.batch)))?
        .map_err(ApiError::from)
}

/// The release page: blockers (each explained), exceptions, pending tests, at-risk requests
/// and the current status.
pub async fn readiness<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _) = qc_batch(&state, &caller, &batch).await?;
    let spec = spec_of(&state, &b)?;
    let r = readiness_of(&state, &b)?;
    let status = state.read_model(|m: &mut QcModel| m.release_status(&batch));
    Ok(Json(json!({
        "batch": batch,
        "spec": spec.key(),
        "release_status": status,
        "releasable": r.releasable(),
        "releasable_at_risk": r.releasable_at_risk(),
        "pending_tests": r.pending_tests(),
        "blockers": r.blockers,
        "exceptions": r.exceptions,
        "at_risk_requests": b.at_risk_requests,
    })))
}

pub async fn status<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, _) = qc_batch(&state, &caller, &batch).await?;
    let status = state.read_model(|m: &mut QcModel| m.release_status(&batch));
    Ok(Json(
        json!({ "batch": batch, "permits_use": status.permits_use(), "release_status": status }),
    ))
}

#[derive(Deserialize)]
pub struct AtRiskBody {
    pub pending_tests: Vec<String>,
    pub clinical_justification: String,
    /// The treating physician's user id (must hold the physician role somewhere).
    pub physician: String,
}

/// QA requests release at risk. Allowed only when every blocker is a result that may follow
/// release, and the request names exactly those tests.
pub async fn request_at_risk<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(batch): Path<String>,
    AppJson(body): AppJson<AtRiskBody>,
) -> ApiResult<Json<Value>> {
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&[Role::QaReleaser], &site)?;
    require_qualified(&state, &caller, &site, "release.sign").await?;
    check_justification(&body.clinical_justification)
        .map_err(|m| ApiError::bad_request("clinical_justification", m))?;
    if physician_site(&state, &body.physician).is_none() {
        return Err(ApiError::bad_request(
            "physician",
            format!(
                "{} holds no physician role: name the treating physician's user id",
                body.physician
            ),
        ));
    }
    let r = readiness_of(&state, &b)?;
    if !r.releasable_at_risk() {
        let why: Vec<String> = r
            .blockers
            .iter()
            .filter(|b| !b.at_risk_allowed)
            .map(|b| b.explanation.clone())
            .collect();
        return Err(ApiError::conflict(if why.is_empty() {
            "nothing is pending: release normally".to_string()
        } else {
            format!(
                "release at risk covers only results that may follow release; first resolve: {}",
                why.join("; ")
            )
        }));
    }
    let mut named = body.pending_tests.clone();
    named.sort();
    let mut pending = r.pending_tests();
    pending.sort();
    if named != pending {
        return Err(ApiError::bad_request(
            "pending_tests",
            format!("name exactly the pending tests {pending:?} (you named {named:?})"),
        ));
    }
    let payload = AtRiskPayload {
        batch: batch.clone(),
        pending_tests: pending,
        clinical_justification: body.clinical_justification.trim().to_string(),
        physician: body.physician,
    };
    let out = state
        .append(
            vec![record(
                &stream_of(&batch)?,
                "qc.at_risk.requested",
                &payload,
                &caller.user.id,
                site.as_str(),
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "request": out.records[0].seq, "pending_tests": payload.pending_tests }),
    ))
}

#[derive(Deserialize)]
pub struct AcknowledgeBody {
    /// The physician's site (the acknowledgement is recorded there).
    pub site: String,
    pub statement: String,
    pub password: String,
    pub user_id: Option<String>,
}

/// Idempotency key for one of several appends of a request.
fn headers_with_key(headers: &HeaderMap, suffix: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(key) = idempotency_key(headers)
        && let Ok(v) = HeaderValue::from_str(&format!("{key}:{suffix}"))
    {
        out.insert("idempotency-key", v);
    }
    out
}

/// The treating physician acknowledges the release at risk: a record at the physician's
/// site, e-signed with meaning Reviewed through the one signing path.
pub async fn acknowledge<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((batch, request_seq)): Path<(String, u64)>,
    AppJson(body): AppJson<AcknowledgeBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Physician], &site)?;
    let statement = text("statement", &body.statement)?;
    state.sync().await?;
    let request = state
        .read_model(|m: &mut QcModel| {
            m.batch(&batch)
                .and_then(|b| b.at_risk_request(request_seq).cloned())
        })
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no release-at-risk request {request_seq} for batch {batch}"
            ))
        })?;
    if request.physician != caller.user.id {
        return Err(ApiError::forbidden(format!(
            "request {request_seq} names {} as the treating physician; only they can acknowledge it",
            request.physician
        )));
    }
    if request.acknowledged.is_some() {
        return Err(ApiError::conflict(format!(
            "request {request_seq} is already acknowledged"
        )));
    }
    let payload = AcknowledgedPayload {
        batch: batch.clone(),
        request_seq,
        statement,
    };
    let out = state
        .append(
            vec![record(
                &stream_of(&batch)?,
                "qc.at_risk.acknowledged",
                &payload,
                &caller.user.id,
                site.as_str(),
            )],
            idempotency_key(&headers_with_key(&headers, "ack")),
        )
        .await?;
    let ack_seq = out.records[0].seq;
    let sig = super::ledger::sign(
        State(state.clone()),
        caller,
        headers_with_key(&headers, "ack-signature"),
        AppJson(SignBody {
            seq: ack_seq,
            meaning: "Reviewed".into(),
            password: body.password,
            user_id: body.user_id,
        }),
    )
    .await?;
    Ok(Json(
        json!({ "acknowledgement": ack_seq, "signature": sig.0 }),
    ))
}

#[derive(Deserialize)]
pub struct ReleaseBody {
    pub password: String,
    pub user_id: Option<String>,
    /// The acknowledged release-at-risk request, when results are pending.
    pub at_risk_request: Option<u64>,
}

/// Releases the batch: checks readiness (and the at-risk request), records the decision and
/// e-signs it with meaning Released through the one signing path. 409 lists every blocker.
pub async fn release<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(batch): Path<String>,
    AppJson(body): AppJson<ReleaseBody>,
) -> ApiResult<Response> {
    let (b, site) = qc_batch(&state, &caller, &batch).await?;
    caller.require(&[Role::QaReleaser], &site)?;
    require_qualified(&state, &caller, &site, "release.sign").await?;
    if let Some(d) = b.signed_decision() {
        return Err(ApiError::conflict(format!(
            "batch {batch} is already released (decision {})",
            d.seq
        )));
    }
    if b.results.entered_by(&caller.user.id) {
        return Err(ApiError::forbidden(format!(
            "{} entered QC results of batch {batch} and cannot also release it (separation of duties)",
            caller.user.id
        )));
    }
    let spec = spec_of(&state, &b)?;
    let r = readiness_of(&state, &b)?;
    let request = match body.at_risk_request {
        None => None,
        Some(seq) => Some(b.at_risk_request(seq).cloned().ok_or_else(|| {
            ApiError::bad_request(
                "at_risk_request",
                format!("no release-at-risk request {seq} for batch {batch}"),
            )
        })?),
    };
    let kind = match check_release(&r, request.as_ref()) {
        Ok(kind) => kind,
        Err(reasons) => {
            let body = json!({
                "error": {
                    "code": "release_blocked",
                    "message": format!("batch {batch} cannot be released: {}", reasons.join("; ")),
                    "field": null,
                },
                "blockers": r.blockers,
                "reasons": reasons,
            });
            return Ok((StatusCode::CONFLICT, Json(body)).into_response());
        }
    };
    let tests: Vec<u64> = spec
        .tests()
        .iter()
        .filter_map(|t| b.results.current(&t.id).map(|r| r.seq))
        .collect();
    let payload = DecisionPayload {
        batch: batch.clone(),
        spec: spec.key(),
        kind,
        at_risk_request: body.at_risk_request,
        results: tests,
        exceptions: r.exceptions.iter().map(|e| e.explanation.clone()).collect(),
    };
    let out = state
        .append(
            vec![record(
                &stream_of(&batch)?,
                "qc.release.decided",
                &payload,
                &caller.user.id,
                site.as_str(),
            )],
            idempotency_key(&headers_with_key(&headers, "decision")),
        )
        .await?;
    let decision_seq = out.records[0].seq;
    let sig = super::ledger::sign(
        State(state.clone()),
        caller,
        headers_with_key(&headers, "signature"),
        AppJson(SignBody {
            seq: decision_seq,
            meaning: "Released".into(),
            password: body.password,
            user_id: body.user_id,
        }),
    )
    .await?;
    let status = state.read_model(|m: &mut QcModel| m.release_status(&batch));
    Ok(
        Json(json!({ "decision": decision_seq, "signature": sig.0, "release_status": status }))
            .into_response(),
    )
}

/// The certificate of analysis as PDF, built from the recorded results and release.
pub async fn coa<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> ApiResult<Response> {
    qc_batch(&state, &caller, &batch).await?;
    let names = |id: &str| {
        state
            .accounts
            .lock()
            .expect("accounts lock")
            .user(id)
            .map(|u| u.full_name.clone())
    };
    let (ledger_seq, now) = (state.ledger.size(), state.clock.now());
    let cert = state
        .read_model(|m: &mut QcModel| m.certificate(&batch, &names, ledger_seq, now))
        .ok_or_else(|| ApiError::not_found(format!("batch {batch} is not registered for QC")))??;
    let pdf = cert.render_pdf()?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"coa-{batch}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// QC alerts and notifications at the caller's sites (newest last).
pub async fn alerts<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let sites: Vec<String> = caller
        .user
        .sites()
        .into_iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let (alerts, notifications) = state.read_model(|m: &mut QcModel| {
        let mut alerts = Vec::new();
        let mut notifications = Vec::new();
        for b in m.batches() {
            for a in b.alerts.iter().filter(|a| sites.contains(&a.site)) {
                alerts.push(json!({ "batch": b.batch, "alert": a }));
            }
            for n in b.notifications.iter().filter(|n| sites.contains(&n.site)) {
                notifications.push(json!({ "batch": b.batch, "notification": n }));
            }
        }
        (alerts, notifications)
    });
    Ok(Json(
        json!({ "alerts": alerts, "notifications": notifications }),
    ))
}
