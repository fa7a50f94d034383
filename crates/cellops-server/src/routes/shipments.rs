//! Shipping and cold chain over HTTP: qualified dry shippers and their charges, loggers,
//! shipments (pack with custody ship scans, dispatch, logger file upload with excursion
//! detection, receipt with custody receive scans and hand-off, the logger watchdog), and the
//! deviation every excursion opens, which QA investigates, assesses and closes with an
//! e-signature (Approved) before the units may be used.

use super::ledger::{SignBody, esign};
use super::parse_site;
use super::qc::QcModel;
use super::storage::{
    ColdModel, caller_id, cold_record, custody_record, custody_scan, parse_time, read_unit,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::openapi::RouteDoc;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use cellops_cold::{
    AssessmentDecision, ColdError, ColdEvent, ExcursionId, ExcursionLimits, ExcursionSource,
    GenericCsv, LoggerFormat, LoggerId, PackShipment, SHIPMENT_MARGIN_HOURS_MIN, ShipmentCondition,
    ShipmentId, ShipperId, TemperatureUnit, decide_assess, decide_charge_shipper, decide_close,
    decide_dispatch, decide_investigate, decide_logger_upload, decide_pack, decide_qualify_shipper,
    decide_receipt_gap, decide_receive, decide_register_logger, hold_remaining_hours, import_csv,
    logger_watchdog,
};
use cellops_custody::{
    CustodyStep, HandOff, LocationId, ReceiptCondition, UnitCode, decide_hand_off,
};
use cellops_domain::{Role, SiteId, UserId};
use cellops_ledger::{Backend, NewRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/shippers",
        "Record a dry shipper's qualification: report, expiry, validated hold time",
        true,
        &[
            "site",
            "shipper",
            "model",
            "qualification_report",
            "qualification_expires_at",
            "validated_hold_hours",
        ],
    ),
    (
        "get",
        "/api/shippers",
        "Dry shippers at the caller's sites with qualification, charges and hold left",
        true,
        &[],
    ),
    (
        "post",
        "/api/shippers/{shipper}/charges",
        "Record an LN2 charge of a dry shipper",
        true,
        &[],
    ),
    (
        "post",
        "/api/loggers",
        "Register a temperature logger with its calibration and interval",
        true,
        &[
            "site",
            "logger",
            "calibration_certificate",
            "calibration_due",
            "interval_seconds",
        ],
    ),
    (
        "post",
        "/api/shipments",
        "Pack units into a charged, qualified shipper with a logger (hold ≥ transit + margin; units released; custody ship scans)",
        true,
        &[
            "site",
            "shipment",
            "to_site",
            "units",
            "shipper",
            "logger",
            "transit_hours",
            "margin_hours",
            "alarm_above_c",
            "reject_above_c",
            "gap_minutes_max",
        ],
    ),
    (
        "get",
        "/api/shipments/{shipment}",
        "A shipment with its logger summary and excursions",
        true,
        &[],
    ),
    (
        "post",
        "/api/shipments/{shipment}/dispatch",
        "Hand the shipment to the courier",
        true,
        &[],
    ),
    (
        "post",
        "/api/shipments/{shipment}/logger",
        "Upload the logger file (generic CSV or vendor-a); excursions are detected and recorded",
        true,
        &[
            "format",
            "csv",
            "timestamp_column",
            "temperature_column",
            "unit",
            "delimiter",
            "utc_offset",
        ],
    ),
    (
        "post",
        "/api/shipments/{shipment}/receive",
        "Receive a shipment: scan every unit, record the condition, take custody",
        true,
        &["site", "scanned_units", "condition", "location"],
    ),
    (
        "get",
        "/api/cold/logger-watchdog",
        "Shipments from or to a site (site=) whose temperature has not been known for more than silence_minutes (default 15) now, and received ones without logger data",
        true,
        &[],
    ),
    (
        "get",
        "/api/excursions",
        "Excursions at a site (site=) with their deviations, open deviations first",
        true,
        &[],
    ),
    (
        "post",
        "/api/excursions/{excursion}/investigate",
        "QA records the investigation of an excursion's deviation (findings)",
        true,
        &["findings"],
    ),
    (
        "post",
        "/api/excursions/{excursion}/assess",
        "QA's assessment of an investigated excursion (accept or reject, justification)",
        true,
        &["decision", "justification"],
    ),
    (
        "post",
        "/api/excursions/{excursion}/close",
        "QA closes the deviation: e-signs the assessment as Approved (password) and puts its decision in force",
        true,
        &["password", "user_id"],
    ),
];

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/api/shippers",
            post(qualify_shipper::<B>).get(list_shippers::<B>),
        )
        .route("/api/shippers/{shipper}/charges", post(charge::<B>))
        .route("/api/loggers", post(register_logger::<B>))
        .route("/api/shipments", post(pack::<B>))
        .route("/api/shipments/{shipment}", get(show::<B>))
        .route("/api/shipments/{shipment}/dispatch", post(dispatch::<B>))
        .route("/api/shipments/{shipment}/logger", post(upload_logger::<B>))
        .route("/api/shipments/{shipment}/receive", post(receive::<B>))
        .route("/api/cold/logger-watchdog", get(watchdog::<B>))
        .route("/api/excursions", get(list_excursions::<B>))
        .route(
            "/api/excursions/{excursion}/investigate",
            post(investigate::<B>),
        )
        .route("/api/excursions/{excursion}/assess", post(assess::<B>))
        .route("/api/excursions/{excursion}/close", post(close::<B>))
}

const LOGISTICS_ROLES: [Role; 3] = [Role::Logistics, Role::Operator, Role::SiteAdmin];
const QA_ROLES: [Role; 2] = [Role::QaReviewer, Role::QaReleaser];

fn id<T>(field: &str, text: &str, parse: impl Fn(&str) -> Result<T, ColdError>) -> ApiResult<T> {
    parse(text).map_err(|e| ApiError::from(e).field(field))
}

async fn append_one<B: Backend>(
    state: &AppState<B>,
    event: &ColdEvent,
    stream: &str,
    caller: &Caller,
    site: &SiteId,
    headers: &HeaderMap,
) -> ApiResult<u64> {
    let out = state
        .append(
            vec![cold_record(event, stream, &caller.user.id, site)],
            idempotency_key(headers),
        )
        .await?;
    Ok(out.records[0].seq)
}

#[derive(Deserialize)]
pub struct QualifyBody {
    pub site: String,
    pub shipper: String,
    pub model: String,
    pub qualification_report: String,
    pub qualification_expires_at: String,
    pub validated_hold_hours: f64,
}

/// Records a shipper qualification (site admin or QA).
pub async fn qualify_shipper<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<QualifyBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    caller.require(
        &[Role::SiteAdmin, Role::QaReviewer, Role::QaReleaser],
        &site,
    )?;
    let shipper = id("shipper", &b.shipper, ShipperId::parse)?;
    let expires = parse_time("qualification_expires_at", &b.qualification_expires_at)?;
    let event = decide_qualify_shipper(
        &shipper,
        &b.model,
        &b.qualification_report,
        expires,
        b.validated_hold_hours,
        &site,
        &caller_id(&caller)?,
        state.clock.now(),
    )?;
    let seq = append_one(
        &state,
        &event,
        &format!("shipper/{}", shipper.as_str().to_ascii_lowercase()),
        &caller,
        &site,
        &headers,
    )
    .await?;
    Ok(Json(json!({ "shipper": shipper, "seq": seq })))
}

/// Shippers at the caller's sites.
pub async fn list_shippers<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let now = state.clock.now();
    let shippers = state.read_model(|m: &mut ColdModel| {
        m.state
            .shippers()
            .filter(|s| caller.user.has_any_role_at(&s.site))
            .map(|s| json!({ "shipper": s, "hold_remaining_hours": hold_remaining_hours(s, now), "qualified": s.qualification_expires_at > now }))
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "shippers": shippers })))
}

/// Records a charge.
pub async fn charge<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(shipper): Path<String>,
) -> ApiResult<Json<Value>> {
    let shipper = id("shipper", &shipper, ShipperId::parse)?;
    state.sync().await?;
    let site = state
        .read_model(|m: &mut ColdModel| m.state.shipper(&shipper).map(|s| s.site.clone()))
        .ok_or_else(|| {
            ApiError::from(ColdError::UnknownShipper {
                shipper: shipper.clone(),
            })
        })?;
    caller.require(&LOGISTICS_ROLES, &site)?;
    let user = caller_id(&caller)?;
    let event = state.read_model(|m: &mut ColdModel| {
        decide_charge_shipper(&m.state, &shipper, &user, state.clock.now())
    })?;
    let seq = append_one(
        &state,
        &event,
        &format!("shipper/{}", shipper.as_str().to_ascii_lowercase()),
        &caller,
        &site,
        &headers,
    )
    .await?;
    Ok(Json(json!({ "charged": true, "seq": seq })))
}

#[derive(Deserialize)]
pub struct LoggerBody {
    pub site: String,
    pub logger: String,
    pub calibration_certificate: String,
    pub calibration_due: String,
    pub interval_seconds: u32,
}

/// Registers a logger.
pub async fn register_logger<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<LoggerBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    caller.require(&[Role::SiteAdmin, Role::QaReviewer, Role::Logistics], &site)?;
    let logger = id("logger", &b.logger, LoggerId::parse)?;
    let due = parse_time("calibration_due", &b.calibration_due)?;
    let event = decide_register_logger(
        &logger,
        &b.calibration_certificate,
        due,
        b.interval_seconds,
        &caller_id(&caller)?,
        state.clock.now(),
    )?;
    let seq = append_one(
        &state,
        &event,
        &format!("logger/{}", logger.as_str().to_ascii_lowercase()),
        &caller,
        &site,
        &headers,
    )
    .await?;
    Ok(Json(json!({ "logger": logger, "seq": seq })))
}

/// Why `unit` may not leave the CPC for release reasons: its batch (or an ancestor's batch)
/// is not released or released at risk in QC. None when it may.
pub fn release_block<B: Backend>(state: &AppState<B>, unit: &UnitCode) -> Option<String> {
    let mut codes = vec![*unit];
    if let Ok(trace) = state.custody.lock().expect("custody lock").trace(unit) {
        codes.extend(trace.ancestors);
    }
    let status = state.read_model(|m: &mut QcModel| {
        codes
            .iter()
            .find_map(|c| m.release_status_of_unit(&c.to_string()))
    });
    match status {
        Some(s) if s.permits_use() => None,
        Some(s) => Some(format!(
            "{unit} is not released (QC status {}): release the batch, or release it at risk with a signed justification",
            s.name()
        )),
        None => Some(format!(
            "no QC batch lists {unit} or the units it was made from: register and release the batch first"
        )),
    }
}

#[derive(Deserialize)]
pub struct PackBody {
    pub site: String,
    pub shipment: String,
    pub to_site: String,
    /// Unit labels as scanned (or `DIN-PRODUCT`).
    pub units: Vec<String>,
    pub shipper: String,
    pub logger: String,
    pub transit_hours: f64,
    pub margin_hours: Option<f64>,
    /// The product's alarm limit, °C (default −150).
    pub alarm_above_c: Option<f64>,
    /// The product's reject limit, °C (default −120).
    pub reject_above_c: Option<f64>,
    /// Longest step without logger data that is not a gap, minutes (default: two logger
    /// intervals).
    pub gap_minutes_max: Option<u32>,
}

/// Packs a shipment: qualification, hold time, logger, release and excursion checks; each
/// unit gets a custody ship scan; everything recorded in one append.
pub async fn pack<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<PackBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    let to_site = parse_site("to_site", &b.to_site)?;
    caller.require(&LOGISTICS_ROLES, &site)?;
    let shipment = id("shipment", &b.shipment, ShipmentId::parse)?;
    let shipper = id("shipper", &b.shipper, ShipperId::parse)?;
    let logger = id("logger", &b.logger, LoggerId::parse)?;
    let units = b
        .units
        .iter()
        .enumerate()
        .map(|(i, t)| read_unit(&format!("units[{i}]"), t))
        .collect::<ApiResult<Vec<_>>>()?;
    let limits = ExcursionLimits {
        alarm_above_c: b
            .alarm_above_c
            .unwrap_or(ExcursionLimits::CRYO_DEFAULT.alarm_above_c),
        reject_above_c: b
            .reject_above_c
            .unwrap_or(ExcursionLimits::CRYO_DEFAULT.reject_above_c),
        gap_minutes_max: b.gap_minutes_max,
    };
    if limits.reject_above_c < limits.alarm_above_c {
        return Err(ApiError::bad_request(
            "reject_above_c",
            "the reject limit must be at or above the alarm limit",
        ));
    }
    let user = caller_id(&caller)?;
    let now = state.clock.now();
    super::training::require_qualified(&state, &user, &site, "shipment.pack", now).await?;
    state.sync().await?;
    for (i, (code, _)) in units.iter().enumerate() {
        if let Some(why) = release_block(&state, code) {
            return Err(ApiError::conflict(why).field(&format!("units[{i}]")));
        }
    }
    let command = PackShipment {
        shipment: shipment.clone(),
        units: units.iter().map(|(c, _)| *c).collect(),
        shipper,
        logger,
        from_site: site.clone(),
        to_site,
        transit_hours: b.transit_hours,
        margin_hours: b.margin_hours.unwrap_or(SHIPMENT_MARGIN_HOURS_MIN),
        limits,
        by: user.clone(),
        at: now,
    };
    let packed = state.read_model(|m: &mut ColdModel| decide_pack(&m.state, &command))?;
    let location = LocationId::parse(
        &format!("shipper-{}", command.shipper.as_str())
            .chars()
            .take(64)
            .collect::<String>(),
    )
    .map_err(ApiError::internal)?;
    let mut records: Vec<NewRecord> = Vec::new();
    for (code, text) in &units {
        match custody_scan(
            &state,
            CustodyStep::Ship,
            *code,
            text,
            &site,
            &location,
            &user,
        )
        .await?
        {
            Ok(r) => records.push(r),
            Err(e) => return Err(e),
        }
    }
    records.push(cold_record(
        &packed,
        &shipment_stream(&shipment),
        user.as_str(),
        &site,
    ));
    let out = state.append(records, idempotency_key(&headers)).await?;
    Ok(Json(
        json!({ "shipment": shipment, "packed": packed.to_json_value(), "seq": out.records.last().map(|r| r.seq) }),
    ))
}

fn shipment_stream(id: &ShipmentId) -> String {
    format!("shipment/{}", id.as_str().to_ascii_lowercase())
}

/// The shipment's sites (from, to); 404 when unknown.
fn shipment_sites<B: Backend>(state: &AppState<B>, id: &ShipmentId) -> ApiResult<(SiteId, SiteId)> {
    state
        .read_model(|m: &mut ColdModel| {
            m.state
                .shipment(id)
                .map(|s| (s.from_site.clone(), s.to_site.clone()))
        })
        .ok_or_else(|| {
            ApiError::from(ColdError::UnknownShipment {
                shipment: id.clone(),
            })
        })
}

/// A shipment.
pub async fn show<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(shipment): Path<String>,
) -> ApiResult<Json<Value>> {
    let shipment = id("shipment", &shipment, ShipmentId::parse)?;
    state.sync().await?;
    let (from, to) = shipment_sites(&state, &shipment)?;
    if !caller.user.has_any_role_at(&from) {
        caller.require_site(&to)?;
    }
    let view = state.read_model(|m: &mut ColdModel| {
        let s = m.state.shipment(&shipment).expect("checked above");
        let excursions: Vec<Value> = m
            .state
            .excursions()
            .filter(|(_, e)| e.source == ExcursionSource::Shipment(shipment.clone()))
            .map(|(id, e)| json!({ "excursion": id, "episode": e.episode, "assessment": e.assessment, "deviation": e.deviation }))
            .collect();
        json!({ "shipment": s, "excursions": excursions })
    });
    Ok(Json(view))
}

/// Hands the shipment to the courier.
pub async fn dispatch<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(shipment): Path<String>,
) -> ApiResult<Json<Value>> {
    let shipment = id("shipment", &shipment, ShipmentId::parse)?;
    state.sync().await?;
    let (from, _) = shipment_sites(&state, &shipment)?;
    caller.require(&LOGISTICS_ROLES, &from)?;
    let user = caller_id(&caller)?;
    let event = state.read_model(|m: &mut ColdModel| {
        decide_dispatch(&m.state, &shipment, &user, state.clock.now())
    })?;
    let seq = append_one(
        &state,
        &event,
        &shipment_stream(&shipment),
        &caller,
        &from,
        &headers,
    )
    .await?;
    Ok(Json(json!({ "dispatched": true, "seq": seq })))
}

#[derive(Deserialize)]
pub struct LoggerUploadBody {
    /// `generic` or `vendor-a`.
    pub format: String,
    /// The file's text.
    pub csv: String,
    pub timestamp_column: Option<String>,
    pub temperature_column: Option<String>,
    /// celsius, fahrenheit or kelvin.
    pub unit: Option<TemperatureUnit>,
    pub delimiter: Option<char>,
    /// Offset for times without a zone, e.g. `+09:00`.
    pub utc_offset: Option<String>,
}

/// The logger format described by an upload body.
pub fn logger_format(b: &LoggerUploadBody) -> ApiResult<LoggerFormat> {
    match b.format.as_str() {
        "vendor-a" => Ok(LoggerFormat::VendorA),
        "generic" => {
            let d = GenericCsv::default();
            Ok(LoggerFormat::Generic(GenericCsv {
                delimiter: b.delimiter.unwrap_or(d.delimiter),
                timestamp_column: b.timestamp_column.clone().unwrap_or(d.timestamp_column),
                temperature_column: b.temperature_column.clone().unwrap_or(d.temperature_column),
                unit: b.unit.unwrap_or(d.unit),
                utc_offset: b.utc_offset.clone(),
            }))
        }
        _ => Err(ApiError::bad_request("format", "use generic or vendor-a")),
    }
}

/// Uploads the logger file: its SHA-256, samples, warnings and the excursions found against
/// the shipment's limits are recorded; the units stay blocked until QA signs assessments.
pub async fn upload_logger<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(shipment): Path<String>,
    AppJson(b): AppJson<LoggerUploadBody>,
) -> ApiResult<Json<Value>> {
    let shipment = id("shipment", &shipment, ShipmentId::parse)?;
    state.sync().await?;
    let (from, to) = shipment_sites(&state, &shipment)?;
    let site = if caller.require(&Role::WRITERS, &to).is_ok() {
        to
    } else {
        caller.require(&Role::WRITERS, &from).map(|_| from)?
    };
    let format = logger_format(&b)?;
    let trace = import_csv(&b.csv, &format).map_err(|e| ApiError::from(e).field("csv"))?;
    let sha = hex::encode(Sha256::digest(b.csv.as_bytes()));
    let user = caller_id(&caller)?;
    let events = state.read_model(|m: &mut ColdModel| {
        decide_logger_upload(
            &m.state,
            &shipment,
            &trace,
            &sha,
            format.name(),
            &user,
            state.clock.now(),
        )
    })?;
    let stream = shipment_stream(&shipment);
    let records = events
        .iter()
        .map(|e| cold_record(e, &stream, user.as_str(), &site))
        .collect();
    let out = state.append(records, idempotency_key(&headers)).await?;
    let seq = out.records.first().map(|r| r.seq);
    let Some(ColdEvent::LoggerUploaded {
        excursions,
        warnings,
        samples,
        ..
    }) = events.first()
    else {
        unreachable!("decide_logger_upload returns LoggerUploaded first")
    };
    Ok(Json(
        json!({ "seq": seq, "file_sha256": sha, "samples": samples.len(), "warnings": warnings, "excursions": excursions }),
    ))
}

#[derive(Deserialize)]
pub struct ReceiveBody {
    pub site: String,
    /// Every unit's label as scanned at unpacking.
    pub scanned_units: Vec<String>,
    pub condition: ShipmentCondition,
    pub location: String,
}

/// Receives a shipment: every unit of it must be scanned (custody receive scan), the caller
/// takes custody from the packer with the condition found, and the receipt is recorded.
pub async fn receive<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(shipment): Path<String>,
    AppJson(b): AppJson<ReceiveBody>,
) -> ApiResult<Json<Value>> {
    let shipment = id("shipment", &shipment, ShipmentId::parse)?;
    let site = parse_site("site", &b.site)?;
    caller.require(&Role::WRITERS, &site)?;
    let location =
        LocationId::parse(&b.location).map_err(|e| ApiError::from(e).field("location"))?;
    let scanned = b
        .scanned_units
        .iter()
        .enumerate()
        .map(|(i, t)| read_unit(&format!("scanned_units[{i}]"), t))
        .collect::<ApiResult<Vec<_>>>()?;
    state.sync().await?;
    let user = caller_id(&caller)?;
    let now = state.clock.now();
    let received = state.read_model(|m: &mut ColdModel| {
        decide_receive(&m.state, &shipment, &site, &b.condition, &user, now)
    })?;
    let expected: Vec<UnitCode> = state.read_model(|m: &mut ColdModel| {
        m.state
            .shipment(&shipment)
            .map(|s| s.units.clone())
            .unwrap_or_default()
    });
    let mut got: Vec<UnitCode> = scanned.iter().map(|(c, _)| *c).collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    if got != want {
        let missing: Vec<String> = want
            .iter()
            .filter(|u| !got.contains(u))
            .map(|u| u.to_string())
            .collect();
        let extra: Vec<String> = got
            .iter()
            .filter(|u| !want.contains(u))
            .map(|u| u.to_string())
            .collect();
        return Err(ApiError::conflict(format!("the scanned units do not match shipment {shipment}: missing {missing:?}, not in the shipment {extra:?}")).field("scanned_units"));
    }
    let mut records = Vec::new();
    for (code, text) in &scanned {
        match custody_scan(
            &state,
            CustodyStep::Receive,
            *code,
            text,
            &site,
            &location,
            &user,
        )
        .await?
        {
            Ok(r) => records.push(r),
            Err(e) => return Err(e),
        }
        let custodian = state
            .custody
            .lock()
            .expect("custody lock")
            .unit(code)
            .map(|u| u.custodian().clone());
        if let Some(from) = custodian.filter(|c| c != &user) {
            let hand_off = HandOff {
                code: *code,
                from,
                to: user.clone(),
                site: site.clone(),
                location: location.clone(),
                condition: ReceiptCondition {
                    acceptable: b.condition.acceptable,
                    temperature_c: b.condition.temperature_c,
                    note: b.condition.note.clone(),
                },
                at: now,
            };
            for e in decide_hand_off(&state.custody.lock().expect("custody lock"), &hand_off)? {
                records.push(custody_record(&e, code, user.as_str(), &site));
            }
        }
    }
    records.push(cold_record(
        &received,
        &shipment_stream(&shipment),
        user.as_str(),
        &site,
    ));
    // Logger data uploaded in transit that ends long before this receipt: a data gap.
    let gap = state.read_model(|m: &mut ColdModel| decide_receipt_gap(&m.state, &shipment, now));
    for e in &gap {
        records.push(cold_record(
            e,
            &shipment_stream(&shipment),
            user.as_str(),
            &site,
        ));
    }
    let out = state.append(records, idempotency_key(&headers)).await?;
    let blocked: Vec<Value> = expected
        .iter()
        .filter_map(|u| super::storage::cold_chain_block(&state, u).map(|e| json!({ "unit": u.to_string(), "reason": e.reason_code(), "message": e.to_string() })))
        .collect();
    Ok(Json(
        json!({ "received": true, "seq": out.records.last().map(|r| r.seq), "blocked": blocked }),
    ))
}

#[derive(Deserialize)]
pub struct ExcursionQuery {
    pub site: String,
}

/// The site an excursion's records belong to: the shipment's origin or the storage's site.
fn excursion_site(m: &ColdModel, id: &ExcursionId) -> Option<SiteId> {
    let e = m.state.excursion(id)?;
    match &e.source {
        ExcursionSource::Shipment(s) => m.state.shipment(s).map(|s| s.from_site.clone()),
        ExcursionSource::Storage(s) => m.state.storage(s).map(|s| s.config.site.clone()),
    }
}

/// Excursions at a site, unassessed first.
pub async fn list_excursions<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<ExcursionQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    state.sync().await?;
    let mut list = state.read_model(|m: &mut ColdModel| {
        m.state
            .excursions()
            .filter(|(id, _)| excursion_site(m, id).as_ref() == Some(&site))
            .map(|(id, e)| (e.signed_decision().is_some(), json!({ "excursion": id, "source": e.source, "episode": e.episode, "units": e.units.iter().map(|u| u.to_string()).collect::<Vec<_>>(), "assessment": e.assessment, "deviation": e.deviation })))
            .collect::<Vec<_>>()
    });
    list.sort_by_key(|(done, _)| *done);
    Ok(Json(
        json!({ "excursions": list.into_iter().map(|(_, v)| v).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
pub struct AssessBody {
    pub decision: AssessmentDecision,
    pub justification: String,
}

/// The site (shipment origin or storage site) and ledger stream of an excursion; 404 when
/// unknown.
fn excursion_home<B: Backend>(
    state: &AppState<B>,
    excursion: &ExcursionId,
) -> ApiResult<(SiteId, String)> {
    state
        .read_model(|m: &mut ColdModel| {
            let source = m.state.excursion(excursion).map(|e| e.source.clone())?;
            let stream = match source {
                ExcursionSource::Shipment(s) => shipment_stream(&s),
                ExcursionSource::Storage(s) => {
                    format!("storage/{}", s.as_str().to_ascii_lowercase())
                }
            };
            excursion_site(m, excursion).map(|site| (site, stream))
        })
        .ok_or_else(|| {
            ApiError::from(ColdError::UnknownExcursion {
                excursion: excursion.clone(),
            })
        })
}

#[derive(Deserialize)]
pub struct InvestigateBody {
    /// What was looked at and found.
    pub findings: String,
}

/// Records QA's investigation of an excursion's deviation (the first step to closing it).
pub async fn investigate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(excursion): Path<String>,
    AppJson(b): AppJson<InvestigateBody>,
) -> ApiResult<Json<Value>> {
    let excursion = id("excursion", &excursion, ExcursionId::parse)?;
    state.sync().await?;
    let (site, stream) = excursion_home(&state, &excursion)?;
    caller.require(&QA_ROLES, &site)?;
    let user: UserId = caller_id(&caller)?;
    let event = state.read_model(|m: &mut ColdModel| {
        decide_investigate(&m.state, &excursion, &b.findings, &user, state.clock.now())
    })?;
    let seq = append_one(&state, &event, &stream, &caller, &site, &headers).await?;
    Ok(Json(json!({ "seq": seq, "deviation": "investigating" })))
}

/// Records QA's assessment of an investigated excursion. It unblocks nothing by itself:
/// close the deviation (`POST /api/excursions/{id}/close`, with the password) to e-sign it
/// as Approved and put the decision in force.
pub async fn assess<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(excursion): Path<String>,
    AppJson(b): AppJson<AssessBody>,
) -> ApiResult<Json<Value>> {
    let excursion = id("excursion", &excursion, ExcursionId::parse)?;
    state.sync().await?;
    let (site, stream) = excursion_home(&state, &excursion)?;
    caller.require(&QA_ROLES, &site)?;
    let user: UserId = caller_id(&caller)?;
    let event = state.read_model(|m: &mut ColdModel| {
        decide_assess(
            &m.state,
            &excursion,
            b.decision,
            &b.justification,
            &user,
            state.clock.now(),
        )
    })?;
    let seq = append_one(&state, &event, &stream, &caller, &site, &headers).await?;
    Ok(Json(json!({
        "seq": seq,
        "deviation": "assessed",
        "close": { "endpoint": format!("/api/excursions/{excursion}/close"), "signs_seq": seq, "meaning": "Approved" },
    })))
}

#[derive(Deserialize)]
pub struct CloseBody {
    /// The password again (the e-signature over the assessment); not needed when the
    /// assessment is already e-signed as Approved.
    pub password: Option<String>,
    /// Required at the first signature of a session and with API tokens.
    pub user_id: Option<String>,
}

/// Closes an excursion's deviation: e-signs the assessment as Approved (unless it already
/// is), then records the closure; the assessment's decision comes into force.
pub async fn close<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(excursion): Path<String>,
    AppJson(b): AppJson<CloseBody>,
) -> ApiResult<Json<Value>> {
    let excursion = id("excursion", &excursion, ExcursionId::parse)?;
    state.sync().await?;
    let (site, stream) = excursion_home(&state, &excursion)?;
    caller.require(&QA_ROLES, &site)?;
    let user: UserId = caller_id(&caller)?;
    let now = state.clock.now();
    // The state checks come first, so that nothing is signed for a closure that cannot be.
    let unsigned = state.read_model(|m: &mut ColdModel| {
        match decide_close(&m.state, &excursion, &user, now) {
            Err(ColdError::AssessmentUnsigned { assessment_seq, .. }) => Ok(Some(assessment_seq)),
            Err(e) => Err(e),
            Ok(_) => Ok(None),
        }
    })?;
    let mut signature_seq = None;
    if let Some(assessment_seq) = unsigned {
        let password = b.password.clone().ok_or_else(|| {
            ApiError::bad_request(
                "password",
                "closing the deviation e-signs its assessment: give your password",
            )
        })?;
        let signed = esign(
            &state,
            &caller,
            &SignBody {
                seq: assessment_seq,
                meaning: "Approved".to_string(),
                password,
                user_id: b.user_id.clone(),
            },
            None,
        )
        .await?;
        signature_seq = Some(signed.seq);
        state.sync().await?;
    }
    let event =
        state.read_model(|m: &mut ColdModel| decide_close(&m.state, &excursion, &user, now))?;
    let seq = append_one(&state, &event, &stream, &caller, &site, &headers).await?;
    let ColdEvent::DeviationClosed { decision, .. } = &event else {
        unreachable!("decide_close returns DeviationClosed")
    };
    Ok(Json(json!({
        "seq": seq,
        "deviation": "closed",
        "decision": decision,
        "signature_seq": signature_seq,
    })))
}

#[derive(Deserialize)]
pub struct WatchdogQuery {
    pub site: String,
    /// Longest silence of a logger before the shipment is flagged, minutes (default 15).
    pub silence_minutes: Option<u32>,
}

/// Default logger silence before the watchdog flags a shipment, minutes.
const WATCHDOG_SILENCE_MINUTES: u32 = 15;
/// Longest silence that may be asked for, minutes (a week).
const WATCHDOG_SILENCE_MINUTES_MAX: u32 = 7 * 24 * 60;

/// The logger watchdog at the server's now: shipments from or to `site` whose temperature
/// has not been known for longer than `silence_minutes`, and received ones without data.
pub async fn watchdog<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<WatchdogQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    let silence = q.silence_minutes.unwrap_or(WATCHDOG_SILENCE_MINUTES);
    if silence == 0 || silence > WATCHDOG_SILENCE_MINUTES_MAX {
        return Err(ApiError::bad_request(
            "silence_minutes",
            format!("must be from 1 to {WATCHDOG_SILENCE_MINUTES_MAX} minutes"),
        ));
    }
    state.sync().await?;
    let now = state.clock.now();
    let flagged = state.read_model(|m: &mut ColdModel| {
        logger_watchdog(&m.state, now, silence)
            .into_iter()
            .filter(|f| {
                m.state
                    .shipment(&f.shipment)
                    .is_some_and(|s| s.from_site == site || s.to_site == site)
            })
            .collect::<Vec<_>>()
    });
    Ok(Json(
        json!({ "now": now, "silence_minutes": silence, "shipments": flagged }),
    ))
}
