//! Chain of identity and custody over HTTP: DIN allocation, units, custody scans, trace and
//! recall. The decisions are `cellops-custody`'s; this module checks who may ask, records
//! the decided events in the ledger, and shows the read model.

use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use cellops_custody::{
    AllocateDins, ChildUnit, CreateUnit, CustodyError, CustodyStep, Derivation, Derive, Event,
    ExpectedStep, HandOff, LocationId, ReagentLot, Recall, ReceiptCondition, SubjectId, UnitCode,
    decide_allocate_dins, decide_create_unit, decide_derive, decide_hand_off, decide_scan,
};
use cellops_domain::{Role, SiteId, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord};
use serde::Deserialize;
use serde_json::{Value, json};

impl From<CustodyError> for ApiError {
    fn from(e: CustodyError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.reason_code(),
            e.to_string(),
        )
    }
}

/// The ledger record of a custody event, on the stream of the unit (or DIN range) it is about.
pub(crate) fn custody_record(event: &Event, stream: &str, actor: &str, site: &SiteId) -> NewRecord {
    let payload: Value =
        serde_json::from_str(&event.to_json()).expect("custody events serialize to JSON");
    NewRecord::new(stream, event.type_name(), 1, payload, actor, site.as_str())
}

/// Records the decided events on `stream`, as the caller, at `site`.
async fn append_events<B: Backend>(
    state: &AppState<B>,
    events: &[Event],
    stream: &str,
    caller: &Caller,
    site: &SiteId,
    headers: &HeaderMap,
) -> ApiResult<cellops_ledger::AppendOutcome> {
    let records = events
        .iter()
        .map(|e| custody_record(e, stream, &caller.user.id, site))
        .collect();
    state.append(records, idempotency_key(headers)).await
}

pub(crate) fn unit_stream(code: &UnitCode) -> String {
    format!("unit/{}", code.to_string().to_ascii_lowercase())
}

fn user(caller: &Caller) -> ApiResult<UserId> {
    UserId::parse(&caller.user.id).map_err(ApiError::internal)
}

#[derive(Deserialize)]
pub struct AllocateBody {
    pub site: String,
    pub count: u32,
}

/// Allocates DINs from the site's facility sequence for this year: never reused, one chain
/// across every server process (the ledger orders the allocations).
pub async fn allocate_dins<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<AllocateBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(
        &[
            Role::Collector,
            Role::Nurse,
            Role::Operator,
            Role::SiteAdmin,
        ],
        &site,
    )?;
    state.sync().await?;
    let fin = state
        .custody
        .lock()
        .expect("custody lock")
        .facility_fin(&site)
        .ok_or_else(|| {
            ApiError::bad_request(
                "site",
                format!("site {site} has no Facility Identification Number configured: start cellops serve with --facility {site}=FIN"),
            )
        })?;
    let command = AllocateDins {
        site: site.clone(),
        fin,
        count: body.count,
        by: user(&caller)?,
        at: state.clock.now(),
    };
    let events = decide_allocate_dins(&state.custody.lock().expect("custody lock"), &command)?;
    let stream = format!("din/{}", fin.to_string().to_ascii_lowercase());
    let out = append_events(&state, &events, &stream, &caller, &site, &headers).await?;
    let dins: Vec<Value> = out
        .records
        .iter()
        .filter_map(|r| r.payload_json().get("din").cloned())
        .collect();
    Ok(Json(json!({ "dins": dins, "replayed": out.replayed })))
}

#[derive(Deserialize)]
pub struct UnitBody {
    /// DIN + product code, e.g. `A999026000001-S1234100`.
    pub code: String,
    /// Pseudonymous subject id (autologous), or none for donor material.
    pub patient: Option<String>,
    pub expires_at: Timestamp,
    pub site: String,
    pub location: String,
}

pub async fn create_unit<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<UnitBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Collector, Role::Operator, Role::Nurse], &site)?;
    let code = UnitCode::parse(&body.code).map_err(|e| ApiError::from(e).field("code"))?;
    let patient = body
        .patient
        .as_deref()
        .map(SubjectId::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).field("patient"))?;
    let location =
        LocationId::parse(&body.location).map_err(|e| ApiError::from(e).field("location"))?;
    state.sync().await?;
    let command = CreateUnit {
        code,
        patient,
        expires_at: body.expires_at,
        site: site.clone(),
        location,
        by: user(&caller)?,
        at: state.clock.now(),
    };
    let events = decide_create_unit(&state.custody.lock().expect("custody lock"), &command)?;
    let stream = unit_stream(&code);
    append_events(&state, &events, &stream, &caller, &site, &headers).await?;
    let unit = state
        .custody
        .lock()
        .expect("custody lock")
        .unit(&code)
        .cloned();
    Ok(Json(json!({ "unit": unit })))
}

/// Parses a list of codes; the error names the list and the position.
fn codes(field: &str, texts: &[String]) -> ApiResult<Vec<UnitCode>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            UnitCode::parse(t).map_err(|e| ApiError::from(e).field(&format!("{field}[{i}]")))
        })
        .collect()
}

#[derive(Deserialize)]
pub struct DeriveBody {
    /// split, pool, aliquot, sample or formulate.
    pub operation: Derivation,
    pub parents: Vec<String>,
    pub children: Vec<ChildBody>,
    #[serde(default)]
    pub reagent_lots: Vec<String>,
    pub site: String,
    pub location: String,
}

#[derive(Deserialize)]
pub struct ChildBody {
    pub code: String,
    pub expires_at: Timestamp,
}

/// Makes child units from parents (split, pool, aliquot, sample, formulate), recording the
/// reagent lots used, so that a recall finds every descendant.
pub async fn derive<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<DeriveBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Operator, Role::Collector, Role::QcAnalyst], &site)?;
    let parents = codes("parents", &body.parents)?;
    let child_codes: Vec<String> = body.children.iter().map(|c| c.code.clone()).collect();
    let children = codes("children", &child_codes)?
        .into_iter()
        .zip(&body.children)
        .map(|(code, c)| ChildUnit {
            code,
            expires_at: c.expires_at,
        })
        .collect();
    let reagent_lots = body
        .reagent_lots
        .iter()
        .enumerate()
        .map(|(i, l)| {
            ReagentLot::parse(l).map_err(|e| ApiError::from(e).field(&format!("reagent_lots[{i}]")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let location =
        LocationId::parse(&body.location).map_err(|e| ApiError::from(e).field("location"))?;
    state.sync().await?;
    let command = Derive {
        operation: body.operation,
        parents,
        children,
        reagent_lots,
        site: site.clone(),
        location,
        by: user(&caller)?,
        at: state.clock.now(),
    };
    let events = decide_derive(&state.custody.lock().expect("custody lock"), &command)?;
    // Every derivation fact goes on the stream of the first parent: one place to read it.
    let stream = unit_stream(&command.parents[0]);
    let out = append_events(&state, &events, &stream, &caller, &site, &headers).await?;
    Ok(Json(json!({
        "children": child_codes,
        "records": out.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct HandOffBody {
    /// The current custodian, handing the unit over.
    pub from: String,
    pub site: String,
    pub location: String,
    pub condition: ReceiptCondition,
}

/// The caller takes custody of a unit from its current custodian, recording the condition
/// on receipt (who, from whom, when, where, in what state).
pub async fn hand_off<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(code): Path<String>,
    AppJson(body): AppJson<HandOffBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&Role::WRITERS, &site)?;
    let code = UnitCode::parse(&code).map_err(|e| ApiError::from(e).field("code"))?;
    let from =
        UserId::parse(&body.from).map_err(|e| ApiError::bad_request("from", e.to_string()))?;
    let location =
        LocationId::parse(&body.location).map_err(|e| ApiError::from(e).field("location"))?;
    state.sync().await?;
    // Whoever takes custody must be trained in it (site matrix: custody.handoff).
    let to = user(&caller)?;
    super::training::require_qualified(&state, &to, &site, "custody.handoff", state.clock.now())
        .await?;
    let command = HandOff {
        code,
        from,
        to,
        site: site.clone(),
        location,
        condition: body.condition,
        at: state.clock.now(),
    };
    let events = decide_hand_off(&state.custody.lock().expect("custody lock"), &command)?;
    append_events(
        &state,
        &events,
        &unit_stream(&code),
        &caller,
        &site,
        &headers,
    )
    .await?;
    let unit = state
        .custody
        .lock()
        .expect("custody lock")
        .unit(&code)
        .cloned();
    Ok(Json(json!({ "unit": unit })))
}

#[derive(Deserialize)]
pub struct ScanBody {
    /// ship, receive, process, store or issue.
    pub step: String,
    /// The unit this step expects (DIN + product code).
    pub expected_unit: String,
    /// The scanner's text (one or several ISBT 128 data structures).
    pub scanned: String,
    pub site: String,
    pub location: String,
}

/// A custody scan: the expected unit is accepted; any other is refused with 409 naming
/// expected vs scanned. Both outcomes are recorded.
pub async fn scan<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ScanBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&Role::WRITERS, &site)?;
    let step = CustodyStep::ALL
        .into_iter()
        .find(|s| s.as_str() == body.step)
        .ok_or_else(|| {
            ApiError::bad_request("step", "use one of ship, receive, process, store, issue")
        })?;
    let unit = UnitCode::parse(&body.expected_unit)
        .map_err(|e| ApiError::from(e).field("expected_unit"))?;
    let location =
        LocationId::parse(&body.location).map_err(|e| ApiError::from(e).field("location"))?;
    state.sync().await?;
    // A custody scan is a GMP step: only by someone trained in it (site matrix: custody.scan).
    super::training::require_qualified(
        &state,
        &user(&caller)?,
        &site,
        "custody.scan",
        state.clock.now(),
    )
    .await?;
    let decided = decide_scan(
        &state.custody.lock().expect("custody lock"),
        &ExpectedStep {
            step,
            unit,
            site: site.clone(),
        },
        &body.scanned,
        &location,
        &user(&caller)?,
        state.clock.now(),
    );
    let stream = unit_stream(&unit);
    match decided {
        Ok(event) => {
            let out = state
                .append(
                    vec![custody_record(&event, &stream, &caller.user.id, &site)],
                    idempotency_key(&headers),
                )
                .await?;
            Ok(Json(json!({ "accepted": true, "seq": out.records[0].seq })))
        }
        Err(refusal) => {
            // The refusal is a fact too: who scanned what, where, and why it was refused.
            state
                .append(
                    vec![custody_record(
                        &refusal.event,
                        &stream,
                        &caller.user.id,
                        &site,
                    )],
                    idempotency_key(&headers),
                )
                .await?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                refusal.error.reason_code(),
                refusal.error.to_string(),
            )
            .field("scanned"))
        }
    }
}

/// A unit's genealogy and custody timeline. Readable by anyone with a role at the unit's site.
pub async fn trace<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = UnitCode::parse(&code).map_err(|e| ApiError::from(e).field("code"))?;
    state.sync().await?;
    let custody = state.custody.lock().expect("custody lock");
    let trace = custody
        .trace(&code)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    caller.require_site(trace.unit.site())?;
    let timeline: Vec<Value> = trace
        .timeline
        .iter()
        .map(|e| serde_json::from_str(&e.to_json()).expect("custody events serialize to JSON"))
        .collect();
    Ok(Json(json!({
        "unit": trace.unit,
        "ancestors": trace.ancestors.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "descendants": trace.descendants.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "timeline": timeline,
    })))
}

#[derive(Deserialize)]
pub struct RecallQuery {
    pub unit: Option<String>,
    pub reagent_lot: Option<String>,
}

fn recall_view(r: &Recall) -> Value {
    json!({
        "units": r.units.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "in_circulation": r.in_circulation.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "infusions": r.infusions.iter().map(|i| json!({
            "order": i.order.to_string(), "patient": i.patient.to_string(),
            "unit": i.code.to_string(), "at": i.at,
        })).collect::<Vec<_>>(),
        "patients": r.patients.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

/// Who received anything derived from a unit (`?unit=`) or a reagent lot (`?reagent_lot=`).
/// For QA, physicians and auditors.
pub async fn recall<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<RecallQuery>,
) -> ApiResult<Json<Value>> {
    let allowed = caller.user.roles.iter().any(|(r, _)| {
        matches!(
            r,
            Role::QaReviewer | Role::QaReleaser | Role::Physician | Role::Auditor | Role::SiteAdmin
        )
    });
    if !allowed {
        return Err(ApiError::forbidden(
            "a recall query needs qa_reviewer, qa_releaser, physician, auditor or site_admin",
        ));
    }
    state.sync().await?;
    let custody = state.custody.lock().expect("custody lock");
    let recall = match (&q.unit, &q.reagent_lot) {
        (Some(unit), None) => {
            let code = UnitCode::parse(unit).map_err(|e| ApiError::from(e).field("unit"))?;
            custody
                .recall_by_unit(&code)
                .map_err(|e| ApiError::not_found(e.to_string()))?
        }
        (None, Some(lot)) => {
            let lot = ReagentLot::parse(lot).map_err(|e| ApiError::from(e).field("reagent_lot"))?;
            custody.recall_by_reagent_lot(&lot)
        }
        _ => {
            return Err(ApiError::bad_request(
                "query",
                "give exactly one of unit=DIN-PRODUCT or reagent_lot=LOT",
            ));
        }
    };
    Ok(Json(recall_view(&recall)))
}
