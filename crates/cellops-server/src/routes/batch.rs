//! Automated culture over HTTP: recipe registration and QA approval, batches driven by the
//! pure engine (`cellops_process::engine`), simulated culture devices (rebuilt after a
//! restart, `restore`) and configured real ones (`devices`, `serve --devices`), telemetry,
//! the deviation workflow and the electronic batch record.
//!
//! Records: `recipe.registered` (stream `recipe/<product>/<version>`, approved by an
//! `esig.signed` "Approved"); on `batch/<id>`: `culture.batch_opened`, every engine event as
//! `batch.<engine type>` (payload = the event's JSON), `culture.phase_telemetry_summarized`,
//! `culture.prediction_made`, `culture.fault_injected`, `culture.units_harvested`,
//! `culture.record_reviewed`, and the e-signatures over them.
//!
//! Concurrency: commands on batches are decided and appended under one async lock per
//! server process, so two requests never decide on the same state. (Across processes on
//! PostgreSQL, two servers could still race on one batch; the device lease of the
//! controller keeps one controller per device.)

pub mod demo;
pub mod devices;
pub mod ebr;
pub mod ingest;
pub mod model;
pub mod restore;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellops_custody::{
    ChildUnit, CustodyState, Derivation, Derive, ReagentLot, UnitCode, UnitStatus, decide_derive,
};
use cellops_device::telemetry::{CHUNK_SAMPLES_MAX, decode, encode};
use cellops_device::{CultureDevice, DeviceState, DeviceStatus, Sample, SimulatedDevice};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Stream, Timestamp, UserId};
use cellops_isbt::ProductCode;
use cellops_ledger::telemetry::{PutOutcome, TelemetryChunk, with_store};
use cellops_ledger::{Backend, Ledger, LedgerError, NewRecord, PendingSignature, Record};
use cellops_process::Recipe;
use cellops_process::engine::{
    ApprovedRecipe, BatchEngine, BatchEvent, BatchId, BatchState, BatchStatus, Command,
    DeviationId, LotNumber, PersonId, ProcessError, QaSignature, SignatureId, StepSignature,
};
use cellops_process::recipe::model::{SignatureMeaning, StepKind};
use cellops_process::shipped::SHIPPED_RECIPES;
use cellops_training::QUALIFICATION_PREFIX;
use cellops_training::event::Refused;
use cellops_twin::sensors::{Fault, SensorKind};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::ledger::{SignBody, SignatureInput, authorize_signature, esign, record_view};
use super::parse_site;
use super::training::{TrainingModel, record_refusal, require_qualified};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, idempotency_key};
use crate::openapi::RouteDoc;
use crate::projection::Projection;
use crate::state::AppState;
pub use model::{BatchEntry, BatchModel, BatchOpened, HarvestSettings, SimulationSettings};

/// Ledger event types of this module.
pub const EVENT_TYPES: &[EventType] = &[
    ev(
        "recipe.registered",
        "A recipe version was registered (text and content hash)",
    ),
    ev(
        "culture.batch_opened",
        "A batch was opened: site, starting unit, device",
    ),
    ev(
        "culture.phase_telemetry_summarized",
        "A phase ended: summary and hash of its device telemetry",
    ),
    ev(
        "culture.prediction_made",
        "The twin's dose prediction at a decision",
    ),
    ev(
        "culture.fault_injected",
        "A fault was injected into a simulated device",
    ),
    ev("culture.units_harvested", "Units made from the harvest"),
    ev(
        "culture.step_refused",
        "A step confirmation was refused by a rule of the batch (four-eyes)",
    ),
    ev(
        "culture.record_reviewed",
        "The batch record's exceptions, submitted for QA signature",
    ),
    ev(
        "batch.batch_started",
        "Engine: batch started on an approved recipe",
    ),
    ev(
        "batch.step_started",
        "Engine: a step started (lots, set points)",
    ),
    ev(
        "batch.sample_results_recorded",
        "Engine: in-process results evaluated against limits",
    ),
    ev("batch.step_completed", "Engine: a step completed"),
    ev(
        "batch.decision_evaluated",
        "Engine: a decision was evaluated",
    ),
    ev("batch.deviation_opened", "Engine: a deviation was opened"),
    ev(
        "batch.deviation_investigation_started",
        "Engine: investigation started",
    ),
    ev(
        "batch.deviation_capa_defined",
        "Engine: root cause and CAPA defined",
    ),
    ev("batch.deviation_closed", "Engine: QA closed the deviation"),
    ev("batch.batch_aborted", "Engine: the batch was aborted"),
    ev("batch.batch_completed", "Engine: the last step completed"),
];

const fn ev(name: &'static str, description: &'static str) -> EventType {
    EventType {
        name,
        version: 1,
        description,
    }
}

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/recipes",
        "Register a recipe version (TOML text, or a shipped file name)",
        true,
        &["site", "text", "file", "shipped"],
    ),
    (
        "get",
        "/api/recipes",
        "Registered recipe versions with their approval",
        true,
        &[],
    ),
    (
        "post",
        "/api/recipes/{product}/{version}/approve",
        "QA approves this exact recipe content with an e-signature (Approved)",
        true,
        &["password", "user_id"],
    ),
    (
        "post",
        "/api/batches",
        "Start a batch of a product from a starting unit on an approved recipe",
        true,
        &[
            "site",
            "product",
            "version",
            "starting_unit",
            "batch",
            "device",
            "simulation",
            "harvest",
        ],
    ),
    (
        "get",
        "/api/batches/{id}",
        "Batch status: due step, deviations, release blockers, device, predicted harvest, harvested units",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{id}/steps/{step}/start",
        "Start the due step, capturing material lots",
        true,
        &["lots"],
    ),
    (
        "post",
        "/api/batches/{id}/steps/{step}/complete",
        "Confirm the operator step in progress (e-signature where the recipe says so)",
        true,
        &["password", "user_id"],
    ),
    (
        "post",
        "/api/batches/{id}/steps/{step}/results",
        "In-process results of the sampling step (out of limits opens a deviation)",
        true,
        &["results"],
    ),
    (
        "post",
        "/api/batches/{id}/steps/{step}/evaluate",
        "Evaluate the due decision (value, or the twin's prediction on a simulated batch); with password, the culturist's e-signature on the decision (qualification of batch.decision)",
        true,
        &["value", "password", "user_id"],
    ),
    (
        "post",
        "/api/batches/{id}/deviations",
        "Open a deviation by hand",
        true,
        &["description", "blocks_release", "hold"],
    ),
    (
        "post",
        "/api/batches/{id}/deviations/{deviation}/investigate",
        "Start the investigation of an open deviation",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{id}/deviations/{deviation}/capa",
        "Record root cause and CAPA",
        true,
        &["root_cause", "capa"],
    ),
    (
        "post",
        "/api/batches/{id}/deviations/{deviation}/close",
        "QA closes the deviation with an e-signature (Approved)",
        true,
        &["password", "user_id"],
    ),
    (
        "post",
        "/api/batches/{id}/hold",
        "Put the batch on hold (a deviation that holds it until closed)",
        true,
        &["reason"],
    ),
    (
        "post",
        "/api/batches/{id}/abort",
        "Abort the batch for good",
        true,
        &["reason"],
    ),
    (
        "post",
        "/api/batches/{id}/simulate",
        "Advance a simulated batch by hours (or to completion), the demo operator doing each step",
        true,
        &[
            "hours",
            "to_completion",
            "password",
            "user_id",
            "verifier",
            "stop_at",
        ],
    ),
    (
        "post",
        "/api/batches/{id}/faults",
        "Inject a twin fault into the simulated device",
        true,
        &[
            "fault",
            "duration_h",
            "ambient_c",
            "bacteria_per_ml",
            "sensor",
            "per_h",
        ],
    ),
    (
        "get",
        "/api/batches/{id}/telemetry",
        "Stored telemetry of the batch's device (decoded; signal=, after_seq=, limit=)",
        true,
        &[],
    ),
    (
        "get",
        "/api/batches/{id}/record.html",
        "The electronic batch record as HTML",
        true,
        &[],
    ),
    (
        "get",
        "/api/batches/{id}/record.pdf",
        "The electronic batch record as PDF",
        true,
        &[],
    ),
    (
        "get",
        "/api/batches/{id}/review",
        "Review-by-exception list of the batch record",
        true,
        &[],
    ),
    (
        "post",
        "/api/batches/{id}/review",
        "QA signs the review-by-exception list (Reviewed)",
        true,
        &["password", "user_id"],
    ),
];

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/api/recipes",
            post(register_recipe::<B>).get(list_recipes::<B>),
        )
        .route(
            "/api/recipes/{product}/{version}/approve",
            post(approve_recipe::<B>),
        )
        .route("/api/batches", post(start_batch::<B>))
        .route("/api/batches/{id}", get(batch_status::<B>))
        .route(
            "/api/batches/{id}/steps/{step}/start",
            post(start_step::<B>),
        )
        .route(
            "/api/batches/{id}/steps/{step}/complete",
            post(complete_step::<B>),
        )
        .route(
            "/api/batches/{id}/steps/{step}/results",
            post(record_results::<B>),
        )
        .route(
            "/api/batches/{id}/steps/{step}/evaluate",
            post(evaluate::<B>),
        )
        .route("/api/batches/{id}/deviations", post(open_deviation::<B>))
        .route(
            "/api/batches/{id}/deviations/{deviation}/investigate",
            post(investigate::<B>),
        )
        .route(
            "/api/batches/{id}/deviations/{deviation}/capa",
            post(define_capa::<B>),
        )
        .route(
            "/api/batches/{id}/deviations/{deviation}/close",
            post(close_deviation::<B>),
        )
        .route("/api/batches/{id}/hold", post(hold::<B>))
        .route("/api/batches/{id}/abort", post(abort::<B>))
        .route("/api/batches/{id}/simulate", post(simulate::<B>))
        .route("/api/batches/{id}/faults", post(inject_fault::<B>))
        .route("/api/batches/{id}/telemetry", get(telemetry::<B>))
        .route("/api/batches/{id}/record.html", get(record_html::<B>))
        .route("/api/batches/{id}/record.pdf", get(record_pdf::<B>))
        .route(
            "/api/batches/{id}/review",
            get(review_list::<B>).post(sign_review::<B>),
        )
}

// ------------------------------------------------------------------ runtime state

/// Per-process state that is not derived from the ledger: the simulated devices (physical
/// stand-ins, like a real device's own memory), the controllers of configured real devices
/// and the lock that serialises batch commands.
/// Registered as a projection only to live per `AppState`; it ignores records.
#[derive(Default)]
pub struct BatchRuntime {
    devices: BTreeMap<String, Arc<Mutex<SimulatedDevice>>>,
    /// Controllers of the configured real devices, by device id (`serve --devices`).
    controllers: BTreeMap<String, devices::ControllerHandle>,
    reported_alarms: BTreeSet<(String, String)>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Projection for BatchRuntime {
    fn apply(&mut self, _record: &Record) {}
}

fn sim_device<B: Backend>(state: &AppState<B>, batch: &str) -> Option<Arc<Mutex<SimulatedDevice>>> {
    state.read_model(|r: &mut BatchRuntime| r.devices.get(batch).cloned())
}

/// The device a batch runs on in this server: its simulated device, or the controller of a
/// configured real device at the batch's site. Device programs go to either through
/// `CultureDevice::start_program` (the controller's is fenced by its lease).
enum BatchDevice {
    Simulated(Arc<Mutex<SimulatedDevice>>),
    Controlled(devices::ControllerHandle),
}

fn batch_device<B: Backend>(state: &AppState<B>, ctx: &Ctx) -> Option<BatchDevice> {
    if let Some(d) = sim_device(state, &ctx.opened.batch) {
        return Some(BatchDevice::Simulated(d));
    }
    if ctx.opened.simulation.is_some() {
        return None;
    }
    devices::controller_for(state, &ctx.opened.site, &ctx.opened.device)
        .map(BatchDevice::Controlled)
}

impl BatchDevice {
    async fn start_program(&self, program: cellops_device::Program) -> ApiResult<()> {
        match self {
            BatchDevice::Simulated(d) => d
                .lock()
                .expect("device lock")
                .start_program(&program)
                .map_err(|e| ApiError::conflict(e.to_string())),
            BatchDevice::Controlled(h) => devices::start_on_controller(h, program).await,
        }
    }

    async fn safe_state(&self, reason: &str) {
        match self {
            BatchDevice::Simulated(d) => {
                let _ = d.lock().expect("device lock").safe_state(reason);
            }
            BatchDevice::Controlled(h) => {
                if let Err(e) = h.safe_state(reason).await {
                    tracing::warn!(device = %h.entry().id, error = %e, "safe state not commanded");
                }
            }
        }
    }

    /// Signal names in sample index order (a real device's once it has been reached).
    fn signals(&self) -> Option<Vec<String>> {
        let info = match self {
            BatchDevice::Simulated(d) => Some(d.lock().expect("device lock").info()),
            BatchDevice::Controlled(h) => h.info(),
        };
        info.map(|i| i.signals.into_iter().map(|s| s.name).collect())
    }
}

fn command_lock<B: Backend>(state: &AppState<B>) -> Arc<tokio::sync::Mutex<()>> {
    state.read_model(|r: &mut BatchRuntime| r.lock.clone())
}

// ------------------------------------------------------------------ helpers

fn to_odt(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_us()) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn person(caller: &Caller) -> ApiResult<PersonId> {
    PersonId::parse(&caller.user.id).map_err(ApiError::internal)
}

/// The person id of the demo operator's automatic actions that no person did (device
/// alarms turned into deviations).
pub const CONTROLLER_PERSON: &str = "system-controller";

impl From<ProcessError> for ApiError {
    fn from(e: ProcessError) -> ApiError {
        let (status, code) = match &e {
            ProcessError::NotQualified { .. } => (StatusCode::FORBIDDEN, "not_qualified"),
            ProcessError::SamePersonVerifies { .. } => (StatusCode::FORBIDDEN, "four_eyes"),
            ProcessError::RecipeNotApproved { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "recipe_not_approved")
            }
            _ => (StatusCode::CONFLICT, "batch_refused"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

fn meaning_name(m: SignatureMeaning) -> &'static str {
    match m {
        SignatureMeaning::Performed => "Performed",
        SignatureMeaning::Verified => "Verified",
        SignatureMeaning::Reviewed => "Reviewed",
        SignatureMeaning::Approved => "Approved",
    }
}

/// What a batch command needs from the read model.
struct Ctx {
    site: SiteId,
    opened: BatchOpened,
    recipe: Recipe,
    approved: Vec<cellops_process::recipe::hash::ApprovedVersion>,
    state: BatchState,
    entry: BatchEntry,
}

fn load<B: Backend>(state: &AppState<B>, batch: &str) -> ApiResult<Ctx> {
    state.read_model(|m: &mut BatchModel| {
        let entry = m
            .batch(batch)
            .ok_or_else(|| ApiError::not_found(format!("batch {batch} does not exist")))?;
        let recipe = m
            .recipe(&entry.opened.product, &entry.opened.recipe_version)
            .ok_or_else(|| ApiError::internal(format!("recipe of batch {batch} is missing")))?;
        Ok(Ctx {
            site: SiteId::parse(&entry.opened.site).map_err(ApiError::internal)?,
            opened: entry.opened.clone(),
            recipe: recipe.recipe.clone(),
            approved: m.approved_versions(),
            state: entry.state.clone(),
            entry: entry.clone(),
        })
    })
}

/// The batch's "now": the simulated device's time, else the server clock.
fn batch_now<B: Backend>(state: &AppState<B>, batch: &str, ctx: &Ctx) -> OffsetDateTime {
    let now = match sim_device(state, batch) {
        Some(d) => d.lock().expect("device lock").now(),
        None => to_odt(state.clock.now()),
    };
    ctx.state.last_at().map_or(now, |last| now.max(last))
}

/// `at` as a ledger timestamp (microseconds, as a record's RFC 3339 text reads back).
fn to_timestamp(at: OffsetDateTime) -> Option<Timestamp> {
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .ok()
        .and_then(|us| Timestamp::from_unix_us(us).ok())
}

/// Does `person` hold the recipe `qualification` at `site` at `at`? The training read model
/// and the site's qualification matrix answer (action `qualification:<id>`), exactly as
/// `routes::training::require_qualified` and the auditor's batch check do; the refusal to
/// record when not.
fn step_qualification(
    training: &TrainingModel,
    site: &SiteId,
    person: &PersonId,
    qualification: &str,
    at: OffsetDateTime,
) -> Result<(), Option<Box<Refused>>> {
    let user = UserId::parse(person.as_str()).map_err(|_| None)?;
    let at = to_timestamp(at).ok_or(None)?;
    let action = format!("{QUALIFICATION_PREFIX}{qualification}");
    cellops_training::check_action(&training.state, &training.matrix, &user, site, &action, at)
        .map(|_| ())
        .map_err(Some)
}

/// Decides `command` on the batch. Every step that declares a qualification (operator and
/// sampling steps: starting them, confirming them, e-signing them, recording results) is
/// checked against the performer's training record at the time of the action; a refusal is
/// recorded (`qualification.refused`, naming the batch and step) and answered with 403
/// naming the missing, expired or suspended qualification.
async fn decide<B: Backend>(
    state: &AppState<B>,
    ctx: &Ctx,
    command: Command,
) -> ApiResult<Vec<BatchEvent>> {
    decide_on(
        state,
        &ctx.site,
        &ctx.opened.batch,
        &ctx.recipe,
        &ctx.approved,
        &ctx.state,
        command,
    )
    .await
}

async fn decide_on<B: Backend>(
    state: &AppState<B>,
    site: &SiteId,
    batch: &str,
    recipe: &Recipe,
    approved: &[cellops_process::recipe::hash::ApprovedVersion],
    batch_state: &BatchState,
    command: Command,
) -> ApiResult<Vec<BatchEvent>> {
    let approved = ApprovedRecipe::check(recipe, approved)?;
    let at = command.at();
    let refused: std::cell::RefCell<Option<Box<Refused>>> = std::cell::RefCell::new(None);
    let decided =
        state.read_model(|training: &mut TrainingModel| {
            let check = |person: &PersonId, qualification: &str, at: OffsetDateTime| {
                match step_qualification(training, site, person, qualification, at) {
                    Ok(()) => true,
                    Err(why) => {
                        let mut first = refused.borrow_mut();
                        if first.is_none() {
                            *first = why;
                        }
                        false
                    }
                }
            };
            BatchEngine::new(approved, check).decide(batch_state, command)
        });
    match decided {
        Ok(events) => Ok(events),
        Err(e @ ProcessError::NotQualified { .. }) => {
            let ProcessError::NotQualified { step, .. } = &e else {
                unreachable!("matched above")
            };
            match refused.into_inner() {
                Some(mut refusal) => {
                    refusal.context = Some(format!("{} step {step}", model::batch_stream(batch)));
                    Err(record_refusal(state, &refusal).await)
                }
                None => Err(e.into()),
            }
        }
        Err(e @ ProcessError::SamePersonVerifies { .. }) => {
            Err(record_step_refusal(state, site, batch, at, &e).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a refusal by a batch rule that is not about training (four-eyes) as
/// `culture.step_refused` on the batch stream: who, which step, the rule and the message.
/// Answers with the refusal (or the append's error).
async fn record_step_refusal<B: Backend>(
    state: &AppState<B>,
    site: &SiteId,
    batch: &str,
    at: OffsetDateTime,
    e: &ProcessError,
) -> ApiError {
    let ProcessError::SamePersonVerifies {
        person,
        step,
        verified,
    } = e
    else {
        return e.clone().into();
    };
    let payload = json!({
        "rule": "four_eyes",
        "step": step,
        "verifies": verified,
        "by": person.as_str(),
        "message": e.to_string(),
        "at": to_timestamp(at).map(|t| t.to_string()),
    });
    let record = culture_record(
        batch,
        "culture.step_refused",
        payload,
        person.as_str(),
        site,
    );
    match state.append(vec![record], None).await {
        Ok(_) => e.clone().into(),
        Err(err) => err,
    }
}

fn records_of(events: &[BatchEvent], batch: &str, actor: &str, site: &SiteId) -> Vec<NewRecord> {
    events
        .iter()
        .map(|e| {
            NewRecord::new(
                &model::batch_stream(batch),
                &model::engine_event_type(e),
                1,
                e.to_json(),
                actor,
                site.as_str(),
            )
        })
        .collect()
}

fn culture_record(
    batch: &str,
    event_type: &str,
    payload: Value,
    actor: &str,
    site: &SiteId,
) -> NewRecord {
    NewRecord::new(
        &model::batch_stream(batch),
        event_type,
        1,
        payload,
        actor,
        site.as_str(),
    )
}

/// Decides `command` on the batch and appends the events (plus `extra` records after them).
async fn run<B: Backend>(
    state: &AppState<B>,
    batch: &str,
    actor: &str,
    command: Command,
    extra: Vec<NewRecord>,
    idempotency: Option<String>,
) -> ApiResult<Vec<Record>> {
    state.sync().await?;
    let ctx = load(state, batch)?;
    let events = decide(state, &ctx, command).await?;
    let mut records = records_of(&events, batch, actor, &ctx.site);
    records.extend(extra);
    let out = state.append(records, idempotency).await?;
    Ok(out.records)
}

fn check_batch_role(caller: &Caller, ctx: &Ctx) -> ApiResult<()> {
    caller.require(&[Role::Operator, Role::SiteAdmin], &ctx.site)
}

fn lock_response(records: &[Record]) -> Value {
    json!({ "records": records.iter().map(record_view).collect::<Vec<_>>() })
}

// ------------------------------------------------------------------ recipes

#[derive(Deserialize)]
pub struct RegisterBody {
    pub site: String,
    /// Recipe TOML text.
    pub text: Option<String>,
    /// File name shown in validation errors.
    pub file: Option<String>,
    /// Instead of text: the name of a shipped recipe (`prime-car-t.toml`, …).
    pub shipped: Option<String>,
}

pub async fn register_recipe<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<RegisterBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Operator, Role::QaReviewer, Role::SiteAdmin], &site)?;
    let (file, text) = match (&body.shipped, &body.text) {
        (Some(name), None) => {
            let (file, text) =
                SHIPPED_RECIPES
                    .iter()
                    .find(|(f, _)| f == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = SHIPPED_RECIPES.iter().map(|(f, _)| *f).collect();
                        ApiError::bad_request(
                            "shipped",
                            format!(
                                "{name:?} is not a shipped recipe: use one of {}",
                                names.join(", ")
                            ),
                        )
                    })?;
            ((*file).to_string(), (*text).to_string())
        }
        (None, Some(text)) => (
            body.file.clone().unwrap_or_else(|| "recipe.toml".into()),
            text.clone(),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "text",
                "give either the recipe TOML in text or a shipped file name in shipped",
            ));
        }
    };
    let recipe =
        Recipe::parse(&file, &text).map_err(|e| ApiError::bad_request("text", e.to_string()))?;
    let product = recipe.product().to_string();
    let version = recipe.version().to_string();
    let stream = model::recipe_stream(&product, &version);
    Stream::parse(&stream).map_err(|e| {
        ApiError::bad_request(
            "text",
            format!("product or version cannot name a stream: {e}"),
        )
    })?;
    state.sync().await?;
    let existing =
        state.read_model(|m: &mut BatchModel| m.recipe(&product, &version).map(|r| r.content_hash));
    if let Some(hash) = existing {
        if hash == recipe.content_hash() {
            return Err(ApiError::conflict(format!(
                "{product} {version} is already registered with this content"
            )));
        }
        return Err(ApiError::conflict(format!(
            "{product} {version} is already registered with other content ({hash}): a change is a new version"
        )));
    }
    let payload = model::RecipeRegistered {
        product: product.clone(),
        version: version.clone(),
        content_hash: recipe.content_hash().to_string(),
        file,
        text,
    };
    let record = NewRecord::new(
        &stream,
        "recipe.registered",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        site.as_str(),
    );
    let out = state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(Json(json!({
        "product": product,
        "version": version,
        "content_hash": payload.content_hash,
        "seq": out.records[0].seq,
        "approved": false,
    })))
}

fn recipe_view(r: &model::RecipeEntry) -> Value {
    json!({
        "product": r.recipe.product(),
        "version": r.recipe.version().to_string(),
        "content_hash": r.content_hash.to_string(),
        "site": r.site,
        "registered_seq": r.registered_seq,
        "approval": r.approval,
    })
}

pub async fn list_recipes<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let list = state.read_model(|m: &mut BatchModel| {
        m.recipes()
            .filter(|r| caller.user.roles.iter().any(|(_, s)| s.as_str() == r.site))
            .map(recipe_view)
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "recipes": list })))
}

#[derive(Deserialize)]
pub struct SignatureBody {
    pub password: Option<String>,
    pub user_id: Option<String>,
}

fn sign_body(seq: u64, meaning: &str, body: &SignatureBody) -> ApiResult<SignBody> {
    let password = body.password.clone().ok_or_else(|| {
        ApiError::bad_request(
            "password",
            "this step needs your e-signature: give your password",
        )
    })?;
    Ok(SignBody {
        seq,
        meaning: meaning.to_string(),
        password,
        user_id: body.user_id.clone(),
    })
}

pub async fn approve_recipe<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((product, version)): Path<(String, String)>,
    AppJson(body): AppJson<SignatureBody>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let entry = state
        .read_model(|m: &mut BatchModel| m.recipe(&product, &version).cloned())
        .ok_or_else(|| {
            ApiError::not_found(format!("recipe {product} {version} is not registered"))
        })?;
    let site = SiteId::parse(&entry.site).map_err(ApiError::internal)?;
    caller.require(&[Role::QaReviewer, Role::QaReleaser], &site)?;
    if entry.approval.is_some() {
        return Err(ApiError::conflict(format!(
            "{product} {version} is already approved"
        )));
    }
    let signed = esign(
        &state,
        &caller,
        &sign_body(entry.registered_seq, "Approved", &body)?,
        idempotency_key(&headers),
    )
    .await?;
    state.sync().await?;
    let view = state.read_model(|m: &mut BatchModel| m.recipe(&product, &version).map(recipe_view));
    Ok(Json(
        json!({ "recipe": view, "signature": record_view(&signed) }),
    ))
}

// ------------------------------------------------------------------ batches

#[derive(Deserialize)]
pub struct StartBody {
    pub site: String,
    pub product: String,
    /// Recipe version; default: the newest approved version at the site.
    pub version: Option<String>,
    /// Unit code of the starting material.
    pub starting_unit: String,
    /// Batch id (lowercase letters, digits, `-`); default: `<product>-<nnnn>`.
    pub batch: Option<String>,
    /// Device id; default `sim-<batch>` for a simulated device.
    pub device: Option<String>,
    /// Run on a simulated device with these settings (default: seed 1, 60 s sampling).
    pub simulation: Option<SimulationBody>,
    /// What the harvest makes in custody: the harvested unit (same DIN as the batch's
    /// in-process unit, this product code) is derived from the in-process unit when the
    /// harvest completes. Without it the harvest only names its units.
    pub harvest: Option<HarvestSettings>,
}

#[derive(Deserialize, Clone, Copy)]
pub struct SimulationBody {
    pub seed: Option<u64>,
    pub sample_period_s: Option<u32>,
}

/// Starts a batch; the Rust face of `POST /api/batches` (the lead's vein-to-vein flow
/// calls this with the caller's identity).
pub async fn start_batch_as<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    body: StartBody,
    idempotency: Option<String>,
) -> ApiResult<Value> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Operator, Role::SiteAdmin], &site)?;
    if body.starting_unit.trim().is_empty() || body.starting_unit.len() > 64 {
        return Err(ApiError::bad_request(
            "starting_unit",
            "give the unit code of the starting material (1-64 characters)",
        ));
    }
    let lock = command_lock(state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let (recipe, approved, taken, count) = state.read_model(|m: &mut BatchModel| {
        let recipe = match &body.version {
            Some(v) => m.recipe(&body.product, v).cloned(),
            None => m.latest_approved(&body.product, site.as_str()).cloned(),
        };
        let taken = body.batch.as_ref().is_some_and(|b| m.batch(b).is_some());
        (recipe, m.approved_versions(), taken, m.batches().count())
    });
    let recipe = recipe.ok_or_else(|| {
        ApiError::bad_request("product", format!(
            "no {} recipe{} is registered and approved at site {site}: register it and have QA approve it",
            body.product,
            body.version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default()
        ))
    })?;
    if recipe.site != site.as_str() {
        return Err(ApiError::bad_request(
            "site",
            format!(
                "recipe {} {} is registered at site {}, not {site}",
                body.product,
                recipe.recipe.version(),
                recipe.site
            ),
        ));
    }
    ApprovedRecipe::check(&recipe.recipe, &approved)?;
    if let Some(harvest) = &body.harvest {
        check_harvest_settings(state, harvest, &body.starting_unit, &site)?;
    }
    if taken {
        return Err(ApiError::conflict(
            "a batch with this id exists: choose another id",
        ));
    }
    let batch = body
        .batch
        .clone()
        .unwrap_or_else(|| format!("{}-{:04}", body.product, count + 1));
    Stream::parse(&model::batch_stream(&batch))
        .map_err(|e| ApiError::bad_request("batch", e.to_string()))?;
    let batch_id =
        BatchId::parse(&batch).map_err(|e| ApiError::bad_request("batch", e.to_string()))?;
    let now = to_odt(state.clock.now());
    let simulation = match (&body.device, body.simulation) {
        (Some(_), None) => None,
        (_, sim) => Some(SimulationSettings {
            seed: sim.and_then(|s| s.seed).unwrap_or(1),
            sample_period_s: sim.and_then(|s| s.sample_period_s).unwrap_or(60),
        }),
    };
    let device_id = body
        .device
        .clone()
        .unwrap_or_else(|| format!("sim-{batch}"));
    if simulation.is_none()
        && let Some(configured) = devices::configured(state, &device_id)
    {
        check_configured_device(state, configured.entry(), &site)?;
    }
    let device = match simulation {
        Some(sim) => {
            let product = demo::twin_product(recipe.recipe.product()).ok_or_else(|| {
                ApiError::bad_request(
                    "product",
                    format!(
                        "the twin has no model of {}: run it on a real device",
                        body.product
                    ),
                )
            })?;
            Some(
                SimulatedDevice::new(&device_id, product, sim.seed, now, sim.sample_period_s)
                    .map_err(|e| ApiError::bad_request("simulation", e.to_string()))?,
            )
        }
        None => None,
    };
    let opened = BatchOpened {
        batch: batch.clone(),
        site: site.to_string(),
        product: body.product.clone(),
        recipe_version: recipe.recipe.version().to_string(),
        recipe_hash: recipe.content_hash.to_string(),
        starting_unit: body.starting_unit.clone(),
        device: device_id,
        simulation,
        harvest: body.harvest.clone(),
    };
    let events = decide_on(
        state,
        &site,
        &batch,
        &recipe.recipe,
        &approved,
        &BatchState::new(),
        Command::StartBatch {
            batch: batch_id,
            by: person(caller)?,
            at: now,
        },
    )
    .await?;
    let mut records = vec![culture_record(
        &batch,
        "culture.batch_opened",
        serde_json::to_value(&opened).expect("serializes"),
        &caller.user.id,
        &site,
    )];
    records.extend(records_of(&events, &batch, &caller.user.id, &site));
    let out = state.append(records, idempotency).await?;
    if let Some(device) = device
        && !out.replayed
    {
        state.read_model(|r: &mut BatchRuntime| {
            r.devices
                .insert(batch.clone(), Arc::new(Mutex::new(device)));
        });
    }
    drop(_guard);
    batch_status_value(state, &batch)
}

/// A batch on a configured real device: the device stands at the batch's site and runs no
/// other batch.
fn check_configured_device<B: Backend>(
    state: &AppState<B>,
    entry: &devices::DeviceEntry,
    site: &SiteId,
) -> ApiResult<()> {
    if &entry.site != site {
        return Err(ApiError::bad_request(
            "device",
            format!(
                "device {} is configured at site {}, not {site}: choose a device of {site}",
                entry.id, entry.site
            ),
        ));
    }
    let busy = state.read_model(|m: &mut BatchModel| {
        m.batches()
            .find(|b| {
                b.opened.device == entry.id
                    && b.opened.site == site.as_str()
                    && b.opened.simulation.is_none()
                    && matches!(
                        b.state.status(),
                        BatchStatus::Running | BatchStatus::NotStarted
                    )
            })
            .map(|b| b.opened.batch.clone())
    });
    match busy {
        Some(other) => Err(ApiError::conflict(format!(
            "device {} runs batch {other}: complete or abort it first, or choose another device",
            entry.id
        ))),
        None => Ok(()),
    }
}

pub async fn start_batch<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<StartBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        start_batch_as(&state, &caller, body, idempotency_key(&headers)).await?,
    ))
}

/// Status of a batch as JSON (the body of `GET /api/batches/{id}`), read from the
/// borrowed batch entry (`view::status`).
pub fn batch_status_value<B: Backend>(state: &AppState<B>, batch: &str) -> ApiResult<Value> {
    view::status(state, None, batch)
}

fn check_readable(caller: &Caller, ctx: &Ctx) -> ApiResult<()> {
    caller.require_site(&ctx.site)
}

pub async fn batch_status<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    Ok(Json(view::status(&state, Some(&caller), &id)?))
}

#[derive(Deserialize, Default)]
pub struct StartStepBody {
    #[serde(default)]
    pub lots: BTreeMap<String, String>,
}

fn parse_lots(lots: &BTreeMap<String, String>) -> ApiResult<BTreeMap<String, LotNumber>> {
    lots.iter()
        .map(|(m, l)| {
            LotNumber::parse(l)
                .map(|l| (m.clone(), l))
                .map_err(|e| ApiError::bad_request(&format!("lots.{m}"), e.to_string()))
        })
        .collect()
}

/// Starts `step`; on a simulated batch a device step also starts the device program.
async fn start_step_as<B: Backend>(
    state: &AppState<B>,
    caller_id: &str,
    batch: &str,
    step: &str,
    lots: BTreeMap<String, LotNumber>,
    idempotency: Option<String>,
) -> ApiResult<Vec<Record>> {
    state.sync().await?;
    let ctx = load(state, batch)?;
    let by = PersonId::parse(caller_id).map_err(ApiError::internal)?;
    let at = batch_now(state, batch, &ctx);
    let events = decide(
        state,
        &ctx,
        Command::StartStep {
            step: step.into(),
            by,
            at,
            lots,
        },
    )
    .await?;
    for e in &events {
        if let BatchEvent::StepStarted {
            step: s,
            duration_hours: Some(h),
            ..
        } = e
            && let Some(device) = batch_device(state, &ctx)
            && let Some(cellops_process::recipe::model::Step {
                kind: StepKind::Device(d),
                ..
            }) = ctx.recipe.step_at(s.position)
        {
            let program = cellops_device::Program {
                reference: cellops_device::ProgramRef {
                    batch: batch.into(),
                    step: s.id.clone(),
                },
                operation: d.operation,
                set_points: d.set_points.clone(),
                duration_hours: *h,
            };
            device.start_program(program).await?;
        }
    }
    let out = state
        .append(
            records_of(&events, batch, caller_id, &ctx.site),
            idempotency,
        )
        .await?;
    Ok(out.records)
}

pub async fn start_step<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<StartStepBody>,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_batch_role(&caller, &ctx)?;
    let lots = parse_lots(&body.lots)?;
    let records = start_step_as(
        &state,
        &caller.user.id,
        &id,
        &step,
        lots,
        idempotency_key(&headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

/// Confirms the operator step in progress, e-signing it where the recipe asks.
async fn complete_operator_as<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    batch: &str,
    step: &str,
    body: &SignatureBody,
    idempotency: Option<String>,
) -> ApiResult<Vec<Record>> {
    state.sync().await?;
    let ctx = load(state, batch)?;
    check_batch_role(caller, &ctx)?;
    let by = person(caller)?;
    let at = batch_now(state, batch, &ctx);
    let meaning = match ctx
        .recipe
        .position_of(step)
        .and_then(|p| ctx.recipe.step_at(p))
    {
        Some(cellops_process::recipe::model::Step {
            kind: StepKind::Operator(o),
            ..
        }) => o.esignature,
        _ => None,
    };
    let signature = match meaning {
        None => None,
        Some(meaning) => {
            // Check everything but the signature first, so a refused step leaves no signature.
            let provisional = StepSignature {
                meaning,
                signature: SignatureId::parse("pending").expect("valid id"),
            };
            decide(
                state,
                &ctx,
                Command::CompleteOperatorStep {
                    step: step.into(),
                    by: by.clone(),
                    at,
                    signature: Some(provisional),
                },
            )
            .await?;
            let seq = *ctx
                .entry
                .step_started_seq
                .get(step)
                .ok_or_else(|| ApiError::conflict(format!("step {step} was not started")))?;
            let signed = esign(
                state,
                caller,
                &sign_body(seq, meaning_name(meaning), body)?,
                None,
            )
            .await?;
            Some(StepSignature {
                meaning,
                signature: SignatureId::parse(&format!("esig-{}", signed.seq)).expect("valid id"),
            })
        }
    };
    run(
        state,
        batch,
        &caller.user.id,
        Command::CompleteOperatorStep {
            step: step.into(),
            by,
            at,
            signature,
        },
        Vec::new(),
        idempotency,
    )
    .await
}

pub async fn complete_step<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<SignatureBody>,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    let records = complete_operator_as(
        &state,
        &caller,
        &id,
        &step,
        &body,
        idempotency_key(&headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

#[derive(Deserialize)]
pub struct ResultsBody {
    pub results: BTreeMap<String, f64>,
}

pub async fn record_results<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<ResultsBody>,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_batch_role(&caller, &ctx)?;
    let by = person(&caller)?;
    let at = batch_now(&state, &id, &ctx);
    let records = run(
        &state,
        &id,
        &caller.user.id,
        Command::RecordSampleResults {
            step,
            by,
            at,
            results: body.results,
        },
        Vec::new(),
        idempotency_key(&headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

#[derive(Deserialize, Default)]
pub struct EvaluateBody {
    pub value: Option<f64>,
    /// With a password the decision record carries the culturist's e-signature
    /// ("Performed"), and the culturist must hold the qualification of the action
    /// `batch.decision` (the site's qualification matrix).
    pub password: Option<String>,
    pub user_id: Option<String>,
}

/// In-process results of a batch so far, as (hours since start, parameter values).
fn ipc_history(ctx: &Ctx) -> Vec<(f64, Vec<(String, f64)>)> {
    let start = ctx.state.started_at();
    ctx.entry
        .records
        .iter()
        .filter(|r| r.event_type == "batch.sample_results_recorded")
        .filter_map(|r| BatchEvent::from_json(&r.payload_json()).ok())
        .filter_map(|e| match e {
            BatchEvent::SampleResultsRecorded { at, results, .. } => Some((
                start.map_or(0.0, |s| (at - s).as_seconds_f64() / 3600.0),
                results
                    .into_iter()
                    .map(|r| (r.parameter, r.value))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The decision step `step` of the batch's recipe.
fn decision_of(ctx: &Ctx, step: &str) -> ApiResult<cellops_process::recipe::model::DecisionStep> {
    match ctx
        .recipe
        .position_of(step)
        .and_then(|p| ctx.recipe.step_at(p))
    {
        Some(cellops_process::recipe::model::Step {
            kind: StepKind::Decision(d),
            ..
        }) => Ok(d.clone()),
        _ => Err(ApiError::conflict(format!(
            "step {step} is not a decision of this recipe"
        ))),
    }
}

/// The twin's value of the decision's parameter at `at` and its prediction (the
/// `culture.prediction_made` payload: value, target, predicted dose day and its interval),
/// or `None` when the batch has no simulated device.
async fn twin_decision<B: Backend>(
    state: &AppState<B>,
    ctx: &Ctx,
    batch: &str,
    decision: &cellops_process::recipe::model::DecisionStep,
    at: OffsetDateTime,
) -> ApiResult<Option<(f64, Value)>> {
    let Some(device) = sim_device(state, batch) else {
        return Ok(None);
    };
    let s = device.lock().expect("device lock").true_state();
    let elapsed_h = ctx
        .state
        .started_at()
        .map_or(0.0, |st| (at - st).as_seconds_f64() / 3600.0);
    let observations = demo::observations_of(&ipc_history(ctx));
    let seed = ctx.opened.simulation.map_or(1, |s| s.seed);
    let recipe = ctx.recipe.clone();
    let parameter = decision.parameter.clone();
    let target = decision.target_min;
    let decided = state
        .blocking(move |_| {
            Ok(demo::decision_value(
                &recipe,
                &parameter,
                target,
                &s,
                &observations,
                elapsed_h,
                seed,
            ))
        })
        .await?;
    Ok(Some(decided))
}

/// What the decision `step` of `batch` would see if evaluated now, recording nothing: the
/// twin's value and prediction (`None` without a simulated device: the culturist gives
/// the value). The batch view shows it before the culturist signs the decision.
pub async fn decision_preview<B: Backend>(
    state: &AppState<B>,
    batch: &str,
    step: &str,
) -> ApiResult<Option<(f64, Value)>> {
    state.sync().await?;
    let ctx = load(state, batch)?;
    let decision = decision_of(&ctx, step)?;
    let at = batch_now(state, batch, &ctx);
    twin_decision(state, &ctx, batch, &decision, at).await
}

async fn evaluate_as<B: Backend>(
    state: &AppState<B>,
    caller_id: &str,
    batch: &str,
    step: &str,
    value: Option<f64>,
    signature: Option<PendingSignature>,
    idempotency: Option<String>,
) -> ApiResult<Vec<Record>> {
    state.sync().await?;
    let ctx = load(state, batch)?;
    let at = batch_now(state, batch, &ctx);
    let by = PersonId::parse(caller_id).map_err(ApiError::internal)?;
    let decision = decision_of(&ctx, step)?;
    let (value, extra) = match value {
        Some(v) => (v, Vec::new()),
        None => match twin_decision(state, &ctx, batch, &decision, at).await? {
            Some((v, prediction)) => (
                v,
                vec![culture_record(
                    batch,
                    "culture.prediction_made",
                    json!({ "step": step, "prediction": prediction }),
                    caller_id,
                    &ctx.site,
                )],
            ),
            None => {
                return Err(ApiError::bad_request(
                    "value",
                    "give the decision value (the batch has no simulated device to predict it)",
                ));
            }
        },
    };
    let events = decide(
        state,
        &ctx,
        Command::EvaluateDecision {
            step: step.into(),
            by,
            at,
            value,
        },
    )
    .await?;
    let mut records = records_of(&events, batch, caller_id, &ctx.site);
    // The signature goes on the decision record itself, in the same append.
    if let Some(signature) = signature
        && let Some(r) = records
            .iter_mut()
            .find(|r| r.event_type == "batch.decision_evaluated")
    {
        r.signature = Some(signature);
    }
    records.extend(extra);
    let out = state.append(records, idempotency).await?;
    Ok(out.records)
}

pub async fn evaluate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<EvaluateBody>,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_batch_role(&caller, &ctx)?;
    let signature = match &body.password {
        None => None,
        Some(password) => {
            decision_of(&ctx, &step)?;
            require_qualified(
                &state,
                &UserId::parse(&caller.user.id).map_err(ApiError::internal)?,
                &ctx.site,
                "batch.decision",
                state.clock.now(),
            )
            .await?;
            Some(
                authorize_signature(
                    &state,
                    &caller,
                    &SignatureInput {
                        meaning: "Performed",
                        password,
                        user_id: body.user_id.as_deref(),
                    },
                    &ctx.site,
                    &format!("the decision {step} of batch {id}"),
                )
                .await?,
            )
        }
    };
    let records = evaluate_as(
        &state,
        &caller.user.id,
        &id,
        &step,
        body.value,
        signature,
        idempotency_key(&headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

// ------------------------------------------------------------------ deviations, hold, abort

#[derive(Deserialize)]
pub struct DeviationBody {
    pub description: String,
    #[serde(default = "yes")]
    pub blocks_release: bool,
    #[serde(default)]
    pub hold: bool,
}

fn yes() -> bool {
    true
}

fn deviation_id(text: &str) -> ApiResult<DeviationId> {
    DeviationId::parse(text).map_err(|e| ApiError::bad_request("deviation", e.to_string()))
}

async fn simple_command<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    batch: &str,
    roles: &[Role],
    headers: &HeaderMap,
    make: impl FnOnce(PersonId, OffsetDateTime) -> Command,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(state, batch)?;
    caller.require(roles, &ctx.site)?;
    let at = batch_now(state, batch, &ctx);
    let command = make(person(caller)?, at);
    let records = run(
        state,
        batch,
        &caller.user.id,
        command,
        Vec::new(),
        idempotency_key(headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

const DEVIATION_ROLES: &[Role] = &[
    Role::Operator,
    Role::QaReviewer,
    Role::QaReleaser,
    Role::SiteAdmin,
];

pub async fn open_deviation<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<DeviationBody>,
) -> ApiResult<Json<Value>> {
    simple_command(&state, &caller, &id, DEVIATION_ROLES, &headers, |by, at| {
        Command::OpenDeviation {
            description: body.description,
            blocks_release: body.blocks_release,
            hold: body.hold,
            by,
            at,
        }
    })
    .await
}

pub async fn investigate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, deviation)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let deviation = deviation_id(&deviation)?;
    simple_command(&state, &caller, &id, DEVIATION_ROLES, &headers, |by, at| {
        Command::StartInvestigation { deviation, by, at }
    })
    .await
}

#[derive(Deserialize)]
pub struct CapaBody {
    pub root_cause: String,
    pub capa: String,
}

pub async fn define_capa<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, deviation)): Path<(String, String)>,
    AppJson(body): AppJson<CapaBody>,
) -> ApiResult<Json<Value>> {
    let deviation = deviation_id(&deviation)?;
    simple_command(&state, &caller, &id, DEVIATION_ROLES, &headers, |by, at| {
        Command::DefineCapa {
            deviation,
            root_cause: body.root_cause,
            capa: body.capa,
            by,
            at,
        }
    })
    .await
}

pub async fn close_deviation<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, deviation)): Path<(String, String)>,
    AppJson(body): AppJson<SignatureBody>,
) -> ApiResult<Json<Value>> {
    let deviation = deviation_id(&deviation)?;
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(&state, &id)?;
    caller.require(&[Role::QaReviewer, Role::QaReleaser], &ctx.site)?;
    let at = batch_now(&state, &id, &ctx);
    let signer = person(&caller)?;
    let provisional = QaSignature {
        signer: signer.clone(),
        meaning: SignatureMeaning::Approved,
        signature: SignatureId::parse("pending").expect("valid id"),
    };
    decide(
        &state,
        &ctx,
        Command::CloseDeviation {
            deviation: deviation.clone(),
            qa_signature: provisional,
            at,
        },
    )
    .await?;
    let seq = *ctx
        .entry
        .deviation_seq
        .get(deviation.as_str())
        .ok_or_else(|| ApiError::not_found(format!("deviation {deviation} does not exist")))?;
    let signed = esign(&state, &caller, &sign_body(seq, "Approved", &body)?, None).await?;
    let qa_signature = QaSignature {
        signer,
        meaning: SignatureMeaning::Approved,
        signature: SignatureId::parse(&format!("esig-{}", signed.seq)).expect("valid id"),
    };
    let records = run(
        &state,
        &id,
        &caller.user.id,
        Command::CloseDeviation {
            deviation,
            qa_signature,
            at,
        },
        Vec::new(),
        idempotency_key(&headers),
    )
    .await?;
    Ok(Json(lock_response(&records)))
}

#[derive(Deserialize)]
pub struct ReasonBody {
    pub reason: String,
}

pub async fn hold<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<ReasonBody>,
) -> ApiResult<Json<Value>> {
    simple_command(&state, &caller, &id, DEVIATION_ROLES, &headers, |by, at| {
        Command::OpenDeviation {
            description: format!("batch put on hold: {}", body.reason),
            blocks_release: true,
            hold: true,
            by,
            at,
        }
    })
    .await
}

pub async fn abort<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<ReasonBody>,
) -> ApiResult<Json<Value>> {
    let out = simple_command(
        &state,
        &caller,
        &id,
        &[Role::QaReviewer, Role::QaReleaser, Role::SiteAdmin],
        &headers,
        |by, at| Command::AbortBatch {
            reason: body.reason,
            by,
            at,
        },
    )
    .await?;
    let device = load(&state, &id)
        .ok()
        .and_then(|ctx| batch_device(&state, &ctx));
    if let Some(device) = device {
        device.safe_state("batch aborted").await;
    }
    Ok(out)
}

// ------------------------------------------------------------------ telemetry

/// Stores `samples` of `device` (consecutive seq) in chunks: samples at or below the last
/// stored seq are skipped, so a resend after a reconnect stores nothing twice. Returns the
/// number of samples newly stored. Blocking.
pub fn store_samples<B: Backend>(
    ledger: &Ledger<B>,
    device: &str,
    batch: &str,
    samples: &[Sample],
) -> Result<u64, LedgerError> {
    ledger.read(|b| {
        with_store(b, |store| {
            let last = store.last_seq(device)?;
            let fresh: Vec<Sample> = samples.iter().filter(|s| s.seq > last).copied().collect();
            let mut stored = 0;
            for part in fresh.chunks(CHUNK_SAMPLES_MAX) {
                let data = encode(part).map_err(|e| LedgerError::InvalidRecord {
                    field: "samples".into(),
                    rule: e.to_string(),
                })?;
                let chunk = TelemetryChunk {
                    device: device.to_string(),
                    batch: batch.to_string(),
                    first_seq: part[0].seq,
                    last_seq: part[part.len() - 1].seq,
                    first_unix_ms: part[0].at_unix_ms,
                    last_unix_ms: part[part.len() - 1].at_unix_ms,
                    sha256: Sha256::digest(&data).into(),
                    data,
                };
                if store.put_chunk(&chunk)? == PutOutcome::Stored {
                    stored += part.len() as u64;
                }
            }
            Ok(stored)
        })
    })
}

/// Moves every sample the simulated device holds into the telemetry store. Blocking.
fn pump<B: Backend>(
    state: &AppState<B>,
    device: &Mutex<SimulatedDevice>,
    device_id: &str,
    batch: &str,
) -> ApiResult<()> {
    loop {
        let last = state
            .ledger
            .read(|b| with_store(b, |s| s.last_seq(device_id)))?;
        let samples = device
            .lock()
            .expect("device lock")
            .read_samples(last, CHUNK_SAMPLES_MAX)
            .map_err(ApiError::internal)?;
        if samples.is_empty() {
            return Ok(());
        }
        store_samples(&state.ledger, device_id, batch, &samples)?;
    }
}

/// Summary of the device telemetry with seq in `(after_seq, to_seq]`: counts, per-signal
/// min/max/mean, and the SHA-256 over the chunk hashes in order. Blocking.
fn telemetry_summary<B: Backend>(
    state: &AppState<B>,
    device_id: &str,
    signals: &[String],
    after_seq: u64,
    to_seq: u64,
) -> ApiResult<Value> {
    let chunks = state
        .ledger
        .read(|b| with_store(b, |s| s.chunks(device_id, after_seq + 1, to_seq)))?;
    let mut hasher = Sha256::new();
    let mut stats: BTreeMap<u16, (f64, f64, f64, u64)> = BTreeMap::new();
    let mut samples = 0u64;
    for c in &chunks {
        hasher.update(c.sha256);
        for s in decode(&c.data).map_err(ApiError::internal)? {
            samples += 1;
            let e = stats
                .entry(s.signal)
                .or_insert((f64::INFINITY, f64::NEG_INFINITY, 0.0, 0));
            e.0 = e.0.min(s.value);
            e.1 = e.1.max(s.value);
            e.2 += s.value;
            e.3 += 1;
        }
    }
    let per_signal: serde_json::Map<String, Value> = stats
        .iter()
        .map(|(i, (min, max, sum, n))| {
            let name = signals
                .get(usize::from(*i))
                .cloned()
                .unwrap_or_else(|| format!("signal_{i}"));
            (
                name,
                json!({ "min": min, "max": max, "mean": sum / *n as f64, "samples": n }),
            )
        })
        .collect();
    Ok(json!({
        "device": device_id,
        "first_seq": chunks.first().map(|c| c.first_seq),
        "last_seq": chunks.last().map_or(after_seq, |c| c.last_seq),
        "chunks": chunks.len(),
        "samples": samples,
        "bytes": chunks.iter().map(|c| c.data.len()).sum::<usize>(),
        "telemetry_sha256": hex::encode(hasher.finalize()),
        "signals": per_signal,
    }))
}

fn last_summarized_seq(ctx: &Ctx) -> u64 {
    ctx.entry
        .records
        .iter()
        .rev()
        .find(|r| r.event_type == "culture.phase_telemetry_summarized")
        .and_then(|r| r.payload_json()["last_seq"].as_u64())
        .unwrap_or(0)
}

/// After records that completed a step: when the step ended its phase, a summary record of
/// the phase's telemetry.
async fn summarize_if_phase_ended<B: Backend>(
    state: &AppState<B>,
    batch: &str,
    actor: &str,
    records: &[Record],
) -> ApiResult<()> {
    let ended = records
        .iter()
        .find_map(|r| match BatchEvent::from_json(&r.payload_json()) {
            Ok(BatchEvent::StepCompleted { step, next, .. })
            | Ok(BatchEvent::DecisionEvaluated { step, next, .. })
                if next
                    .as_ref()
                    .is_none_or(|n| n.position.phase_index != step.position.phase_index) =>
            {
                Some(step.position.phase_index)
            }
            _ => None,
        });
    let Some(phase_index) = ended else {
        return Ok(());
    };
    state.sync().await?;
    let ctx = load(state, batch)?;
    let Some(device) = batch_device(state, &ctx) else {
        return Ok(());
    };
    // A real device's telemetry is moved by its controller; its signal names are known
    // once it has been reached.
    let Some(signals) = device.signals() else {
        return Ok(());
    };
    let simulated = match device {
        BatchDevice::Simulated(d) => Some(d),
        BatchDevice::Controlled(_) => None,
    };
    let device_id = ctx.opened.device.clone();
    let batch_owned = batch.to_string();
    let after = last_summarized_seq(&ctx);
    let phase = ctx
        .recipe
        .phases()
        .get(phase_index)
        .map(|p| p.id.clone())
        .unwrap_or_default();
    let summary = state
        .blocking(move |s| {
            if let Some(device) = &simulated {
                pump(s, device, &device_id, &batch_owned)?;
            }
            let to = s
                .ledger
                .read(|b| with_store(b, |st| st.last_seq(&device_id)))?;
            telemetry_summary(s, &device_id, &signals, after, to)
        })
        .await?;
    let mut payload = summary;
    payload["phase"] = json!(phase);
    state
        .append(
            vec![culture_record(
                batch,
                "culture.phase_telemetry_summarized",
                payload,
                actor,
                &ctx.site,
            )],
            None,
        )
        .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct TelemetryQuery {
    pub signal: Option<String>,
    #[serde(default)]
    pub after_seq: u64,
    pub limit: Option<usize>,
}

/// Most samples one telemetry request returns.
pub const TELEMETRY_PAGE_MAX: usize = 50_000;

pub async fn telemetry<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<TelemetryQuery>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_readable(&caller, &ctx)?;
    let limit = q.limit.unwrap_or(5_000).min(TELEMETRY_PAGE_MAX);
    let signals: Vec<String> = batch_device(&state, &ctx)
        .and_then(|d| d.signals())
        .unwrap_or_else(|| {
            cellops_device::SIGNALS
                .iter()
                .map(|(n, _)| (*n).to_string())
                .collect()
        });
    let wanted = match &q.signal {
        Some(name) => Some(signals.iter().position(|s| s == name).ok_or_else(|| {
            ApiError::bad_request(
                "signal",
                format!("unknown signal {name:?}: use one of {}", signals.join(", ")),
            )
        })? as u16),
        None => None,
    };
    let device_id = ctx.opened.device.clone();
    let after = q.after_seq;
    let samples = state
        .blocking(move |s| {
            let chunks = s
                .ledger
                .read(|b| with_store(b, |st| st.chunks(&device_id, after + 1, u64::MAX >> 1)))?;
            let mut out = Vec::new();
            for c in chunks {
                for sample in decode(&c.data).map_err(ApiError::internal)? {
                    if sample.seq > after
                        && wanted.is_none_or(|w| w == sample.signal)
                        && out.len() < limit
                    {
                        out.push(sample);
                    }
                }
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({
        "signals": signals,
        "samples": samples.iter().map(|s| json!([s.seq, s.at_unix_ms, s.signal, s.value])).collect::<Vec<_>>(),
        "next_after_seq": samples.last().map(|s| s.seq),
    })))
}

// ------------------------------------------------------------------ faults

#[derive(Deserialize)]
pub struct FaultBody {
    /// `contamination`, `sensor_drift`, `sensor_stuck`, `temperature_loss`, `power_loss`.
    pub fault: String,
    pub duration_h: Option<f64>,
    pub ambient_c: Option<f64>,
    pub bacteria_per_ml: Option<f64>,
    pub sensor: Option<String>,
    pub per_h: Option<f64>,
}

/// Parses a fault as the API and CLI name it.
pub fn parse_fault(body: &FaultBody) -> ApiResult<Fault> {
    let sensor = || -> ApiResult<SensorKind> {
        let name = body
            .sensor
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("sensor", "name the sensor"))?;
        SensorKind::parse(name)
            .ok_or_else(|| ApiError::bad_request("sensor", format!("unknown sensor {name:?}")))
    };
    Ok(match body.fault.as_str() {
        "contamination" => Fault::Contamination {
            bacteria_per_ml: body.bacteria_per_ml.unwrap_or(1e3),
        },
        "sensor_drift" => Fault::SensorDrift {
            sensor: sensor()?,
            per_h: body.per_h.unwrap_or(0.05),
        },
        "sensor_stuck" => Fault::SensorStuck { sensor: sensor()? },
        "temperature_loss" => Fault::TemperatureLoss {
            ambient_c: body.ambient_c.unwrap_or(22.0),
        },
        "power_loss" => Fault::PowerLoss {
            ambient_c: body.ambient_c.unwrap_or(22.0),
        },
        other => {
            return Err(ApiError::bad_request(
                "fault",
                format!(
                    "unknown fault {other:?}: use contamination, sensor_drift, sensor_stuck, temperature_loss or power_loss"
                ),
            ));
        }
    })
}

pub async fn inject_fault<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<FaultBody>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let ctx = load(&state, &id)?;
    caller.require(&[Role::Operator, Role::SiteAdmin, Role::Trainer], &ctx.site)?;
    let device = sim_device(&state, &id)
        .ok_or_else(|| ApiError::conflict(format!("batch {id} has no simulated device")))?;
    let fault = parse_fault(&body)?;
    device
        .lock()
        .expect("device lock")
        .inject_fault(fault, body.duration_h)
        .map_err(|e| ApiError::bad_request("fault", e.to_string()))?;
    let payload = json!({
        "device": ctx.opened.device,
        "fault": body.fault,
        "detail": format!("{fault:?}"),
        "duration_h": body.duration_h,
        // What a restarted server needs to inject it again into the rebuilt device.
        "parameters": {
            "ambient_c": body.ambient_c,
            "bacteria_per_ml": body.bacteria_per_ml,
            "sensor": body.sensor,
            "per_h": body.per_h,
        },
        "at": batch_now(&state, &id, &ctx).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    });
    let out = state
        .append(
            vec![culture_record(
                &id,
                "culture.fault_injected",
                payload,
                &caller.user.id,
                &ctx.site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(json!({ "record": record_view(&out.records[0]) })))
}

// ------------------------------------------------------------------ the demo operator

#[derive(Deserialize)]
pub struct SimulateBody {
    /// Simulated hours to advance (default 24).
    pub hours: Option<f64>,
    /// Run until the batch completes, is held or aborted (at most `SIMULATE_DAYS_MAX`).
    #[serde(default)]
    pub to_completion: bool,
    /// Password for the e-signatures the recipe asks of the operator.
    pub password: Option<String>,
    pub user_id: Option<String>,
    /// A second person who confirms the four-eyes steps (`verifies` in the recipe) of work
    /// the operator did; without one the demo operator stops there (`awaiting_verification`).
    pub verifier: Option<VerifierBody>,
    /// Stop when this step is due, before starting or evaluating it (`step_due`): a person
    /// does it by hand (e.g. the harvest decision on the batch view).
    pub stop_at: Option<String>,
}

/// A second person, authenticated by their own password (as the bedside second checker).
#[derive(Deserialize, Clone)]
pub struct VerifierBody {
    pub user_id: String,
    pub password: String,
}

/// Longest simulated advance in one call, days.
pub const SIMULATE_DAYS_MAX: f64 = 40.0;
/// Simulated time an operator or sampling step takes, minutes.
pub const OPERATOR_STEP_MINUTES: i64 = 15;
/// Longest device advance between telemetry flushes, hours.
const ADVANCE_SLICE_H: f64 = 12.0;

/// Why the demo operator stopped.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulationStop {
    /// The requested time passed.
    TimeReached,
    /// The batch completed.
    Completed,
    /// A deviation holds the batch.
    OnHold,
    /// The batch was aborted.
    Aborted,
    /// The device is faulted or in a safe state (a deviation was opened).
    DeviceFaulted,
    /// A four-eyes step is due whose verified step the operator performed, and no
    /// verifier was given: a second person confirms it (`POST .../steps/{step}/complete`).
    AwaitingVerification,
    /// The step asked for with `stop_at` is due.
    StepDue,
}

/// Advances a simulated batch by `hours` (or to completion), doing every step as the demo
/// operator would: device programs run on the twin, operator steps are confirmed (e-signed
/// with `signature.password` where the recipe asks), sampling steps record the twin's
/// values, decisions use the twin's prediction, device alarms open deviations. Returns why
/// it stopped. The Rust face of `POST /api/batches/{id}/simulate` (one argument per field
/// of its body).
#[allow(clippy::too_many_arguments)]
pub async fn simulate_batch<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    batch: &str,
    hours: Option<f64>,
    to_completion: bool,
    signature: &SignatureBody,
    verifier: Option<&VerifierBody>,
    stop_at: Option<&str>,
) -> ApiResult<SimulationStop> {
    let lock = command_lock(state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(state, batch)?;
    check_batch_role(caller, &ctx)?;
    let device = sim_device(state, batch).ok_or_else(|| ApiError::conflict(format!("batch {batch} has no simulated device in this server (it runs on a real device, or it is no longer running)")))?;
    let hours = if to_completion {
        SIMULATE_DAYS_MAX * 24.0
    } else {
        hours.unwrap_or(24.0)
    };
    if !(hours > 0.0 && hours <= SIMULATE_DAYS_MAX * 24.0) {
        return Err(ApiError::bad_request(
            "hours",
            format!(
                "advance by more than 0 and at most {} hours",
                SIMULATE_DAYS_MAX * 24.0
            ),
        ));
    }
    let until = batch_now(state, batch, &ctx) + time::Duration::seconds_f64(hours * 3600.0);
    let actor = caller.user.id.clone();
    loop {
        state.sync().await?;
        let ctx = load(state, batch)?;
        match ctx.state.status() {
            BatchStatus::Completed => return Ok(SimulationStop::Completed),
            BatchStatus::Aborted => return Ok(SimulationStop::Aborted),
            BatchStatus::NotStarted | BatchStatus::Running => {}
        }
        if !ctx.state.holding_deviations().is_empty() {
            return Ok(SimulationStop::OnHold);
        }
        if report_alarms(state, batch, &ctx, &device).await? {
            return Ok(SimulationStop::DeviceFaulted);
        }
        let now = batch_now(state, batch, &ctx);
        if now >= until {
            return Ok(SimulationStop::TimeReached);
        }
        let Some(due) = ctx.state.due_step().cloned() else {
            return Ok(SimulationStop::Completed);
        };
        let step = ctx
            .recipe
            .step_at(due.position)
            .cloned()
            .ok_or_else(|| ApiError::internal("due step not in recipe"))?;
        let active = ctx.state.active_step().is_some();
        if !active && stop_at == Some(step.id.as_str()) {
            return Ok(SimulationStop::StepDue);
        }
        let lots = || -> BTreeMap<String, LotNumber> {
            step.kind
                .materials()
                .iter()
                .filter_map(|u| {
                    LotNumber::parse(&format!("SIM-{}", u.material))
                        .ok()
                        .map(|l| (u.material.clone(), l))
                })
                .collect()
        };
        match &step.kind {
            StepKind::Device(_) => {
                if !active {
                    start_step_as(state, &actor, batch, &step.id, lots(), None).await?;
                    continue;
                }
                let end = device.lock().expect("device lock").program_end();
                let target = end
                    .unwrap_or(until)
                    .min(until)
                    .min(now + time::Duration::seconds_f64(ADVANCE_SLICE_H * 3600.0));
                advance_device(state, &device, &ctx, batch, target).await?;
                let status = device
                    .lock()
                    .expect("device lock")
                    .status()
                    .map_err(ApiError::internal)?;
                let finished = status.state == DeviceState::Completed
                    && status.program.as_ref().is_some_and(|p| p.step == step.id);
                if finished {
                    let at = device.lock().expect("device lock").now();
                    complete_device_step(state, &ctx, &step.id, &status, at, &actor).await?;
                }
            }
            StepKind::Operator(o) => {
                let second = match &o.verifies {
                    Some(verified)
                        if ctx
                            .state
                            .performers(verified)
                            .iter()
                            .any(|p| p.as_str() == actor) =>
                    {
                        match verifier {
                            Some(v) => Some(verifier_caller(state, v)?),
                            None => return Ok(SimulationStop::AwaitingVerification),
                        }
                    }
                    _ => None,
                };
                let done = now + time::Duration::minutes(OPERATOR_STEP_MINUTES);
                advance_device(state, &device, &ctx, batch, done).await?;
                if !active {
                    start_step_as(state, &actor, batch, &step.id, lots(), None).await?;
                }
                let records = match (&second, verifier) {
                    (Some(second), Some(v)) => {
                        let body = SignatureBody {
                            password: Some(v.password.clone()),
                            user_id: Some(v.user_id.clone()),
                        };
                        complete_operator_as(state, second, batch, &step.id, &body, None).await?
                    }
                    _ => {
                        complete_operator_as(state, caller, batch, &step.id, signature, None)
                            .await?
                    }
                };
                summarize_if_phase_ended(state, batch, &actor, &records).await?;
            }
            StepKind::Sampling(s) => {
                let done = now + time::Duration::minutes(OPERATOR_STEP_MINUTES);
                advance_device(state, &device, &ctx, batch, done).await?;
                if !active {
                    start_step_as(state, &actor, batch, &step.id, lots(), None).await?;
                }
                let truth = device.lock().expect("device lock").true_state();
                let seed = ctx.opened.simulation.map_or(1, |s| s.seed);
                let results: BTreeMap<String, f64> = s
                    .limits
                    .iter()
                    .map(|(p, limit)| {
                        (
                            p.clone(),
                            demo::modeled_value(p, &truth, seed)
                                .unwrap_or_else(|| demo::nominal_value(limit)),
                        )
                    })
                    .collect();
                state.sync().await?;
                let ctx = load(state, batch)?;
                let at = batch_now(state, batch, &ctx);
                let by = PersonId::parse(&actor).map_err(ApiError::internal)?;
                let records = run(
                    state,
                    batch,
                    &actor,
                    Command::RecordSampleResults {
                        step: step.id.clone(),
                        by,
                        at,
                        results,
                    },
                    Vec::new(),
                    None,
                )
                .await?;
                summarize_if_phase_ended(state, batch, &actor, &records).await?;
            }
            StepKind::Decision(_) => {
                let records = evaluate_as(state, &actor, batch, &step.id, None, None, None).await?;
                summarize_if_phase_ended(state, batch, &actor, &records).await?;
            }
        }
    }
}

/// Completes the device step `step` whose program the device reports completed (`status`),
/// for the simulated and the real path alike: with harvest results, `culture.units_harvested`
/// and, with harvest settings, the custody harvest in the same append; then the phase's
/// telemetry summary when the step ended its phase.
async fn complete_device_step<B: Backend>(
    state: &AppState<B>,
    ctx: &Ctx,
    step: &str,
    status: &DeviceStatus,
    at: OffsetDateTime,
    actor: &str,
) -> ApiResult<Vec<Record>> {
    let batch = ctx.opened.batch.as_str();
    let mut extra = Vec::new();
    if let Some(cells) = status.results.get("harvested_viable_cells") {
        let mut harvested = harvest_units(ctx, &status.results, *cells);
        if let Some(settings) = &ctx.opened.harvest {
            let (custody, made) = harvest_custody(state, ctx, settings, actor, to_timestamp(at))?;
            harvested["lot_units"] = harvested["units"].take();
            harvested["units"] = json!(made.units);
            harvested["in_process_unit"] = json!(made.parent);
            extra.extend(custody);
        }
        extra.insert(
            0,
            culture_record(
                batch,
                "culture.units_harvested",
                harvested,
                actor,
                &ctx.site,
            ),
        );
    }
    let records = run(
        state,
        batch,
        actor,
        Command::CompleteDeviceStep {
            step: step.to_string(),
            at,
        },
        extra,
        None,
    )
    .await?;
    summarize_if_phase_ended(state, batch, actor, &records).await?;
    Ok(records)
}

/// Checked when a batch starts with harvest settings: a valid product code, a shelf life,
/// and a starting unit that custody knows at the batch's site.
fn check_harvest_settings<B: Backend>(
    state: &AppState<B>,
    harvest: &HarvestSettings,
    starting_unit: &str,
    site: &SiteId,
) -> ApiResult<()> {
    ProductCode::parse(&harvest.product_code)
        .ok()
        .filter(|p| p.as_str().len() == cellops_isbt::PRODUCT_CODE_CHARS)
        .ok_or_else(|| {
            ApiError::bad_request(
                "harvest.product_code",
                format!(
                    "`{}` is not an ISBT 128 product code with its division (8 characters, e.g. S2000100)",
                    harvest.product_code
                ),
            )
        })?;
    if !(1..=HARVEST_SHELF_LIFE_HOURS_MAX).contains(&harvest.shelf_life_hours) {
        return Err(ApiError::bad_request(
            "harvest.shelf_life_hours",
            format!(
                "give the harvested product's shelf life, 1 to {HARVEST_SHELF_LIFE_HOURS_MAX} hours"
            ),
        ));
    }
    let code = UnitCode::parse(starting_unit).map_err(|e| {
        ApiError::bad_request(
            "starting_unit",
            format!("{e}; a batch whose harvest makes custody units starts from a unit in custody"),
        )
    })?;
    let custody = state.custody.lock().expect("custody lock");
    let unit = custody.unit(&code).ok_or_else(|| {
        ApiError::bad_request(
            "starting_unit",
            format!("{code} is not in custody: create or receive it first (POST /api/units), or start without harvest settings"),
        )
    })?;
    if unit.site() != site {
        return Err(ApiError::bad_request(
            "starting_unit",
            format!("{code} is held at site {}, not {site}", unit.site()),
        ));
    }
    Ok(())
}

/// Longest shelf life of a harvested product (five years; cryopreserved lots keep three).
pub const HARVEST_SHELF_LIFE_HOURS_MAX: u32 = 24 * 365 * 5;

/// What a harvest made in custody.
struct HarvestMade {
    parent: String,
    units: Vec<String>,
}

/// The batch's in-process unit: the starting unit, or what it was formulated or split into,
/// followed while the unit is used up and has exactly one child (the culture's own line).
fn in_process_unit(custody: &CustodyState, starting: UnitCode) -> Result<UnitCode, String> {
    let mut code = starting;
    for _ in 0..IN_PROCESS_DEPTH_MAX {
        let unit = custody
            .unit(&code)
            .ok_or_else(|| format!("{code} is not in custody"))?;
        if unit.status() != UnitStatus::Consumed {
            return Ok(code);
        }
        let children: Vec<UnitCode> = custody
            .units()
            .filter(|u| u.parents().contains(&code))
            .map(|u| u.code())
            .collect();
        match children[..] {
            [only] => code = only,
            [] => return Err(format!("{code} is used up and has no descendant")),
            _ => {
                return Err(format!(
                    "{code} was split into {} units: which one is in culture is not known",
                    children.len()
                ));
            }
        }
    }
    Err(format!(
        "{starting} has more than {IN_PROCESS_DEPTH_MAX} generations"
    ))
}

const IN_PROCESS_DEPTH_MAX: usize = 16;

/// The custody records of a harvest: the harvested unit (the in-process unit's DIN with the
/// settings' product code) formulated from the batch's in-process unit, at its location,
/// with the harvest step's material lots as reagent lots. Refused (409) with the custody
/// rule when the in-process unit cannot be used (then the harvest step stays in progress).
fn harvest_custody<B: Backend>(
    state: &AppState<B>,
    ctx: &Ctx,
    settings: &HarvestSettings,
    actor: &str,
    at: Option<Timestamp>,
) -> ApiResult<(Vec<NewRecord>, HarvestMade)> {
    let refused = |why: String| {
        ApiError::conflict(format!(
            "the harvest of batch {} cannot be recorded in custody: {why}",
            ctx.opened.batch
        ))
    };
    let at = at.ok_or_else(|| refused("the harvest time is out of range".into()))?;
    let starting =
        UnitCode::parse(&ctx.opened.starting_unit).map_err(|e| refused(e.to_string()))?;
    let product = ProductCode::parse(&settings.product_code).map_err(|e| refused(e.to_string()))?;
    let by = UserId::parse(actor).map_err(ApiError::internal)?;
    let custody = state.custody.lock().expect("custody lock");
    let parent = in_process_unit(&custody, starting).map_err(refused)?;
    let location = custody
        .unit(&parent)
        .map(|u| u.location().clone())
        .ok_or_else(|| refused(format!("{parent} is not in custody")))?;
    let child = UnitCode::new(parent.din(), product);
    let reagent_lots = ctx
        .state
        .active_step()
        .map(|a| {
            a.lots
                .iter()
                .filter_map(|l| ReagentLot::parse(l.lot.as_str()).ok())
                .collect()
        })
        .unwrap_or_default();
    let command = Derive {
        operation: Derivation::Formulate,
        parents: vec![parent],
        children: vec![ChildUnit {
            code: child,
            expires_at: at.plus_us(i64::from(settings.shelf_life_hours) * 3_600_000_000),
        }],
        reagent_lots,
        site: ctx.site.clone(),
        location,
        by,
        at,
    };
    let events = decide_derive(&custody, &command).map_err(|e| refused(e.to_string()))?;
    let stream = super::custody::unit_stream(&parent);
    let records = events
        .iter()
        .map(|e| super::custody::custody_record(e, &stream, actor, &ctx.site))
        .collect();
    Ok((
        records,
        HarvestMade {
            parent: parent.to_string(),
            units: vec![child.to_string()],
        },
    ))
}

/// The verifier as a caller without a session: their e-signature then needs their user id
/// and password (checked, with lockout, like any signature).
fn verifier_caller<B: Backend>(state: &AppState<B>, v: &VerifierBody) -> ApiResult<Caller> {
    let user = state
        .accounts
        .lock()
        .expect("accounts lock")
        .user(&v.user_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(
                "verifier.user_id",
                format!(
                    "{} is not a user; name the second person's user id",
                    v.user_id
                ),
            )
        })?;
    Ok(Caller {
        user,
        session_hash: None,
    })
}

/// Unit codes made from a harvest: one per dose (`<starting unit>-D<nn>`); an allogeneic
/// lot is split into doses of 1e8 CAR+ cells (at most 99), other products give one unit.
fn harvest_units(ctx: &Ctx, results: &BTreeMap<String, f64>, cells: f64) -> Value {
    let car = results.get("harvested_car_positive_cells").copied();
    let doses = match (ctx.opened.product.as_str(), car) {
        ("allo-car-t-lot", Some(c)) => ((c / 1e8).floor() as u64).clamp(1, 99),
        _ => 1,
    };
    let units: Vec<String> = (1..=doses)
        .map(|i| format!("{}-D{i:02}", ctx.opened.starting_unit))
        .collect();
    json!({ "units": units, "harvested_viable_cells": cells, "harvested_car_positive_cells": car, "results": results })
}

async fn advance_device<B: Backend>(
    state: &AppState<B>,
    device: &Arc<Mutex<SimulatedDevice>>,
    ctx: &Ctx,
    batch: &str,
    target: OffsetDateTime,
) -> ApiResult<()> {
    let device = device.clone();
    let device_id = ctx.opened.device.clone();
    let batch = batch.to_string();
    state
        .blocking(move |s| {
            loop {
                let now = device.lock().expect("device lock").now();
                if now >= target {
                    return Ok(());
                }
                let step =
                    (now + time::Duration::seconds_f64(ADVANCE_SLICE_H * 3600.0)).min(target);
                device
                    .lock()
                    .expect("device lock")
                    .advance_to(step)
                    .map_err(ApiError::internal)?;
                pump(s, &device, &device_id, &batch)?;
            }
        })
        .await
}

/// Opens a deviation for each new device alarm; true when the device cannot go on.
async fn report_alarms<B: Backend>(
    state: &AppState<B>,
    batch: &str,
    ctx: &Ctx,
    device: &Arc<Mutex<SimulatedDevice>>,
) -> ApiResult<bool> {
    let status = device
        .lock()
        .expect("device lock")
        .status()
        .map_err(ApiError::internal)?;
    for alarm in &status.alarms {
        let key = (batch.to_string(), alarm.code.clone());
        let new = state.read_model(|r: &mut BatchRuntime| r.reported_alarms.insert(key));
        if new {
            let by = PersonId::parse(CONTROLLER_PERSON).expect("valid id");
            let at = batch_now(state, batch, ctx);
            run(
                state,
                batch,
                CONTROLLER_PERSON,
                Command::OpenDeviation {
                    description: format!(
                        "device {} alarm {}: {}",
                        ctx.opened.device, alarm.code, alarm.message
                    ),
                    blocks_release: true,
                    hold: false,
                    by,
                    at,
                },
                Vec::new(),
                None,
            )
            .await?;
        }
    }
    Ok(matches!(
        status.state,
        DeviceState::Faulted | DeviceState::Safe
    ))
}

pub async fn simulate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
    AppJson(body): AppJson<SimulateBody>,
) -> ApiResult<Json<Value>> {
    let signature = SignatureBody {
        password: body.password.clone(),
        user_id: body.user_id.clone(),
    };
    let stop = simulate_batch(
        &state,
        &caller,
        &id,
        body.hours,
        body.to_completion,
        &signature,
        body.verifier.as_ref(),
        body.stop_at.as_deref(),
    )
    .await?;
    state.sync().await?;
    let mut status = batch_status_value(&state, &id)?;
    status["stopped"] = json!(stop);
    Ok(Json(status))
}

// ------------------------------------------------------------------ batch record and review

fn ebr_input<B: Backend>(state: &AppState<B>, ctx: &Ctx) -> ebr::EbrInput {
    ebr::EbrInput {
        opened: ctx.opened.clone(),
        recipe: ctx.recipe.clone(),
        state: ctx.state.clone(),
        records: ctx.entry.records.clone(),
        harvested_units: ctx.entry.harvested_units.clone(),
        prediction: ctx.entry.prediction.clone(),
        generated_at: state.clock.now().to_string(),
    }
}

pub async fn record_html<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_readable(&caller, &ctx)?;
    let html = ebr::html(&ebr_input(&state, &ctx));
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

pub async fn record_pdf<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_readable(&caller, &ctx)?;
    let pdf = ebr::pdf(&ebr_input(&state, &ctx));
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

pub async fn review_list<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let ctx = load(&state, &id)?;
    check_readable(&caller, &ctx)?;
    let input = ebr_input(&state, &ctx);
    Ok(Json(json!({
        "batch": id,
        "exceptions": ebr::exceptions(&input),
        "review_signed": ctx.entry.review_signed,
    })))
}

pub async fn sign_review<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<SignatureBody>,
) -> ApiResult<Json<Value>> {
    let lock = command_lock(&state);
    let _guard = lock.lock().await;
    state.sync().await?;
    let ctx = load(&state, &id)?;
    caller.require(&[Role::QaReviewer, Role::QaReleaser], &ctx.site)?;
    if ctx.state.status() != BatchStatus::Completed && ctx.state.status() != BatchStatus::Aborted {
        return Err(ApiError::conflict(
            "the batch record is reviewed once the batch completed or was aborted",
        ));
    }
    if ctx.entry.review_signed.is_some() {
        return Err(ApiError::conflict("the batch record is already reviewed"));
    }
    let input = ebr_input(&state, &ctx);
    let exceptions = ebr::exceptions(&input);
    let record_sha256 = hex::encode(Sha256::digest(ebr::html(&input).as_bytes()));
    let payload = json!({
        "exceptions": exceptions,
        "records_reviewed_to_seq": ctx.entry.records.last().map(|r| r.seq),
        "batch_record_html_sha256": record_sha256,
    });
    let out = state
        .append(
            vec![culture_record(
                &id,
                "culture.record_reviewed",
                payload,
                &caller.user.id,
                &ctx.site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    let signed = esign(
        &state,
        &caller,
        &sign_body(out.records[0].seq, "Reviewed", &body)?,
        None,
    )
    .await?;
    Ok(Json(
        json!({ "review": record_view(&out.records[0]), "signature": record_view(&signed) }),
    ))
}
