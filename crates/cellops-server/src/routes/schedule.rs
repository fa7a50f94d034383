//! Scheduling over HTTP: booking a collection slot (feasible end to end? then the capacity
//! of every stage is reserved by a ledger record; otherwise 409 with the binding constraint
//! and the earliest alternatives), listing bookings per site, Gantt data per resource, and
//! replanning after a failed batch, an OOS, a device breakdown or a late courier.
//!
//! The planning is `cellops-schedule`'s. The read model [`ScheduleModel`] is the network
//! (a site-configuration instance) plus the reservations, rebuilt from `schedule.*` records
//! without searching: a booking record carries its slots, a replan record its moves.

use super::parse_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, AppQuery, idempotency_key};
use crate::openapi::RouteDoc;
use crate::projection::Projection;
use crate::state::{AppState, ServerConfig};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Stream, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord, Record};
use cellops_schedule::booking::{
    Answer, Binding, BookingOut, BookingRequest, Planner, Proposal, Reservation, Risk,
};
use cellops_schedule::generate::{GenParams, generate};
use cellops_schedule::replan::{Disruption, Move};
use cellops_schedule::{Day, Instance, ScheduleError, staffing};
use rand::{Rng, SeedableRng};
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
        "schedule.booked",
        "a collection slot and the capacity of every later stage were reserved for an order",
    ),
    ev(
        "schedule.cancelled",
        "a booking was cancelled and its capacity freed, with a reason",
    ),
    ev(
        "schedule.replanned",
        "a disruption (failed batch, OOS, breakdown, late courier) and the bookings it moved, with why",
    ),
];

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/bookings",
        "Book a collection slot: reserves capacity end to end, or 409 with the binding constraint and alternatives",
        true,
        &[
            "product",
            "hospital",
            "collection_date",
            "earliest_date",
            "latest_infusion",
            "due_date",
            "weight",
            "order",
        ],
    ),
    (
        "post",
        "/api/bookings/check",
        "Is a collection date feasible end to end? Stage dates or the binding constraint and alternatives; reserves nothing",
        true,
        &[
            "product",
            "hospital",
            "collection_date",
            "earliest_date",
            "latest_infusion",
        ],
    ),
    (
        "get",
        "/api/bookings",
        "Bookings of a site (?site=…); the CPC sees every booking",
        true,
        &[],
    ),
    (
        "post",
        "/api/bookings/{id}/cancel",
        "Cancel a booking and free its capacity",
        true,
        &["reason"],
    ),
    (
        "get",
        "/api/schedule/gantt",
        "Gantt data per resource over all bookings",
        true,
        &[],
    ),
    (
        "get",
        "/api/schedule/staffing",
        "Staffing check of the bookings: for each planned stage's GMP action, who at its site is qualified over the stage's dates (from=, to=; gaps listed)",
        true,
        &[],
    ),
    (
        "post",
        "/api/schedule/replan",
        "Replan after a failed batch, OOS, breakdown or late courier; records what moved and why",
        true,
        &[
            "kind", "booking", "resource", "date", "from", "to", "units", "days", "reason",
        ],
    ),
];

/// Who may book and cancel at a hospital.
pub(crate) const BOOKING_ROLES: [Role; 5] = [
    Role::Physician,
    Role::Nurse,
    Role::Collector,
    Role::Logistics,
    Role::SiteAdmin,
];

/// Who may replan at the CPC.
const REPLAN_ROLES: [Role; 5] = [
    Role::Operator,
    Role::QcAnalyst,
    Role::QaReleaser,
    Role::Logistics,
    Role::SiteAdmin,
];

/// Start of the demo network's calendar (a Monday) and its horizon (about five years).
const DEMO_START_DATE: &str = "2025-01-06";
const DEMO_HORIZON_DAYS: i64 = 2000;
/// Patients per year the demo network's capacity is sized for.
const DEMO_PATIENTS_PER_YEAR: usize = 200;

/// The schedule read model: the network and every booking's reserved capacity.
#[derive(Debug)]
pub struct ScheduleModel {
    planner: Planner,
}

impl ScheduleModel {
    /// A model over a site-configuration instance (its orders are ignored; bookings come
    /// from the ledger). Site ids must be the server's site ids.
    pub fn from_instance(instance: Instance) -> Result<ScheduleModel, ScheduleError> {
        Ok(ScheduleModel {
            planner: Planner::from_instance(instance)?,
        })
    }

    /// The generated demo network over the configured sites: the facility whose id
    /// contains "cpc" (else `cpc`) is the CPC, the other facilities are hospitals (else
    /// `h01`…`h04`). Capacity is sized for 200 patients a year, calendar from 2025-01-06.
    pub fn demo(config: &ServerConfig) -> ScheduleModel {
        let ids: Vec<String> = config
            .facilities
            .iter()
            .map(|(s, _)| s.as_str().to_string())
            .collect();
        let cpc = ids
            .iter()
            .find(|s| s.contains("cpc"))
            .cloned()
            .unwrap_or_else(|| "cpc".to_string());
        let hospitals: Vec<String> = ids.into_iter().filter(|s| *s != cpc).collect();
        let params = GenParams {
            start_date: DEMO_START_DATE.to_string(),
            cpc_id: cpc,
            hospital_ids: hospitals,
            horizon_days: Some(DEMO_HORIZON_DAYS),
            ..GenParams::year("demo-network", DEMO_PATIENTS_PER_YEAR)
        };
        let instance = generate(&params, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        ScheduleModel::from_instance(instance).expect("the generated demo network is valid")
    }

    /// The planner (network and reservations).
    pub fn planner(&mut self) -> &mut Planner {
        &mut self.planner
    }

    fn apply_record(&mut self, r: &Record) -> Result<(), String> {
        match r.event_type.as_str() {
            "schedule.booked" => {
                let p: BookedPayload =
                    serde_json::from_str(&r.payload).map_err(|e| e.to_string())?;
                if !self.planner.reserve(&p.reservation) {
                    return Err(format!(
                        "booking {} could not be reserved",
                        p.reservation.id
                    ));
                }
            }
            "schedule.cancelled" => {
                let p: CancelledPayload =
                    serde_json::from_str(&r.payload).map_err(|e| e.to_string())?;
                self.planner.cancel(&p.booking);
            }
            "schedule.replanned" => {
                let p: ReplannedPayload =
                    serde_json::from_str(&r.payload).map_err(|e| e.to_string())?;
                self.planner.apply_replan(&p.disruption, &p.moves);
            }
            _ => {}
        }
        Ok(())
    }
}

impl Projection for ScheduleModel {
    fn apply(&mut self, record: &Record) {
        if record.event_type.starts_with("schedule.")
            && let Err(e) = self.apply_record(record)
        {
            tracing::error!(seq = record.seq, error = %e, "unreadable schedule record");
        }
    }
}

/// Payload of `schedule.booked`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookedPayload {
    /// What is reserved (replayed without search).
    pub reservation: Reservation,
    /// The order this booking serves, if the caller named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Collection date (for readers of the ledger).
    pub collection: String,
    /// Predicted infusion date.
    pub infusion: String,
}

/// Payload of `schedule.cancelled`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelledPayload {
    /// Booking id.
    pub booking: String,
    /// Why.
    pub reason: String,
}

/// Payload of `schedule.replanned`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplannedPayload {
    /// What happened.
    pub disruption: Disruption,
    /// The planning day it was replanned on.
    pub today_day: Day,
    /// Every booking's new slots.
    pub moves: Vec<Move>,
    /// Why each booking moved, by booking id.
    pub reasons: Vec<(String, String)>,
    /// The reporter's note.
    pub reason: String,
}

fn schedule_error(e: ScheduleError) -> ApiError {
    match e.fields().first() {
        Some(f) => ApiError::bad_request(&f.field, format!("{} (fix: {})", f.problem, f.fix)),
        None => ApiError::bad_request("body", e.to_string()),
    }
}

fn today<B: Backend>(state: &AppState<B>, model: &ScheduleModel) -> Day {
    let epoch_day = state.clock.now().unix_us().div_euclid(86_400_000_000);
    model.planner.network().day_from_epoch_day(epoch_day)
}

/// Serialises check-then-append of bookings and replans in this process, so two requests
/// cannot both take the last unit.
static PLANNING_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A booking request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    pub product: String,
    pub hospital: String,
    pub collection_date: String,
    pub earliest_date: Option<String>,
    pub latest_infusion: Option<String>,
    pub due_date: Option<String>,
    pub weight: Option<i64>,
    /// The order this booking serves; also the booking id (`bk-<order in lower case>`), so a retried
    /// request finds its booking instead of booking twice.
    pub order: Option<String>,
}

impl BookBody {
    fn request(&self) -> BookingRequest {
        BookingRequest {
            product: self.product.clone(),
            hospital: self.hospital.clone(),
            collection_date: self.collection_date.clone(),
            earliest_date: self.earliest_date.clone(),
            latest_infusion: self.latest_infusion.clone(),
            due_date: self.due_date.clone(),
            weight: self.weight,
        }
    }
}

fn infeasible_response(binding: Binding, alternatives: Vec<Proposal>) -> Response {
    let body = json!({
        "error": {"code": "infeasible", "message": binding.message, "field": "collection_date"},
        "feasible": false,
        "binding": binding,
        "alternatives": alternatives,
    });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// What [`book_slot`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BookOutcome {
    /// Capacity was reserved by a new `schedule.booked` record.
    Booked {
        /// The booking.
        booking: BookingOut,
        /// Its risk: the chance the dates hold and the repeats' dates.
        risk: Option<Risk>,
    },
    /// The order already had this booking (a retry); nothing new was recorded.
    Existing(BookingOut),
    /// The date is not feasible: the binding constraint and the earliest alternatives.
    Infeasible {
        /// Why.
        binding: Binding,
        /// Dates that work.
        alternatives: Vec<Proposal>,
    },
}

/// Books a collection slot for an order: checks the requested date end to end and, when
/// feasible, reserves every stage's capacity with a `schedule.booked` record by `user` at
/// the hospital. The caller checks who may book; this is the in-process entry point for the
/// order flow (the HTTP handler [`book`] uses it too).
pub async fn book_slot<B: Backend>(
    state: &AppState<B>,
    user: &str,
    body: &BookBody,
    idempotency: Option<String>,
) -> ApiResult<BookOutcome> {
    let site = parse_site("hospital", &body.hospital)?;
    let id = match &body.order {
        Some(order) => {
            let id = cellops_orders::booking_id(order);
            Stream::parse(&format!("schedule/bookings/{id}"))
                .map_err(|e| ApiError::bad_request("order", e.to_string()))?;
            id
        }
        None => format!("bk-{:016x}", state.with_rng(|r| r.r#gen::<u64>())),
    };
    let _guard = PLANNING_LOCK.lock().await;
    state.sync().await?;
    let request = body.request();
    let decided = state.read_model(|m: &mut ScheduleModel| {
        if m.planner.booking(&id).is_some() {
            return Ok(None);
        }
        let today = today(state, m);
        let answer = m.planner.check(&request, today).map_err(schedule_error)?;
        let reservation = match &answer {
            Answer::Feasible(p) => Some(m.planner.reservation(&id, &request, p, today)),
            Answer::Infeasible { .. } => None,
        };
        Ok::<_, ApiError>(Some((answer, reservation)))
    })?;
    let Some((answer, reservation)) = decided else {
        return Ok(BookOutcome::Existing(find_booking(state, &id)?));
    };
    let (proposal, reservation) = match (answer, reservation) {
        (Answer::Feasible(p), Some(r)) => (p, r),
        (
            Answer::Infeasible {
                binding,
                alternatives,
            },
            _,
        ) => {
            return Ok(BookOutcome::Infeasible {
                binding,
                alternatives,
            });
        }
        (Answer::Feasible(_), None) => unreachable!("a feasible answer has a reservation"),
    };
    let payload = BookedPayload {
        reservation,
        order: body.order.clone(),
        collection: proposal.collection.clone(),
        infusion: proposal.infusion.clone(),
    };
    let record = NewRecord::new(
        &format!("schedule/bookings/{id}"),
        "schedule.booked",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        user,
        site.as_str(),
    );
    state.append(vec![record], idempotency).await?;
    Ok(BookOutcome::Booked {
        booking: find_booking(state, &id)?,
        risk: proposal.risk,
    })
}

/// The predicted stage dates of an order of `product` at `hospital` that can be collected
/// from `earliest_date` (today at the earliest) and must be infused by `latest_infusion`:
/// the earliest feasible plan given every booking so far; `None` when nothing fits.
pub async fn predicted_dates<B: Backend>(
    state: &AppState<B>,
    product: &str,
    hospital: &str,
    earliest_date: &str,
    latest_infusion: Option<&str>,
) -> ApiResult<Option<Proposal>> {
    state.sync().await?;
    state.read_model(|m: &mut ScheduleModel| {
        let today = today(state, m);
        let net = m.planner.network();
        let earliest = net
            .day_of(earliest_date)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "earliest_date",
                    format!("{earliest_date:?} is not a date (YYYY-MM-DD)"),
                )
            })?
            .max(today);
        let from = net.date_of(earliest);
        m.planner
            .predict(product, hospital, &from, latest_infusion)
            .map_err(schedule_error)
    })
}

fn find_booking<B: Backend>(state: &AppState<B>, id: &str) -> ApiResult<BookingOut> {
    state
        .read_model(|m: &mut ScheduleModel| {
            m.planner.bookings(None).into_iter().find(|b| b.id == id)
        })
        .ok_or_else(|| ApiError::not_found(format!("no booking {id}")))
}

/// Books a collection slot, or answers 409 with the binding constraint and alternatives.
pub async fn book<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<BookBody>,
) -> ApiResult<Response> {
    let site = parse_site("hospital", &body.hospital)?;
    caller.require(&BOOKING_ROLES, &site)?;
    match book_slot(&state, &caller.user.id, &body, idempotency_key(&headers)).await? {
        BookOutcome::Booked { booking, risk } => Ok((
            StatusCode::CREATED,
            Json(json!({"feasible": true, "booking": booking, "risk": risk})),
        )
            .into_response()),
        BookOutcome::Existing(b) => Ok((
            StatusCode::OK,
            Json(json!({"feasible": true, "booking": b})),
        )
            .into_response()),
        BookOutcome::Infeasible {
            binding,
            alternatives,
        } => Ok(infeasible_response(binding, alternatives)),
    }
}

/// Checks a request without reserving: 200 with the stage dates, or with the binding
/// constraint and alternatives.
pub async fn check<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppJson(body): AppJson<BookBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("hospital", &body.hospital)?;
    caller.require_site(&site)?;
    state.sync().await?;
    let request = body.request();
    let answer = state.read_model(|m: &mut ScheduleModel| {
        let today = today(&state, m);
        m.planner.check(&request, today).map_err(schedule_error)
    })?;
    Ok(Json(
        serde_json::to_value(answer).expect("answer serializes"),
    ))
}

#[derive(Debug, Deserialize)]
pub struct SiteQuery {
    pub site: String,
}

/// Bookings of a hospital; the CPC's staff see all.
pub async fn list<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<SiteQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    state.sync().await?;
    let bookings = state.read_model(|m: &mut ScheduleModel| {
        let known = m.planner.network().site(site.as_str()).is_some();
        known.then(|| m.planner.bookings(Some(site.as_str())))
    });
    let bookings = bookings.ok_or_else(|| {
        ApiError::bad_request(
            "site",
            format!("{site} is not a site of the scheduling network"),
        )
    })?;
    Ok(Json(json!({"site": site.as_str(), "bookings": bookings})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub reason: String,
}

/// Cancels a booking.
pub async fn cancel<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    AppJson(body): AppJson<CancelBody>,
) -> ApiResult<Json<Value>> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "reason",
            "say why the booking is cancelled",
        ));
    }
    let _guard = PLANNING_LOCK.lock().await;
    state.sync().await?;
    let hospital = state.read_model(|m: &mut ScheduleModel| {
        m.planner
            .bookings(None)
            .into_iter()
            .find(|b| b.id == id)
            .map(|b| b.hospital)
    });
    let hospital = hospital.ok_or_else(|| ApiError::not_found(format!("no booking {id}")))?;
    let site = SiteId::parse(&hospital).map_err(ApiError::internal)?;
    caller.require(&BOOKING_ROLES, &site)?;
    let payload = CancelledPayload {
        booking: id.clone(),
        reason: body.reason,
    };
    let record = NewRecord::new(
        &format!("schedule/bookings/{id}"),
        "schedule.cancelled",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        site.as_str(),
    );
    state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(Json(json!({"booking": id, "cancelled": true})))
}

fn cpc_site<B: Backend>(state: &AppState<B>) -> ApiResult<SiteId> {
    let cpc = state.read_model(|m: &mut ScheduleModel| {
        let net = m.planner.network();
        net.site_id(net.cpc).to_string()
    });
    SiteId::parse(&cpc).map_err(ApiError::internal)
}

/// Gantt data per resource (staff of the CPC).
pub async fn gantt<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let cpc = cpc_site(&state)?;
    caller.require_site(&cpc)?;
    state.sync().await?;
    let rows = state.read_model(|m: &mut ScheduleModel| m.planner.gantt());
    Ok(Json(json!({"resources": rows})))
}

/// A disruption as the API takes it: dates instead of day numbers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplanBody {
    /// `batch_failed`, `oos`, `breakdown` or `courier_late`.
    pub kind: String,
    /// Booking id (batch_failed, oos, courier_late).
    pub booking: Option<String>,
    /// Day of the failure or OOS result, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Resource id (breakdown).
    pub resource: Option<String>,
    /// First and last day out of service (breakdown).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Units lost (breakdown, default 1).
    pub units: Option<u32>,
    /// Days late (courier_late).
    pub days: Option<i64>,
    /// The reporter's note.
    pub reason: String,
}

fn required<'a>(v: &'a Option<String>, field: &str, kind: &str) -> ApiResult<&'a str> {
    v.as_deref()
        .ok_or_else(|| ApiError::bad_request(field, format!("a {kind} disruption needs {field}")))
}

fn disruption(body: &ReplanBody, m: &ScheduleModel) -> ApiResult<Disruption> {
    let net = m.planner.network();
    let day = |field: &str, v: &str| -> ApiResult<Day> {
        net.day_of(v).ok_or_else(|| {
            ApiError::bad_request(field, format!("{v:?} is not a date (YYYY-MM-DD)"))
        })
    };
    let k = body.kind.as_str();
    Ok(match k {
        "batch_failed" => Disruption::BatchFailed {
            order: required(&body.booking, "booking", k)?.to_string(),
            day: day("date", required(&body.date, "date", k)?)?,
        },
        "oos" => Disruption::Oos {
            order: required(&body.booking, "booking", k)?.to_string(),
            day: day("date", required(&body.date, "date", k)?)?,
        },
        "breakdown" => Disruption::Breakdown {
            resource: required(&body.resource, "resource", k)?.to_string(),
            from_day: day("from", required(&body.from, "from", k)?)?,
            to_day: day("to", required(&body.to, "to", k)?)?,
            units: body.units.unwrap_or(1),
        },
        "courier_late" => Disruption::CourierLate {
            order: required(&body.booking, "booking", k)?.to_string(),
            days: body.days.ok_or_else(|| {
                ApiError::bad_request("days", "a courier_late disruption needs days")
            })?,
        },
        other => {
            return Err(ApiError::bad_request(
                "kind",
                format!("{other:?} is not one of batch_failed, oos, breakdown, courier_late"),
            ));
        }
    })
}

/// Replans after a disruption: moves only the bookings it touches and records the moves.
pub async fn replan<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<ReplanBody>,
) -> ApiResult<Json<Value>> {
    let cpc = cpc_site(&state)?;
    caller.require(&REPLAN_ROLES, &cpc)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason", "say what happened"));
    }
    let _guard = PLANNING_LOCK.lock().await;
    state.sync().await?;
    let (disruption, today, outcome) = state.read_model(|m: &mut ScheduleModel| {
        let d = disruption(&body, m)?;
        let today = today(&state, m);
        let outcome = m.planner.replan(&d, today).map_err(schedule_error)?;
        Ok::<_, ApiError>((d, today, outcome))
    })?;
    let payload = ReplannedPayload {
        disruption,
        today_day: today,
        moves: outcome.moves(),
        reasons: outcome
            .changes
            .iter()
            .map(|c| (c.order.clone(), c.reason.clone()))
            .collect(),
        reason: body.reason.clone(),
    };
    let record = NewRecord::new(
        "schedule/replans",
        "schedule.replanned",
        1,
        serde_json::to_value(&payload).expect("payload serializes"),
        &caller.user.id,
        cpc.as_str(),
    );
    state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    Ok(Json(
        serde_json::to_value(&outcome).expect("replan serializes"),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffingQuery {
    /// First day, `YYYY-MM-DD` (default today).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default `from` + 27 days).
    pub to: Option<String>,
}

/// Longest period one staffing check covers, days.
pub const STAFFING_DAYS_MAX: i64 = 366;

/// The qualifications a product's recipe declares on its operator and sampling steps: the
/// newest version approved at `site`, else the shipped recipe of that product.
fn recipe_qualifications(
    batches: &mut super::batch::BatchModel,
    site: &SiteId,
    product: &str,
) -> Option<Vec<String>> {
    let of = |recipe: &cellops_process::Recipe| -> Vec<String> {
        recipe
            .phases()
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| s.kind.qualification().map(str::to_string))
            .collect()
    };
    if let Some(entry) = batches.latest_approved(product, site.as_str()) {
        return Some(of(&entry.recipe));
    }
    cellops_process::shipped::shipped_recipes()
        .ok()?
        .iter()
        .find(|r| r.product() == product)
        .map(of)
}

/// Day bounds as instants: the first microsecond of `start` and the last of `end`.
fn day_bounds(start: &str, end: &str) -> Option<(Timestamp, Timestamp)> {
    let from = Timestamp::parse(&format!("{start}T00:00:00Z")).ok()?;
    let to = Timestamp::parse(&format!("{end}T00:00:00Z")).ok()?;
    Some((from, to.plus_us(86_400_000_000 - 1)))
}

/// Staffing check against the schedule: every booked stage overlapping `from..=to` that
/// declares GMP actions, with the people at its site qualified for each over the stage's
/// whole dates (the training read model; expiry and suspensions as recorded now), and the
/// gaps. Staff of the CPC ask.
pub async fn staffing<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<StaffingQuery>,
) -> ApiResult<Json<Value>> {
    let cpc = cpc_site(&state)?;
    caller.require_site(&cpc)?;
    state.sync().await?;
    let products: Vec<String> = state.read_model(|m: &mut ScheduleModel| {
        let net = m.planner.network();
        net.instance()
            .products
            .iter()
            .map(|p| p.id.clone())
            .collect()
    });
    let recipes: std::collections::BTreeMap<String, Option<Vec<String>>> =
        state.read_model(|b: &mut super::batch::BatchModel| {
            products
                .into_iter()
                .map(|p| {
                    let q = recipe_qualifications(b, &cpc, &p);
                    (p, q)
                })
                .collect()
        });
    let (needs, from, to) = state.read_model(|m: &mut ScheduleModel| {
        let today = today(&state, m);
        let net = m.planner.network();
        let day = |field: &str, v: &str| {
            net.day_of(v).ok_or_else(|| {
                ApiError::bad_request(field, format!("{v:?} is not a date (YYYY-MM-DD)"))
            })
        };
        let from = match &q.from {
            Some(v) => day("from", v)?,
            None => today,
        };
        let to = match &q.to {
            Some(v) => day("to", v)?,
            None => from + 27,
        };
        if to < from || to - from >= STAFFING_DAYS_MAX {
            return Err(ApiError::bad_request(
                "to",
                format!("give a last day on or after from, at most {STAFFING_DAYS_MAX} days of it"),
            ));
        }
        let bookings = m.planner.bookings(None);
        let net = m.planner.network();
        let needs = staffing::needs(net, &bookings, from, to, |product| {
            recipes.get(product).cloned().flatten()
        });
        Ok((needs, net.date_of(from), net.date_of(to)))
    })?;
    let mut people: std::collections::BTreeMap<String, Vec<UserId>> = Default::default();
    for need in &needs {
        if !people.contains_key(&need.site)
            && let Ok(site) = SiteId::parse(&need.site)
        {
            let (at_site, _) = super::training::site_people_and_qualifications(&state, &site);
            people.insert(
                need.site.clone(),
                at_site.into_iter().map(|(u, _)| u).collect(),
            );
        }
    }
    let report = state.read_model(|t: &mut super::training::TrainingModel| {
        staffing::report(&from, &to, needs, |need| {
            let site = SiteId::parse(&need.site).map_err(|e| e.to_string())?;
            let qualification = t
                .matrix
                .requirement(&site, &need.action)
                .map_err(|e| e.to_string())?;
            let (start, end) = day_bounds(&need.start, &need.end)
                .ok_or_else(|| format!("stage dates {}..{} unreadable", need.start, need.end))?;
            let mut qualified = Vec::new();
            let mut not_qualified = Vec::new();
            for user in people.get(&need.site).map(Vec::as_slice).unwrap_or(&[]) {
                match cellops_training::report::held_throughout(
                    &t.state,
                    user,
                    &qualification,
                    start,
                    end,
                ) {
                    Ok(()) => qualified.push(user.to_string()),
                    Err((_, cellops_training::QualificationStatus::NeverGranted)) => {}
                    Err((at, status)) => not_qualified.push((
                        user.to_string(),
                        status.refusal_message(user, &qualification, at),
                    )),
                }
            }
            Ok((qualification, qualified, not_qualified))
        })
    });
    Ok(Json(json!({ "cpc": cpc, "report": report })))
}

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/bookings", post(book::<B>).get(list::<B>))
        .route("/api/bookings/check", post(check::<B>))
        .route("/api/bookings/{id}/cancel", post(cancel::<B>))
        .route("/api/schedule/gantt", get(gantt::<B>))
        .route("/api/schedule/replan", post(replan::<B>))
        .route("/api/schedule/staffing", get(staffing::<B>))
}
