//! The allogeneic dose bank over HTTP: bank a lot's doses, allocate a dose to a patient
//! order by the rules of `cellops_cold::decide_allocate` (the lot must be released in QC),
//! cancel an allocation, and recall a lot (every dose and recipient).

use super::parse_site;
use super::qc::QcModel;
use super::storage::{ColdModel, caller_id, cold_record};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{AppJson, idempotency_key};
use crate::openapi::RouteDoc;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use cellops_cold::{
    BankDose, ColdEvent, DoseOrder, RegisterLot, decide_allocate, decide_cancel_allocation,
    decide_register_lot, recall_lot,
};
use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::{Role, SiteId, Timestamp};
use cellops_ledger::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

/// The documented endpoints of this module.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/bank/lots",
        "Bank a lot: its doses (units split from the lot) and the donor HLA typing",
        true,
        &["site", "lot", "doses", "hla"],
    ),
    (
        "get",
        "/api/bank/lots/{lot}",
        "A banked lot with each dose's position and allocation",
        true,
        &[],
    ),
    (
        "post",
        "/api/bank/allocations",
        "Allocate a dose to a patient order: released, unallocated, stored, not expiring before needed_by, no excursion, HLA-compatible, first expiry first",
        true,
        &[
            "site",
            "order",
            "patient",
            "product",
            "antibodies",
            "needed_by",
        ],
    ),
    (
        "post",
        "/api/bank/allocations/cancel",
        "Withdraw an allocation with a reason",
        true,
        &["site", "dose", "order", "reason"],
    ),
    (
        "get",
        "/api/bank/lots/{lot}/recall",
        "Recall a lot: every dose, where it is, and every recipient",
        true,
        &[],
    ),
];

/// The routes of this module.
pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/bank/lots", post(register::<B>))
        .route("/api/bank/lots/{lot}", get(show::<B>))
        .route("/api/bank/allocations", post(allocate::<B>))
        .route("/api/bank/allocations/cancel", post(cancel::<B>))
        .route("/api/bank/lots/{lot}/recall", get(recall::<B>))
}

fn lot_stream(lot: &UnitCode) -> String {
    format!("lot/{}", lot.to_string().to_ascii_lowercase())
}

fn unit(field: &str, text: &str) -> ApiResult<UnitCode> {
    UnitCode::parse(text).map_err(|e| ApiError::from(e).field(field))
}

#[derive(Deserialize)]
pub struct RegisterBody {
    pub site: String,
    pub lot: String,
    pub doses: Vec<String>,
    #[serde(default)]
    pub hla: Vec<String>,
}

/// Banks a lot; each dose's expiry comes from custody.
pub async fn register<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<RegisterBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    caller.require(&[Role::Operator, Role::QaReviewer, Role::SiteAdmin], &site)?;
    let lot = unit("lot", &b.lot)?;
    let codes = b
        .doses
        .iter()
        .enumerate()
        .map(|(i, d)| unit(&format!("doses[{i}]"), d))
        .collect::<ApiResult<Vec<_>>>()?;
    state.sync().await?;
    let doses = {
        let custody = state.custody.lock().expect("custody lock");
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                custody
                    .unit(c)
                    .map(|u| BankDose {
                        code: *c,
                        expires_at: u.expires_at(),
                    })
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "doses[{i}]: unit {c} is not known to custody: record the split first"
                        ))
                    })
            })
            .collect::<ApiResult<Vec<_>>>()?
    };
    let command = RegisterLot {
        lot,
        doses,
        hla: b.hla.clone(),
        site: site.clone(),
        by: caller_id(&caller)?,
        at: state.clock.now(),
    };
    let event = {
        let custody = state.custody.lock().expect("custody lock").clone();
        state.read_model(|m: &mut ColdModel| decide_register_lot(&m.state, &custody, &command))?
    };
    let out = state
        .append(
            vec![cold_record(
                &event,
                &lot_stream(&lot),
                &caller.user.id,
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "lot": lot.to_string(), "doses": codes.len(), "seq": out.records[0].seq }),
    ))
}

/// True when QC lists the lot (or every one of its doses) in a batch released or released
/// at risk.
pub fn lot_released<B: Backend>(state: &AppState<B>, lot: &UnitCode) -> bool {
    let doses: Vec<UnitCode> = state.read_model(|m: &mut ColdModel| {
        m.state
            .lot(lot)
            .map(|l| l.doses.iter().map(|d| d.code).collect())
            .unwrap_or_default()
    });
    state.read_model(|m: &mut QcModel| {
        let permits = |c: &UnitCode| {
            m.release_status_of_unit(&c.to_string())
                .is_some_and(|s| s.permits_use())
        };
        permits(lot) || (!doses.is_empty() && doses.iter().all(permits))
    })
}

fn lot_view(m: &ColdModel, lot: &UnitCode) -> Option<Value> {
    let l = m.state.lot(lot)?;
    let doses: Vec<Value> = l
        .doses
        .iter()
        .map(|d| {
            json!({
                "dose": d.code.to_string(), "expires_at": d.expires_at,
                "position": m.state.stored(&d.code).map(|s| s.position.clone()),
                "allocation": m.state.allocation_of(&d.code),
            })
        })
        .collect();
    Some(json!({ "lot": lot.to_string(), "site": l.site, "hla": l.hla, "doses": doses }))
}

/// A banked lot.
pub async fn show<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(lot): Path<String>,
) -> ApiResult<Json<Value>> {
    let lot = unit("lot", &lot)?;
    state.sync().await?;
    let site: Option<SiteId> =
        state.read_model(|m: &mut ColdModel| m.state.lot(&lot).map(|l| l.site.clone()));
    let site = site.ok_or_else(|| ApiError::not_found(format!("lot {lot} is not banked")))?;
    caller.require_site(&site)?;
    let released = lot_released(&state, &lot);
    let mut view = state
        .read_model(|m: &mut ColdModel| lot_view(m, &lot))
        .expect("the lot exists");
    view["released"] = json!(released);
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct AllocateBody {
    pub site: String,
    pub order: String,
    pub patient: String,
    /// ISBT 128 product description code (5 characters).
    pub product: String,
    #[serde(default)]
    pub antibodies: Vec<String>,
    pub needed_by: Timestamp,
}

/// Who may allocate a dose to an order.
const ALLOCATE_ROLES: [Role; 4] = [
    Role::Physician,
    Role::Logistics,
    Role::QaReleaser,
    Role::SiteAdmin,
];

/// Allocates a dose to an order.
pub async fn allocate<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<AllocateBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    caller.require(&ALLOCATE_ROLES, &site)?;
    let order = OrderId::parse(&b.order).map_err(|e| ApiError::from(e).field("order"))?;
    let patient = SubjectId::parse(&b.patient).map_err(|e| ApiError::from(e).field("patient"))?;
    state.sync().await?;
    let event = allocate_dose(
        &state,
        DoseOrder {
            order,
            patient,
            product: b.product.clone(),
            antibodies: b.antibodies.clone(),
            needed_by: b.needed_by,
            site: site.clone(),
            by: caller_id(&caller)?,
            at: state.clock.now(),
        },
    )?;
    let ColdEvent::DoseAllocated { dose, lot, .. } = &event else {
        unreachable!("decide_allocate returns DoseAllocated")
    };
    let out = state
        .append(
            vec![cold_record(
                &event,
                &lot_stream(lot),
                &caller.user.id,
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    let position =
        state.read_model(|m: &mut ColdModel| m.state.stored(dose).map(|s| s.position.clone()));
    Ok(Json(
        json!({ "dose": dose.to_string(), "lot": lot.to_string(), "position": position, "seq": out.records[0].seq }),
    ))
}

/// Decides the allocation for `order` against the current state (the lead's vein-to-vein
/// flow calls this and appends the event with [`cold_record`] on the lot stream).
pub fn allocate_dose<B: Backend>(state: &AppState<B>, order: DoseOrder) -> ApiResult<ColdEvent> {
    let lots: Vec<UnitCode> =
        state.read_model(|m: &mut ColdModel| m.state.lots().map(|l| l.lot).collect());
    let released: Vec<UnitCode> = lots
        .into_iter()
        .filter(|l| lot_released(state, l))
        .collect();
    let custody = state.custody.lock().expect("custody lock").clone();
    Ok(state.read_model(|m: &mut ColdModel| {
        decide_allocate(&m.state, &custody, &order, |l| released.contains(l))
    })?)
}

#[derive(Deserialize)]
pub struct CancelBody {
    pub site: String,
    pub dose: String,
    pub order: String,
    pub reason: String,
}

/// Withdraws an allocation.
pub async fn cancel<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(b): AppJson<CancelBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &b.site)?;
    caller.require(&ALLOCATE_ROLES, &site)?;
    let dose = unit("dose", &b.dose)?;
    let order = OrderId::parse(&b.order).map_err(|e| ApiError::from(e).field("order"))?;
    state.sync().await?;
    let user = caller_id(&caller)?;
    let (event, lot) = state.read_model(|m: &mut ColdModel| {
        let lot = m.state.lot_of(&dose).map(|l| l.lot);
        decide_cancel_allocation(&m.state, &dose, &order, &b.reason, &user, state.clock.now())
            .map(|e| (e, lot))
    })?;
    let lot = lot.expect("an allocated dose belongs to a lot");
    let out = state
        .append(
            vec![cold_record(
                &event,
                &lot_stream(&lot),
                &caller.user.id,
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    Ok(Json(
        json!({ "cancelled": true, "seq": out.records[0].seq }),
    ))
}

/// Recalls a lot: every dose with status, position, shipment, allocation and infusion, and
/// every recipient. For QA, physicians, auditors and site administrators of the bank site.
pub async fn recall<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(lot): Path<String>,
) -> ApiResult<Json<Value>> {
    let lot = unit("lot", &lot)?;
    state.sync().await?;
    let site: Option<SiteId> =
        state.read_model(|m: &mut ColdModel| m.state.lot(&lot).map(|l| l.site.clone()));
    let site = site.ok_or_else(|| ApiError::not_found(format!("lot {lot} is not banked")))?;
    caller.require(
        &[
            Role::QaReviewer,
            Role::QaReleaser,
            Role::Physician,
            Role::Auditor,
            Role::SiteAdmin,
        ],
        &site,
    )?;
    let custody = state.custody.lock().expect("custody lock").clone();
    let recall = state.read_model(|m: &mut ColdModel| recall_lot(&m.state, &custody, &lot))?;
    Ok(Json(json!({
        "lot": lot.to_string(),
        "doses": recall.doses.iter().map(|d| json!({
            "dose": d.dose.to_string(), "status": d.status, "position": d.position,
            "allocated_to": d.allocated_to.as_ref().map(|(o, p)| json!({ "order": o, "patient": p })),
            "infused_into": d.infused_into.as_ref().map(|(o, p, at)| json!({ "order": o, "patient": p, "at": at })),
            "shipment": d.shipment,
        })).collect::<Vec<_>>(),
        "recipients": recall.recipients,
    })))
}
