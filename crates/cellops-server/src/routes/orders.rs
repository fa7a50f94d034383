//! Vein to vein over HTTP: enrolment, orders signed by the treating physician, collection,
//! the flow's milestones, two-person bedside verification, infusion and follow-up, and the
//! status every site sees for its own orders. Decisions are `cellops-orders`' and
//! `cellops-custody`'s; this module checks who may ask and what they are qualified for,
//! records the decided events (refusals too) and shows the read model.

use super::custody::{custody_record, unit_stream};
use super::ledger::{SignatureInput, authorize_signature};
use super::parse_site;
use super::training::require_qualified;
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
use cellops_custody::{
    BedsideCheck, CheckerScan, InfusionOrder, LocationId, OrderId, RecordInfusion, SubjectId,
    UnitCode, decide_bedside, decide_infusion,
};
use cellops_domain::events::EventType;
use cellops_domain::{Role, SiteId, Timestamp, UserId};
use cellops_ledger::{Backend, NewRecord, Record};
use cellops_orders::{
    Dose, DoseBasis, FollowUpKind, Milestone, Order, OrderBook, OrderError, OrderEvent, PlaceOrder,
    Product, RecordCollection, RecordFollowUp, RecordInfusionDetails, RecordMilestone, RecordView,
    Refused, Window,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

/// The order and enrolment event types.
pub const EVENT_TYPES: &[EventType] = cellops_orders::ORDER_EVENT_TYPES;

/// The documented endpoints.
pub const ROUTES: &[RouteDoc] = &[
    (
        "post",
        "/api/patients",
        "Enrol a patient under a random pseudonymous subject id",
        true,
        &["site"],
    ),
    (
        "get",
        "/api/orders",
        "Orders of a site (hospital or manufacturer)",
        true,
        &[],
    ),
    (
        "post",
        "/api/orders",
        "Order a therapy (physician); sign it with /api/orders/{order}/sign",
        true,
        &[
            "site",
            "subject",
            "product",
            "manufacturer",
            "dose_cells",
            "dose_basis",
            "body_weight_kg",
            "window_earliest",
            "window_latest",
        ],
    ),
    (
        "get",
        "/api/manufacturers",
        "Manufacturing sites: where an approved recipe makes each product (an order's manufacturer is one of them)",
        true,
        &[],
    ),
    (
        "get",
        "/api/orders/{order}",
        "The order's status: what happened, what is next, predicted dates",
        true,
        &[],
    ),
    (
        "post",
        "/api/orders/{order}/sign",
        "The treating physician's e-signature (meaning Ordered)",
        true,
        &["password", "user_id"],
    ),
    (
        "post",
        "/api/orders/{order}/collection",
        "Record the collection (the unit must be registered for the patient)",
        true,
        &[
            "site",
            "unit",
            "volume_ml",
            "nucleated_cells",
            "cd3_cells",
            "collected_at",
        ],
    ),
    (
        "post",
        "/api/orders/{order}/milestones",
        "Record a step of the flow with the performer's e-signature",
        true,
        &[
            "site",
            "milestone",
            "unit",
            "batch",
            "predicted_at",
            "note",
            "password",
            "user_id",
        ],
    ),
    (
        "post",
        "/api/orders/{order}/bedside",
        "Two-person bedside verification: both scan wristband and unit",
        true,
        &["site", "location", "first", "second"],
    ),
    (
        "post",
        "/api/orders/{order}/infusion",
        "Record the infusion (after release and bedside verification)",
        true,
        &["site", "volume_ml", "started_at", "route", "observations"],
    ),
    (
        "post",
        "/api/orders/{order}/follow-up",
        "Record an adverse event or a response after infusion",
        true,
        &["site", "kind", "term", "grade", "observed_at"],
    ),
];

/// The order book as a server read model.
#[derive(Default)]
pub struct Orders {
    pub book: OrderBook,
}

impl Projection for Orders {
    fn apply(&mut self, r: &Record) {
        let signature = r
            .signature
            .as_ref()
            .map(|s| (s.meaning.as_str(), s.signer.as_str()));
        self.book.apply(RecordView {
            seq: r.seq,
            stream: &r.stream,
            event_type: &r.event_type,
            payload: &r.payload,
            actor: &r.actor,
            recorded_at: r.recorded_at,
            signature,
        });
        for (seq, why) in self.book.unreadable.drain(..) {
            tracing::error!(seq, error = %why, "unreadable order record");
        }
    }
}

pub fn router<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/patients", post(enrol::<B>))
        .route("/api/orders", get(list::<B>).post(place::<B>))
        .route("/api/manufacturers", get(list_manufacturers::<B>))
        .route("/api/orders/{order}", get(show::<B>))
        .route("/api/orders/{order}/sign", post(sign::<B>))
        .route("/api/orders/{order}/collection", post(collection::<B>))
        .route("/api/orders/{order}/milestones", post(milestone::<B>))
        .route("/api/orders/{order}/bedside", post(bedside::<B>))
        .route("/api/orders/{order}/infusion", post(infusion::<B>))
        .route("/api/orders/{order}/follow-up", post(follow_up::<B>))
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        let status = match e {
            OrderError::UnknownOrder { .. } => StatusCode::NOT_FOUND,
            OrderError::WrongStage { .. }
            | OrderError::NotSigned { .. }
            | OrderError::NotReleased { .. } => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let mut err = ApiError::new(status, e.rule(), e.to_string());
        if let Some(f) = e.field() {
            err = err.field(f);
        }
        err
    }
}

fn order_record(event: &OrderEvent, actor: &str, site: &SiteId) -> NewRecord {
    NewRecord::new(
        &event.stream(),
        event.type_name(),
        cellops_orders::EVENT_VERSION,
        event.to_json(),
        actor,
        site.as_str(),
    )
}

fn user_id(caller: &Caller) -> ApiResult<UserId> {
    UserId::parse(&caller.user.id).map_err(ApiError::internal)
}

fn parse_order(text: &str) -> ApiResult<OrderId> {
    OrderId::parse(text).map_err(|e| ApiError::bad_request("order", e.to_string()))
}

fn parse_unit(field: &str, text: &str) -> ApiResult<UnitCode> {
    UnitCode::parse(text).map_err(|e| ApiError::bad_request(field, e.to_string()))
}

/// Records a refused command (who, what, the rule) and returns the refusal as the answer.
async fn refuse<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    order: Option<&OrderId>,
    action: &str,
    site: &SiteId,
    error: ApiError,
) -> ApiError {
    let event = OrderEvent::Refused(Refused {
        order: order.cloned(),
        action: action.to_string(),
        rule: error.code.to_string(),
        message: error.message.clone(),
        by: match user_id(caller) {
            Ok(u) => u,
            Err(e) => return e,
        },
        site: site.clone(),
        at: state.clock.now(),
    });
    match state
        .append(vec![order_record(&event, &caller.user.id, site)], None)
        .await
    {
        Ok(_) => error,
        Err(e) => e,
    }
}

/// Runs a decision against the order book (the caller has synced the read models once at
/// the start of the request); a refusal is recorded and answered.
async fn decide<B: Backend, T>(
    state: &AppState<B>,
    caller: &Caller,
    order: Option<&OrderId>,
    action: &str,
    site: &SiteId,
    f: impl FnOnce(&OrderBook) -> Result<T, OrderError>,
) -> ApiResult<T> {
    let decided = state.read_model(|m: &mut Orders| f(&m.book));
    match decided {
        Ok(v) => Ok(v),
        Err(e) => Err(refuse(state, caller, order, action, site, e.into()).await),
    }
}

fn order_snapshot<B: Backend>(state: &AppState<B>, id: &OrderId) -> ApiResult<Order> {
    state
        .read_model(|m: &mut Orders| m.book.order(id).cloned())
        .ok_or_else(|| {
            ApiError::from(OrderError::UnknownOrder {
                order: id.to_string(),
            })
        })
}

/// Orders are visible to roles at the treating hospital and at the manufacturing site.
fn require_order_site(caller: &Caller, order: &Order) -> ApiResult<()> {
    if caller.user.has_any_role_at(&order.site) || caller.user.has_any_role_at(&order.manufacturer)
    {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "order {} does not exist",
        order.id
    )))
}

fn order_view(order: &Order, now: Timestamp) -> Value {
    let status = cellops_orders::status(order, now);
    json!({
        "order": order.id,
        "subject": order.subject,
        "site": order.site,
        "manufacturer": order.manufacturer,
        "product": order.product,
        "dose": order.dose,
        "dose_counts": order.product.rules().dose_counts,
        "window": order.window,
        "physician": order.physician,
        "placed_at": order.placed_at,
        "placed_seq": order.placed_seq,
        "signed_at": order.signed_at,
        "stage": status.stage,
        "next": status.next,
        "collected_units": order.collected_units,
        "batch": order.batch,
        "product_unit": order.product_unit,
        "released_at_risk": order.released_at_risk,
        "failed_batches": order.failed_batches,
        "infused_at": order.infused_at,
        "happened": status.happened,
        "predicted": status.predicted,
    })
}

#[derive(Deserialize)]
pub struct EnrolBody {
    pub site: String,
}

/// Enrols a patient under a fresh random subject id (never a name, birth date or MRN; the
/// hospital keeps its own link).
pub async fn enrol<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<EnrolBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Physician, Role::Nurse], &site)?;
    let subject = state.with_rng(|r| random_id(r, "S-", 10));
    let subject = SubjectId::parse(&subject).map_err(ApiError::internal)?;
    let (by, at) = (user_id(&caller)?, state.clock.now());
    state.sync().await?;
    let enrolled = decide(&state, &caller, None, "enrol", &site, |book| {
        cellops_orders::decide_enrol(book, subject, site.clone(), by, at)
    })
    .await?;
    let event = OrderEvent::Enrolled(enrolled);
    let out = state
        .append(
            vec![order_record(&event, &caller.user.id, &site)],
            idempotency_key(&headers),
        )
        .await?;
    let subject = out.records[0].payload_json()["subject"].clone();
    Ok(Json(json!({ "subject": subject, "site": site })))
}

/// A random identifier: `prefix` and `len` characters of Crockford base 32.
fn random_id(rng: &mut impl Rng, prefix: &str, len: usize) -> String {
    format!(
        "{prefix}{}",
        cellops_domain::crockford_base32(rng.r#gen(), len)
    )
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub site: String,
}

/// The orders of a site: those it treats and those it manufactures.
pub async fn list<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    AppQuery(q): AppQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &q.site)?;
    caller.require_site(&site)?;
    state.sync().await?;
    let now = state.clock.now();
    let orders: Vec<Value> = state.read_model(|m: &mut Orders| {
        m.book
            .orders()
            .filter(|o| o.site == site || o.manufacturer == site)
            .map(|o| {
                let s = cellops_orders::status(o, now);
                json!({
                    "order": o.id, "subject": o.subject, "product": o.product,
                    "site": o.site, "stage": s.stage, "next": s.next,
                    "predicted": s.predicted,
                })
            })
            .collect()
    });
    Ok(Json(json!({ "orders": orders })))
}

pub async fn show<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    Path(order): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    state.sync().await?;
    let order = order_snapshot(&state, &id)?;
    require_order_site(&caller, &order)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

/// The manufacturing sites and the order products each makes: a site makes a product
/// when a QA-approved recipe of it is registered there (the allogeneic product's lots
/// too: its dose bank is at the site that makes them), sorted by site.
pub fn manufacturing_sites<B: Backend>(state: &AppState<B>) -> Vec<(String, Vec<Product>)> {
    state.read_model(|m: &mut super::batch::BatchModel| {
        let sites: std::collections::BTreeSet<String> =
            m.recipes().map(|r| r.site.clone()).collect();
        sites
            .into_iter()
            .map(|site| {
                let products: Vec<Product> = cellops_orders::PRODUCTS
                    .into_iter()
                    .filter(|p| m.latest_approved(p.recipe(), &site).is_some())
                    .collect();
                (site, products)
            })
            .filter(|(_, products)| !products.is_empty())
            .collect()
    })
}

/// `manufacturer` must make `product`; else a refusal naming the sites that do.
fn check_manufacturer<B: Backend>(
    state: &AppState<B>,
    manufacturer: &SiteId,
    product: Product,
) -> ApiResult<()> {
    let sites = manufacturing_sites(state);
    if sites
        .iter()
        .any(|(s, p)| s == manufacturer.as_str() && p.contains(&product))
    {
        return Ok(());
    }
    let makers: Vec<&str> = sites
        .iter()
        .filter(|(_, p)| p.contains(&product))
        .map(|(s, _)| s.as_str())
        .collect();
    let choose = match makers.is_empty() {
        true => format!("no site has an approved {} recipe yet", product.id()),
        false => format!("choose one of: {}", makers.join(", ")),
    };
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_manufacturer",
        format!(
            "{manufacturer} does not make {}: no approved {} recipe is registered there; {choose} (GET /api/manufacturers)",
            product.id(),
            product.recipe()
        ),
    )
    .field("manufacturer"))
}

/// The manufacturing sites (any signed-in user: an ordering physician chooses among them).
pub async fn list_manufacturers<B: Backend>(
    State(state): State<AppState<B>>,
    _caller: Caller,
) -> ApiResult<Json<Value>> {
    state.sync().await?;
    let sites: Vec<Value> = manufacturing_sites(&state)
        .into_iter()
        .map(|(site, products)| {
            json!({"site": site, "products": products.iter().map(|p| p.id()).collect::<Vec<_>>()})
        })
        .collect();
    Ok(Json(json!({ "manufacturers": sites })))
}

#[derive(Deserialize)]
pub struct PlaceBody {
    pub site: String,
    pub subject: String,
    pub product: String,
    /// The site that makes the product (CPC) or holds the dose bank.
    pub manufacturer: String,
    pub dose_cells: f64,
    pub dose_basis: DoseBasis,
    pub body_weight_kg: Option<f64>,
    pub window_earliest: Timestamp,
    pub window_latest: Timestamp,
}

/// A physician orders a therapy. The order counts once the same physician signs it.
pub async fn place<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<PlaceBody>,
) -> ApiResult<Json<Value>> {
    let site = parse_site("site", &body.site)?;
    let manufacturer = parse_site("manufacturer", &body.manufacturer)?;
    caller.require(&[Role::Physician], &site)?;
    let subject = SubjectId::parse(&body.subject)
        .map_err(|e| ApiError::bad_request("subject", e.to_string()))?;
    let product = Product::parse(&body.product)?;
    state.sync().await?;
    check_manufacturer(&state, &manufacturer, product)?;
    let order = state.with_rng(|r| random_id(r, "ORD-", 8));
    let order = parse_order(&order)?;
    let command = PlaceOrder {
        order: order.clone(),
        subject,
        site: site.clone(),
        manufacturer,
        product,
        dose: Dose {
            cells: body.dose_cells,
            basis: body.dose_basis,
            body_weight_kg: body.body_weight_kg,
        },
        window: Window {
            earliest: body.window_earliest,
            latest: body.window_latest,
        },
        physician: user_id(&caller)?,
        at: state.clock.now(),
    };
    state.sync().await?;
    let placed = decide(&state, &caller, None, "order", &site, |book| {
        cellops_orders::decide_place(book, command)
    })
    .await?;
    let event = OrderEvent::Placed(placed);
    let out = state
        .append(
            vec![order_record(&event, &caller.user.id, &site)],
            idempotency_key(&headers),
        )
        .await?;
    let id = parse_order(
        out.records[0].payload_json()["order"]
            .as_str()
            .unwrap_or(""),
    )?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

#[derive(Deserialize)]
pub struct SignOrderBody {
    pub password: String,
    pub user_id: Option<String>,
}

/// The treating physician signs the order (meaning `Ordered`).
pub async fn sign<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<SignOrderBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    state.sync().await?;
    let order = order_snapshot(&state, &id)?;
    require_order_site(&caller, &order)?;
    if order.physician.as_str() != caller.user.id {
        return Err(ApiError::forbidden(format!(
            "order {id} was placed by {}: only the treating physician signs it",
            order.physician
        )));
    }
    if order.signed_at.is_some() {
        return Err(ApiError::conflict(format!("order {id} is already signed")));
    }
    let sign = super::ledger::SignBody {
        seq: order.placed_seq,
        meaning: "Ordered".into(),
        password: body.password,
        user_id: body.user_id,
    };
    super::ledger::esign(&state, &caller, &sign, idempotency_key(&headers)).await?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

#[derive(Deserialize)]
pub struct CollectionBody {
    pub site: String,
    /// The registered starting-material unit (DIN + product code) for this patient.
    pub unit: String,
    pub volume_ml: f64,
    pub nucleated_cells: Option<f64>,
    pub cd3_cells: Option<f64>,
    /// When the collection ended; now when left out.
    pub collected_at: Option<Timestamp>,
}

/// Records the collection against the order. The unit must be registered (POST /api/units)
/// for the order's patient; the collector must be qualified for the collection.
pub async fn collection<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<CollectionBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Collector, Role::Nurse, Role::Physician], &site)?;
    let unit = parse_unit("unit", &body.unit)?;
    state.sync().await?;
    let order = order_snapshot(&state, &id)?;
    require_order_site(&caller, &order)?;
    let action = match order.product.rules().collection {
        cellops_orders::Collection::BoneMarrowAspiration => "collection.bone_marrow",
        _ => "collection.apheresis",
    };
    let now = state.clock.now();
    let by = user_id(&caller)?;
    require_qualified(&state, &by, &site, action, now).await?;
    let unit_patient = state
        .custody
        .lock()
        .expect("custody lock")
        .unit(&unit)
        .map(|u| u.patient().cloned());
    match unit_patient {
        None => {
            let e = ApiError::bad_request(
                "unit",
                format!(
                    "unit {} is not registered: register it first (POST /api/units)",
                    unit.eye_readable()
                ),
            );
            return Err(refuse(&state, &caller, Some(&id), "collection", &site, e).await);
        }
        Some(p) if p.as_ref() != Some(&order.subject) => {
            let e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unit_for_other_patient",
                format!(
                    "unit {} is not labelled for subject {}: print and apply this patient's labels",
                    unit.eye_readable(),
                    order.subject
                ),
            )
            .field("unit");
            return Err(refuse(&state, &caller, Some(&id), "collection", &site, e).await);
        }
        Some(_) => {}
    }
    let command = RecordCollection {
        order: id.clone(),
        unit,
        volume_ml: body.volume_ml,
        nucleated_cells: body.nucleated_cells,
        cd3_cells: body.cd3_cells,
        collected_at: body.collected_at.unwrap_or(now),
        by,
        site: site.clone(),
        at: now,
    };
    let collected = decide(&state, &caller, Some(&id), "collection", &site, |book| {
        cellops_orders::decide_collection(book, command)
    })
    .await?;
    let event = OrderEvent::Collected(collected);
    state
        .append(
            vec![order_record(&event, &caller.user.id, &site)],
            idempotency_key(&headers),
        )
        .await?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

#[derive(Deserialize)]
pub struct MilestoneBody {
    pub site: String,
    pub milestone: String,
    pub unit: Option<String>,
    pub batch: Option<String>,
    pub predicted_at: Option<Timestamp>,
    pub note: Option<String>,
    /// The performer's e-signature (meaning Performed; Released for a release).
    pub password: String,
    pub user_id: Option<String>,
}

/// Who may record each milestone (by role at the site where it happens).
pub(crate) fn milestone_roles(m: Milestone) -> &'static [Role] {
    match m {
        Milestone::ShippedToCpc | Milestone::ShippedToHospital => &[
            Role::Logistics,
            Role::Collector,
            Role::Nurse,
            Role::Operator,
        ],
        Milestone::ReceivedAtCpc
        | Milestone::ManufacturingStarted
        | Milestone::DosePredicted
        | Milestone::Harvested
        | Milestone::BatchFailed => &[Role::Operator],
        Milestone::Released | Milestone::ReleasedAtRisk => &[Role::QaReleaser],
        Milestone::DoseAllocated => &[Role::Operator, Role::Logistics, Role::QaReleaser],
        Milestone::ReceivedAtHospital | Milestone::Thawed => &[Role::Nurse, Role::Physician],
    }
}

/// Records a step the order flow performs itself (hand-off to the courier, receipt and
/// identity check at the CPC, thaw), signed by its performer. Steps another module performs
/// (batch, release, bank, shipment) are refused here and recorded as refused: their
/// milestones come only from that module's records (`OrderBook::apply`).
pub async fn milestone<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<MilestoneBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    let site = parse_site("site", &body.site)?;
    let milestone = Milestone::parse(&body.milestone)?;
    if milestone.performed_by().is_none() {
        caller.require(milestone_roles(milestone), &site)?;
    }
    let unit = body
        .unit
        .as_deref()
        .map(|u| parse_unit("unit", u))
        .transpose()?;
    state.sync().await?;
    let order = order_snapshot(&state, &id)?;
    require_order_site(&caller, &order)?;
    // Thawing is irreversible: not while the cold chain blocks the unit.
    if milestone == Milestone::Thawed
        && let Some(product) = order.product_unit
    {
        require_cold_chain_clear(&state, &caller, &id, "thaw", &site, &product).await?;
    }
    let now = state.clock.now();
    let by = user_id(&caller)?;
    let command = RecordMilestone {
        order: id.clone(),
        milestone,
        unit,
        batch: body.batch.clone(),
        predicted_at: body.predicted_at,
        manual: false,
        note: body.note.clone(),
        by,
        site: site.clone(),
        at: now,
    };
    let recorded = decide(
        &state,
        &caller,
        Some(&id),
        milestone.as_str(),
        &site,
        |book| cellops_orders::decide_milestone(book, command),
    )
    .await?;
    let meaning = "Performed";
    let signature = authorize_signature(
        &state,
        &caller,
        &SignatureInput {
            meaning,
            password: &body.password,
            user_id: body.user_id.as_deref(),
        },
        &site,
        &format!("{} of order {id}", milestone.as_str()),
    )
    .await?;
    let mut record = order_record(&OrderEvent::Milestone(recorded), &caller.user.id, &site);
    record.signature = Some(signature);
    state
        .append(vec![record], idempotency_key(&headers))
        .await?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

/// Refuses a unit the cold chain blocks (an excursion not assessed by QA, a rejected one,
/// an expired storage limit): a hard stop before thaw, bedside and infusion.
async fn require_cold_chain_clear<B: Backend>(
    state: &AppState<B>,
    caller: &Caller,
    order: &OrderId,
    action: &str,
    site: &SiteId,
    unit: &UnitCode,
) -> ApiResult<()> {
    match super::storage::cold_chain_block(state, unit) {
        None => Ok(()),
        Some(why) => {
            let e = ApiError::new(
                StatusCode::CONFLICT,
                "cold_chain_blocked",
                format!("STOP: unit {} may not be used: {why}", unit.eye_readable()),
            );
            Err(refuse(state, caller, Some(order), action, site, e).await)
        }
    }
}

#[derive(Deserialize)]
pub struct ScanPair {
    /// The wristband as scanned (pseudonymous subject id).
    pub wristband: String,
    /// The unit label as scanned (ISBT 128 data structures).
    pub unit: String,
}

#[derive(Deserialize)]
pub struct SecondChecker {
    pub user_id: String,
    pub password: String,
    pub wristband: String,
    pub unit: String,
}

#[derive(Deserialize)]
pub struct BedsideBody {
    pub site: String,
    pub location: String,
    /// The caller's scans.
    pub first: ScanPair,
    /// The second checker authenticates on the same device and scans again.
    pub second: SecondChecker,
}

/// Two-person bedside verification. Both checkers must be different, hold a clinical role and
/// the bedside qualification at the order's hospital now, and each scan must match the
/// order's patient and unit. Any mismatch is a hard stop, recorded with who, what and where.
pub async fn bedside<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<BedsideBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    let site = parse_site("site", &body.site)?;
    let location = LocationId::parse(&body.location)
        .map_err(|e| ApiError::bad_request("location", e.to_string()))?;
    caller.require(&[Role::Nurse, Role::Physician], &site)?;
    let second = UserId::parse(&body.second.user_id)
        .map_err(|e| ApiError::bad_request("second.user_id", e.to_string()))?;
    super::auth::check_password(
        &state,
        second.as_str(),
        &body.second.password,
        "esig.failed",
        json!(format!("second checker at the bedside of order {id}")),
    )
    .await
    .map_err(|e| e.field("second.password"))?;
    state.sync().await?;
    let unit = decide(&state, &caller, Some(&id), "bedside", &site, |book| {
        cellops_orders::check_bedside(book, &id, &site)
    })
    .await?;
    let order = order_snapshot(&state, &id)?;
    require_cold_chain_clear(&state, &caller, &id, "bedside", &site, &unit).await?;
    let now = state.clock.now();
    let first = user_id(&caller)?;
    for checker in [&first, &second] {
        require_qualified(&state, checker, &site, "bedside.verify", now).await?;
    }
    let clinical = {
        let accounts = state.accounts.lock().expect("accounts lock");
        let second_user = accounts.user(second.as_str()).cloned();
        let first_user = caller.user.clone();
        move |u: &UserId, s: &SiteId, _at: Timestamp| {
            let user = if u.as_str() == first_user.id {
                Some(first_user.clone())
            } else {
                second_user.clone().filter(|x| x.id == u.as_str())
            };
            user.is_some_and(|x| x.has_role(Role::Nurse, s) || x.has_role(Role::Physician, s))
        }
    };
    let check = BedsideCheck {
        order: InfusionOrder {
            order: id.clone(),
            patient: order.subject.clone(),
            unit,
            site: site.clone(),
        },
        first: CheckerScan {
            user: first,
            wristband: body.first.wristband,
            unit: body.first.unit,
        },
        second: CheckerScan {
            user: second,
            wristband: body.second.wristband,
            unit: body.second.unit,
        },
        location,
        at: now,
    };
    let decided = decide_bedside(
        &state.custody.lock().expect("custody lock"),
        &check,
        &clinical,
    );
    let actor = caller.user.id.clone();
    match decided {
        Ok(event) => {
            let record = custody_record(&event, &unit_stream(&unit), &actor, &site);
            state
                .append(vec![record], idempotency_key(&headers))
                .await?;
            let order = order_snapshot(&state, &id)?;
            Ok(Json(order_view(&order, state.clock.now())))
        }
        Err(refusal) => {
            let record = custody_record(&refusal.event, &unit_stream(&unit), &actor, &site);
            state.append(vec![record], None).await?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                refusal.error.reason_code(),
                format!("STOP: {}", refusal.error),
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct InfusionBody {
    pub site: String,
    pub volume_ml: f64,
    /// When the infusion started; now when left out.
    pub started_at: Option<Timestamp>,
    pub route: String,
    pub observations: Option<String>,
}

/// Records the infusion: only after release (or a documented release at risk) and a fresh
/// two-person bedside verification, within the treatment window, at the order's hospital.
pub async fn infusion<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<InfusionBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Nurse, Role::Physician], &site)?;
    let now = state.clock.now();
    let by = user_id(&caller)?;
    state.sync().await?;
    let command = RecordInfusionDetails {
        order: id.clone(),
        volume_ml: body.volume_ml,
        started_at: body.started_at.unwrap_or(now),
        route: body.route,
        observations: body.observations,
        by: by.clone(),
        site: site.clone(),
        at: now,
    };
    let details = decide(&state, &caller, Some(&id), "infusion", &site, |book| {
        cellops_orders::decide_infusion_details(book, command)
    })
    .await?;
    require_qualified(&state, &by, &site, "infusion.record", now).await?;
    require_cold_chain_clear(&state, &caller, &id, "infusion", &site, &details.unit).await?;
    let events = {
        let custody = state.custody.lock().expect("custody lock");
        decide_infusion(
            &custody,
            &RecordInfusion {
                order: id.clone(),
                by,
                at: now,
            },
        )
    };
    let events = match events {
        Ok(events) => events,
        Err(e) => {
            let err = ApiError::from(e);
            return Err(refuse(&state, &caller, Some(&id), "infusion", &site, err).await);
        }
    };
    let unit_code = details.unit;
    let mut records: Vec<NewRecord> = events
        .iter()
        .map(|e| custody_record(e, &unit_stream(&unit_code), &caller.user.id, &site))
        .collect();
    records.push(order_record(
        &OrderEvent::Infused(details),
        &caller.user.id,
        &site,
    ));
    state.append(records, idempotency_key(&headers)).await?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}

#[derive(Deserialize)]
pub struct FollowUpBody {
    pub site: String,
    pub kind: FollowUpKind,
    pub term: String,
    pub grade: Option<u8>,
    pub observed_at: Option<Timestamp>,
}

/// Records an adverse event or a response after infusion (treating hospital).
pub async fn follow_up<B: Backend>(
    State(state): State<AppState<B>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    AppJson(body): AppJson<FollowUpBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_order(&order)?;
    let site = parse_site("site", &body.site)?;
    caller.require(&[Role::Physician, Role::Nurse], &site)?;
    let now = state.clock.now();
    let command = RecordFollowUp {
        order: id.clone(),
        kind: body.kind,
        term: body.term,
        grade: body.grade,
        observed_at: body.observed_at.unwrap_or(now),
        by: user_id(&caller)?,
        site: site.clone(),
        at: now,
    };
    state.sync().await?;
    let recorded = decide(&state, &caller, Some(&id), "follow_up", &site, |book| {
        cellops_orders::decide_follow_up(book, command)
    })
    .await?;
    state
        .append(
            vec![order_record(
                &OrderEvent::FollowUp(recorded),
                &caller.user.id,
                &site,
            )],
            idempotency_key(&headers),
        )
        .await?;
    let order = order_snapshot(&state, &id)?;
    Ok(Json(order_view(&order, state.clock.now())))
}
