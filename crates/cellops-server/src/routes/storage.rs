//! Cryo storage over HTTP: freezers and dewars, put-away and retrieval by scan (with the
//! custody store/issue scan recorded in the same append), probe readings with alarms, and
//! the cold-chain read model ([`ColdModel`]) that the shipment and dose-bank routes share.
//! The decisions are `cellops-cold`'s and `cellops-custody`'s.

use super::parse_site;
use crate::accounts::SignedPayload;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::openapi::RouteDoc;
use crate::projection::Projection;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use cellops_cold::{
    AlarmRule, AssessmentDecision, ColdError, ColdEvent, ColdState, PutAway, Reading, Refusal,
    Retrieve, RetrievePurpose, StorageConfig, StorageId, StorageKind, decide_acknowledge,
    decide_configure_storage, decide_put_away, decide_readings, decide_retrieve, storage_review,
    suggest_position,
};
use cellops_custody::{CustodyStep, ExpectedStep, LocationId, UnitCode, decide_scan};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord, Record};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The ledger event types of the cold chain (storage, shipments, excursions, dose bank).
pub const EVENT_TYPES: &[EventType] = cellops_cold::COLD_EVENT_TYPES;

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/storage",
        "Configure a freezer or dewar: racks, boxes, slots, alarm rule, storage limit",
        true,
        &[
            "site",
            "storage",
            "kind",
            "racks",
            "boxes_per_rack",
            "slots_per_box",
            "alarm_above_c",
            "delay_minutes",
            "reading_gap_minutes_max",
            "stored_days_max",
        ],
    ),
    (
        "get",
        "/api/storage",
        "Freezers and dewars at the caller's sites with occupancy and alarms",
        true,
        &[],
    ),
    (
        "get",
        "/api/storage/{storage}/suggest",
        "The next free position of a freezer or dewar",
        true,
        &[],
    ),
    (
        "post",
        "/api/storage/put-away",
        "Put a unit away by scanning unit and position (wrong or occupied position: 409, recorded)",
        true,
        &[
            "site",
            "scanned_unit",
            "scanned_position",
            "expected_position",
        ],
    ),
    (
        "post",
        "/api/storage/retrieve",
        "Retrieve a unit by scanning unit and position; for use or shipping checks expiry, storage limit, FEFO and excursions",
        true,
        &[
            "site",
            "scanned_unit",
            "scanned_position",
            "purpose",
            "expected_unit",
            "fefo_override",
        ],
    ),
    (
        "post",
        "/api/storage/{storage}/readings",
        "Ingest probe readings; alarms and excursions are recorded",
        true,
        &["readings"],
    ),
    (
        "post",
        "/api/storage/{storage}/acknowledge",
        "Acknowledge the active alarm with what was done",
        true,
        &["reason"],
    ),
    (
        "get",
        "/api/storage/review",
        "Stored units expired, past their storage limit, or within horizon_days of either (site=)",
        true,
        &[],
    ),
    (
        "get",
        "/api/cold/units/{code}",
        "A unit's storage position, shipments, excursions and whether the cold chain lets it be used",
        true,
        &[],
    ),
];

/// The cold-chain read model: [`ColdState`] plus the hashes of assessment records, so that
/// only a signature over the exact assessment record counts.
#[derive(Default)]
pub struct ColdModel {
    /// The state.
    pub state: ColdState,
    assessment_hashes: BTreeMap<u64, String>,
}

impl Projection for ColdModel {
    fn apply(&mut self, r: &Record) {
        if r.event_type == "esig.signed" {
            self.apply_signature(r);
            return;
        }
        if !ColdEvent::is_cold_type(&r.event_type) {
            return;
        }
        match ColdEvent::from_json(&r.payload) {
            Ok(event) => {
                if matches!(event, ColdEvent::ExcursionAssessed { .. }) {
                    self.assessment_hashes.insert(r.seq, hex::encode(r.hash));
                }
                self.state.apply(&event, r.seq);
            }
            Err(e) => tracing::error!(seq = r.seq, error = %e, "unreadable cold-chain record"),
        }
    }
}

impl ColdModel {
    /// An excursion assessment takes effect when QA e-signs its record as Approved (the
    /// signature endpoint checks the role; here the hash must match the assessment).
    fn apply_signature(&mut self, r: &Record) {
        let Some(sig) = r.signature.as_ref().filter(|s| s.meaning == "Approved") else {
            return;
        };
        let Ok(p) = serde_json::from_str::<SignedPayload>(&r.payload) else {
            return;
        };
        if self.assessment_hashes.get(&p.signs_seq) != Some(&p.signs_hash) {
            return;
        }
        if let Ok(signer) = UserId::parse(&sig.signer) {
            self.state
                .sign_assessment(p.signs_seq, r.seq, signer, sig.signed_at);
        }
    }

    /// The excursions the units `units` (DIN + product code, as QC registers them) went
    /// through, as release readiness reads them: assessed (acceptable or unacceptable) only
    /// once the excursion's deviation is closed on an e-signed assessment. Units that are
    /// not unit codes have no excursions.
    pub fn excursion_facts(&self, units: &[String]) -> Vec<cellops_qc::ExcursionFact> {
        let mut facts = Vec::new();
        for unit in units {
            let Ok(code) = UnitCode::parse(unit) else {
                continue;
            };
            for (id, e) in self.state.excursions_of(&code) {
                let what = match e.episode.temperature_c_max {
                    Some(t) => format!("up to {t} °C for {:.0} min", e.episode.duration_minutes()),
                    None => format!("no data for {:.0} min", e.episode.duration_minutes()),
                };
                facts.push(cellops_qc::ExcursionFact {
                    id: id.as_str().to_string(),
                    unit: unit.clone(),
                    summary: format!("{what}; deviation {}", e.deviation.state),
                    assessment: match e.signed_decision() {
                        None => cellops_qc::ExcursionAssessment::NotAssessed,
                        Some(AssessmentDecision::Accept) => {
                            cellops_qc::ExcursionAssessment::Acceptable
                        }
                        Some(AssessmentDecision::Reject) => {
                            cellops_qc::ExcursionAssessment::Unacceptable
                        }
                    },
                });
            }
        }
        facts
    }
}

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/storage", post(configure::<B>).get(list::<B>))
        .route("/api/storage/{storage}/suggest", get(suggest::<B>))
        .route("/api/storage/put-away", post(put_away::<B>))
        .route("/api/storage/retrieve", post(retrieve::<B>))
        .route("/api/storage/{storage}/readings", post(readings::<B>))
        .route("/api/storage/{storage}/acknowledge", post(acknowledge::<B>))
        .route("/api/storage/review", get(review::<B>))
        .route("/api/cold/units/{code}", get(unit_view::<B>))
}

impl From<ColdError> for ApiError {
    fn from(e: ColdError) -> ApiError {
        let code = e.reason_code();
        let status = if code.starts_with("unknown_") {
            StatusCode::NOT_FOUND
        } else if code.starts_with("invalid_")
            || matches!(
                code,
                "batch_size" | "reason" | "logger_file" | "event_json" | "event_version"
            )
        {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::CONFLICT
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The ledger record of a cold-chain event on `stream`.
pub(crate) fn cold_record(
    event: &ColdEvent,
    stream: &str,
    actor: &str,
    site: &SiteId,
) -> NewRecord {
    NewRecord::new(
        stream,
        event.type_name(),
        1,
        event.to_json_value(),
        actor,
        site.as_str(),
    )
}

/// The ledger record of a custody event, on the unit's stream (as the custody routes do).
pub(crate) fn custody_record(
    event: &cellops_custody::Event,
    code: &UnitCode,
    actor: &str,
    site: &SiteId,
) -> NewRecord {
    let payload: Value =
        serde_json::from_str(&event.to_json()).expect("custody events serialize to JSON");
    let stream = format!("unit/{}", code.to_string().to_ascii_lowercase());
    NewRecord::new(&stream, event.type_name(), 1, payload, actor, site.as_str())
}

pub(crate) fn caller_id(caller: &Caller) -> ApiResult<UserId> {
    UserId::parse(&caller.user.id).map_err(ApiError::internal)
}

/// Reads a unit from scanner text (ISBT 128 data structures) or `DIN-PRODUCT` text; returns
/// the unit and the scanner text the custody scan checks (built from the code when typed).
pub(crate) fn read_unit(field: &str, text: &str) -> ApiResult<(UnitCode, String)> {
    if let Ok(code) = UnitCode::parse(text) {
        let label = format!("={}00=<{}", code.din().as_str(), code.product().as_str());
        return Ok((code, label));
    }
    let scan = cellops_isbt::parse_scan(text)
        .map_err(|e| ApiError::bad_request(field, format!("the scan is unreadable: {e}")))?;
    let din = scan
        .din()
        .ok_or_else(|| ApiError::bad_request(field, "the scan has no DIN: scan the unit label"))?;
    match scan.first(cellops_isbt::StructureKind::ProductCode) {
        Some(cellops_isbt::DataStructure::ProductCode(p)) => {
            Ok((UnitCode::new(din.din(), *p), text.to_string()))
        }
        _ => Err(ApiError::bad_request(
            field,
            "the scan has no product code: scan the unit label",
        )),
    }
}

/// Records a refusal (custody scan or storage scan) and answers 409 with its message.
async fn refuse<B: Backend>(
    state: &AppState<B>,
    record: NewRecord,
    error: ApiError,
) -> ApiResult<Json<Value>> {
    state.append(vec![record], None).await?;
    Err(error)
}

/// Runs a custody scan at `step`; on refusal records it and returns the 409 to send.
pub(crate) async fn custody_scan<B: Backend>(
    state: &AppState<B>,
    step: CustodyStep,
    expected: UnitCode,
    scanned: &str,
    site: &SiteId,
    location: &LocationId,
    user: &UserId,
) -> ApiResult<Result<NewRecord, ApiError>> {
    let decided = decide_scan(
        &state.custody.lock().expect("custody lock"),
        &ExpectedStep {
            step,
            unit: expected,
            site: site.clone(),
        },
        scanned,
        location,
        user,
        state.clock.now(),
    );
    match decided {
        Ok(event) => Ok(Ok(custody_record(&event, &expected, user.as_str(), site))),
        Err(refusal) => {
            let error = ApiError::new(
                StatusCode::CONFLICT,
                refusal.error.reason_code(),
                refusal.error.to_string(),
            )
            .field("scanned_unit");
            state
                .append(
                    vec![custody_record(
                        &refusal.event,
                        &expected,
                        user.as_str(),
                        site,
                    )],
                    None,
                )
                .await?;
            Ok(Err(error))
        }
    }
}

fn storage_stream(id: &StorageId) -> String {
    format!("storage/{}", id.as_str().to_ascii_lowercase())
}

fn location_of(storage: &StorageId) -> LocationId {
    LocationId::parse(storage.as_str())
        .expect("a storage id is a valid location id (same characters, same length)")
}

fn parse_storage(field: &str, text: &str) -> ApiResult<StorageId> {
    StorageId::parse(text).map_err(|e| ApiError::from(e).field(field))
}

#[derive(Deserialize)]
pub struct ConfigureBody {
    pub site: String,
    pub storage: String,
    pub kind: StorageKind,
    pub racks: u16,
    pub boxes_per_rack: u16,
    pub slots_per_box: u16,
    pub alarm_above_c: f64,
    #[serde(default)]
    pub delay_minutes: u32,
    pub reading_gap_minutes_max: u32,
    pub stored_days_max: u32,
}

/// Configures a freezer or dewar (site administrators).
pub async fn configure<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ConfigureBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::SiteAdmin], &site)?;
    let storage = parse_storage("storage", &body.storage)?;
    state.sync().await?;
    let configured_at = state
        .read_model(|m: &mut ColdModel| m.state.storage(&storage).map(|s| s.config.site.clone()));
    if let Some(other) = configured_at.filter(|other| other != &site) {
        return Err(ApiError::conflict(format!(
            "storage {storage} is configured at site {other}: a storage id belongs to one site"
        ))
        .field("storage"));
    }
    let config = StorageConfig {
        storage: storage.clone(),
        kind: body.kind,
        site: site.clone(),
        racks: body.racks,
        boxes_per_rack: body.boxes_per_rack,
        slots_per_box: body.slots_per_box,
        rule: AlarmRule {
            alarm_above_c: body.alarm_above_c,
            delay_minutes: body.delay_minutes,
            reading_gap_minutes_max: body.reading_gap_minutes_max,
        },
        stored_days_max: body.stored_days_max,
    };
    let event = state.read_model(|m: &mut ColdModel| {
        decide_configure_storage(&m.state, &config, &caller_id(&caller)?, state.clock.now())
            .map_err(ApiError::from)
    })?;
    state
        .append(
            vec![cold_record(
                &event,
                &storage_stream(&storage),
                &caller.user.id,
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(json!({ "storage": config })))
}

/// Freezers and dewars at the caller's sites.
pub async fn list<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let storages = state.read_model(|m: &mut ColdModel| {
        m.state
            .storages()
            .filter(|s| caller.user.has_any_role_at(&s.config.site))
            .map(|s| {
                let occupied = m.state.stored_units().filter(|u| u.position.storage() == &s.config.storage).count();
                json!({ "storage": s.config, "occupied": occupied, "alarm": s.alarm, "last_reading": s.last_reading, "alarms_total": s.alarms_total })
            })
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "storages": storages })))
}

fn storage_site<B: Backend>(state: &AppState<B>, storage: &StorageId) -> ApiResult<SiteId> {
    state
        .read_model(|m: &mut ColdModel| m.state.storage(storage).map(|s| s.config.site.clone()))
        .ok_or_else(|| {
            ApiError::from(ColdError::UnknownStorage {
                storage: storage.clone(),
            })
        })
}

/// The next free position.
pub async fn suggest<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(storage): Path<String>,
) -> ApiResult<Json<Value>> {
    let storage = parse_storage("storage", &storage)?;
    state.sync().await?;
    caller.require_site(&storage_site(&state, &storage)?)?;
    let position = state.read_model(|m: &mut ColdModel| suggest_position(&m.state, &storage));
    Ok(Json(json!({ "position": position })))
}

/// Who handles storage.
pub(crate) const STORAGE_ROLES: [Role; 4] = [
    Role::Operator,
    Role::Logistics,
    Role::QcAnalyst,
    Role::SiteAdmin,
];

#[derive(Deserialize)]
pub struct PutAwayBody {
    pub site: String,
    /// The unit label as scanned (or `DIN-PRODUCT`).
    pub scanned_unit: String,
    /// The position label as scanned (`dewar-01/R1/B2/P3`).
    pub scanned_position: String,
    /// The position assigned (e.g. from `/suggest`); the scan must match it.
    pub expected_position: Option<String>,
}

/// Puts a unit away: the custody store scan and the put-away are recorded together; a wrong,
/// missing or occupied position is refused with 409 and the refusal recorded.
pub async fn put_away<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<PutAwayBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&STORAGE_ROLES, &site)?;
    let (unit, scanned_text) = read_unit("scanned_unit", &body.scanned_unit)?;
    let expected_position = body
        .expected_position
        .as_deref()
        .map(cellops_cold::Position::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).field("expected_position"))?;
    let user = caller_id(&caller)?;
    let now = state.clock.now();
    super::training::require_qualified(&state, &user, &site, "storage.putaway", now).await?;
    state.sync().await?;
    let location = cellops_cold::Position::parse(&body.scanned_position)
        .map(|p| location_of(p.storage()))
        .unwrap_or_else(|_| LocationId::parse("storage").expect("valid location"));
    let scan = match custody_scan(
        &state,
        CustodyStep::Store,
        unit,
        &scanned_text,
        &site,
        &location,
        &user,
    )
    .await?
    {
        Ok(record) => record,
        Err(error) => return Err(error),
    };
    let (patient, expires_at) = {
        let custody = state.custody.lock().expect("custody lock");
        let u = custody
            .unit(&unit)
            .expect("the custody scan accepted the unit, so it exists");
        (u.patient().cloned(), u.expires_at())
    };
    let command = PutAway {
        unit,
        scanned_position: body.scanned_position.clone(),
        expected_position,
        patient,
        expires_at,
        site: site.clone(),
        by: user.clone(),
        at: now,
    };
    let decided = state.read_model(|m: &mut ColdModel| decide_put_away(&m.state, &command));
    match decided {
        Ok(event) => {
            let ColdEvent::PutAway { position, .. } = &event else {
                unreachable!("decide_put_away returns PutAway")
            };
            let stream = storage_stream(position.storage());
            let out = state
                .append(
                    vec![scan, cold_record(&event, &stream, user.as_str(), &site)],
                    idempotency_key(&headers),
                )
                .await?;
            Ok(Json(
                json!({ "unit": unit.to_string(), "position": position, "seq": out.records.last().map(|r| r.seq) }),
            ))
        }
        Err(refusal) => refuse_storage(&state, *refusal, &user, &site).await,
    }
}

async fn refuse_storage<B: Backend>(
    state: &AppState<B>,
    refusal: Refusal,
    user: &UserId,
    site: &SiteId,
) -> ApiResult<Json<Value>> {
    let stream = format!("storage-refusals/{}", site.as_str());
    let error = ApiError::from(refusal.error).field("scanned_position");
    refuse(
        state,
        cold_record(&refusal.event, &stream, user.as_str(), site),
        error,
    )
    .await
}

#[derive(Deserialize)]
pub struct RetrieveBody {
    pub site: String,
    /// The unit label as scanned.
    pub scanned_unit: String,
    /// The position label as scanned.
    pub scanned_position: String,
    /// use, ship, transfer or discard.
    pub purpose: RetrievePurpose,
    /// The unit the task asks for (a pick list); the scan must be this unit.
    pub expected_unit: Option<String>,
    /// Why first-expiry-first-out is overridden.
    pub fefo_override: Option<String>,
}

/// Retrieves a unit: custody issue scan (wrong unit: 409) and storage retrieval (wrong
/// position, expired, storage limit, FEFO, excursions: 409), recorded together.
pub async fn retrieve<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<RetrieveBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&STORAGE_ROLES, &site)?;
    let (scanned, scanned_text) = read_unit("scanned_unit", &body.scanned_unit)?;
    let expected = match &body.expected_unit {
        Some(t) => UnitCode::parse(t).map_err(|e| ApiError::from(e).field("expected_unit"))?,
        None => scanned,
    };
    let user = caller_id(&caller)?;
    let now = state.clock.now();
    super::training::require_qualified(&state, &user, &site, "storage.putaway", now).await?;
    state.sync().await?;
    let location = cellops_cold::Position::parse(&body.scanned_position)
        .map(|p| location_of(p.storage()))
        .unwrap_or_else(|_| LocationId::parse("storage").expect("valid location"));
    let command = Retrieve {
        unit: expected,
        scanned_position: body.scanned_position.clone(),
        purpose: body.purpose,
        fefo_override: body.fefo_override.clone(),
        site: site.clone(),
        by: user.clone(),
        at: now,
    };
    // The storage decision first: a unit that is not where the scan says is a position error.
    let decided = state.read_model(|m: &mut ColdModel| decide_retrieve(&m.state, &command));
    let event = match decided {
        Ok(e) => e,
        Err(refusal) => return refuse_storage(&state, *refusal, &user, &site).await,
    };
    let scan = match custody_scan(
        &state,
        CustodyStep::Issue,
        expected,
        &scanned_text,
        &site,
        &location,
        &user,
    )
    .await?
    {
        Ok(record) => record,
        Err(error) => return Err(error),
    };
    let ColdEvent::Retrieved { position, .. } = &event else {
        unreachable!("decide_retrieve returns Retrieved")
    };
    let stream = storage_stream(position.storage());
    let out = state
        .append(
            vec![scan, cold_record(&event, &stream, user.as_str(), &site)],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "unit": expected.to_string(), "position": position, "purpose": body.purpose, "seq": out.records.last().map(|r| r.seq) }),
    ))
}

#[derive(Deserialize)]
pub struct ReadingsBody {
    pub readings: Vec<Reading>,
}

/// Ingests probe readings; alarms raised or cleared and excursions opened are recorded with
/// them in one append.
pub async fn readings<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(storage): Path<String>,
    AppJson(body): AppJson<ReadingsBody>,
) -> ApiResult<Json<Value>> {
    let storage = parse_storage("storage", &storage)?;
    state.sync().await?;
    let site = storage_site(&state, &storage)?;
    caller.require(&STORAGE_ROLES, &site)?;
    let events = state.read_model(|m: &mut ColdModel| {
        decide_readings(&m.state, &storage, &body.readings).map_err(ApiError::from)
    })?;
    let stream = storage_stream(&storage);
    let records = events
        .iter()
        .map(|e| cold_record(e, &stream, &caller.user.id, &site))
        .collect();
    state.append(records, idempotency_key(&headers)).await?;
    let types: Vec<&str> = events.iter().skip(1).map(|e| e.type_name()).collect();
    let alarm = state
        .read_model(|m: &mut ColdModel| m.state.storage(&storage).and_then(|s| s.alarm.clone()));
    Ok(Json(
        json!({ "recorded": body.readings.len(), "events": types, "alarm": alarm }),
    ))
}

#[derive(Deserialize)]
pub struct AcknowledgeBody {
    pub reason: String,
}

/// Acknowledges the active alarm (who and what was done).
pub async fn acknowledge<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(storage): Path<String>,
    AppJson(body): AppJson<AcknowledgeBody>,
) -> ApiResult<Json<Value>> {
    let storage = parse_storage("storage", &storage)?;
    state.sync().await?;
    let site = storage_site(&state, &storage)?;
    caller.require(&STORAGE_ROLES, &site)?;
    let user = caller_id(&caller)?;
    let event = state.read_model(|m: &mut ColdModel| {
        decide_acknowledge(&m.state, &storage, &body.reason, &user, state.clock.now())
            .map_err(ApiError::from)
    })?;
    state
        .append(
            vec![cold_record(
                &event,
                &storage_stream(&storage),
                user.as_str(),
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(json!({ "acknowledged": true })))
}

#[derive(Deserialize)]
pub struct ReviewQuery {
    pub site: String,
    pub horizon_days: Option<u32>,
}

/// Longest review horizon, days.
const REVIEW_HORIZON_DAYS_MAX: u32 = 3_650;

/// Stored units at a site needing attention (expired, past the storage limit, or soon).
pub async fn review<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<ReviewQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let horizon = q.horizon_days.unwrap_or(30).min(REVIEW_HORIZON_DAYS_MAX);
    state.sync().await?;
    let items = state.read_model(|m: &mut ColdModel| {
        storage_review(&m.state, state.clock.now(), horizon)
            .into_iter()
            .filter(|(s, _)| m.state.storage(s.position.storage()).is_some_and(|st| st.config.site == site))
            .map(|(s, reason)| json!({ "unit": s.unit.to_string(), "position": s.position, "expires_at": s.expires_at, "storage_limit_at": s.storage_limit_at, "reason": reason }))
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "units": items })))
}

/// Why the cold chain blocks `unit`, if it does: an unassessed or rejected excursion, or a
/// shipment without logger data. For release, dispatch and the bedside (#10).
pub fn cold_chain_block<B: Backend>(state: &AppState<B>, unit: &UnitCode) -> Option<ColdError> {
    state.read_model(|m: &mut ColdModel| cellops_cold::check_usable(&m.state, unit).err())
}

/// The unassessed excursions of `unit` (ids), for QA's release view.
pub fn unassessed_excursions<B: Backend>(state: &AppState<B>, unit: &UnitCode) -> Vec<String> {
    state.read_model(|m: &mut ColdModel| {
        m.state
            .unassessed_excursions(unit)
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    })
}

/// A unit's cold-chain view.
pub async fn unit_view<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = UnitCode::parse(&code).map_err(|e| ApiError::from(e).field("code"))?;
    state.sync().await?;
    let site = state
        .custody
        .lock()
        .expect("custody lock")
        .unit(&code)
        .map(|u| u.site().clone())
        .ok_or_else(|| ApiError::not_found(format!("unit {code} is not known to custody")))?;
    caller.require_site(&site)?;
    let view = state.read_model(|m: &mut ColdModel| {
        let excursions: Vec<Value> = m
            .state
            .excursions_of(&code)
            .into_iter()
            .map(|(id, e)| json!({ "excursion": id, "source": e.source, "episode": e.episode, "assessment": e.assessment, "deviation": e.deviation }))
            .collect();
        let shipments: Vec<&str> = m.state.shipments().filter(|s| s.units.contains(&code)).map(|s| s.shipment.as_str()).collect();
        let block = cellops_cold::check_usable(&m.state, &code).err();
        json!({
            "unit": code.to_string(),
            "stored": m.state.stored(&code),
            "shipments": shipments,
            "excursions": excursions,
            "usable": block.is_none(),
            "blocked": block.map(|e| json!({ "reason": e.reason_code(), "message": e.to_string() })),
        })
    });
    Ok(Json(view))
}

/// Parses a timestamp body field, naming the field.
pub(crate) fn parse_time(field: &str, text: &str) -> ApiResult<Timestamp> {
    Timestamp::parse(text).map_err(|e| ApiError::bad_request(field, e.to_string()))
}
