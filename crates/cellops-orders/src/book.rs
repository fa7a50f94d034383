//! The order book: every enrolment and order, folded from the ledger, with each order's stage
//! and timeline. Pure: the server feeds it records in ledger order.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::event::{Dose, Milestone, OrderEvent, Window};
use crate::product::Product;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Placed, waiting for the physician's e-signature.
    Ordered,
    /// Signed: waiting for collection (autologous) or dose allocation (allogeneic).
    Signed,
    /// Starting material collected at the hospital.
    Collected,
    /// On the way to the CPC.
    ShippedToCpc,
    /// Received at the CPC, waiting for the batch to start.
    ReceivedAtCpc,
    /// A batch is running.
    Manufacturing,
    /// Harvested and filled; QC and release pending.
    Harvested,
    /// Released by QA (or at risk).
    Released,
    /// A banked dose is allocated (allogeneic).
    DoseAllocated,
    /// On the way to the hospital.
    ShippedToHospital,
    /// At the hospital.
    ReceivedAtHospital,
    /// Thawed at the bedside.
    Thawed,
    /// Two-person bedside verification passed.
    Verified,
    /// Infused.
    Infused,
    /// The batch failed: a new collection is needed.
    Failed,
}

impl Stage {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ordered => "ordered",
            Stage::Signed => "signed",
            Stage::Collected => "collected",
            Stage::ShippedToCpc => "shipped_to_cpc",
            Stage::ReceivedAtCpc => "received_at_cpc",
            Stage::Manufacturing => "manufacturing",
            Stage::Harvested => "harvested",
            Stage::Released => "released",
            Stage::DoseAllocated => "dose_allocated",
            Stage::ShippedToHospital => "shipped_to_hospital",
            Stage::ReceivedAtHospital => "received_at_hospital",
            Stage::Thawed => "thawed",
            Stage::Verified => "verified",
            Stage::Infused => "infused",
            Stage::Failed => "failed",
        }
    }

    /// What the order waits for, in words.
    pub fn next(self, product: Product) -> &'static str {
        match self {
            Stage::Ordered => "the treating physician's e-signature",
            Stage::Signed if product.is_autologous() => "collection at the hospital",
            Stage::Signed => "allocation of a released dose from the bank",
            Stage::Collected => "hand-off to the courier for the CPC",
            Stage::ShippedToCpc => "receipt and identity check at the CPC",
            Stage::ReceivedAtCpc => "start of the batch from the approved recipe",
            Stage::Manufacturing => "harvest when the dose is reached",
            Stage::Harvested => "QC results and QA release",
            Stage::Released | Stage::DoseAllocated => "shipment to the hospital",
            Stage::ShippedToHospital => "receipt at the hospital",
            Stage::ReceivedAtHospital => "thaw at the bedside",
            Stage::Thawed => "two-person bedside verification",
            Stage::Verified => "infusion",
            Stage::Infused => "follow-up",
            Stage::Failed => "a new collection",
        }
    }
}

/// One line of an order's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Ledger sequence number of the record.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened (event type or milestone name).
    pub what: String,
    /// Who did it.
    pub by: String,
    /// Detail worth showing (unit, batch, reason…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// True when the step was recorded by hand for a module not wired in yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
}

/// An order and everything known about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub subject: SubjectId,
    pub site: SiteId,
    /// The site that makes the product or holds the dose bank.
    pub manufacturer: SiteId,
    pub product: Product,
    pub dose: Dose,
    pub window: Window,
    pub physician: UserId,
    pub placed_at: Timestamp,
    /// Sequence number of the `order.placed` record (what the physician signs).
    pub placed_seq: u64,
    pub signed_at: Option<Timestamp>,
    pub stage: Stage,
    /// Starting-material units collected (one per collection).
    pub collected_units: Vec<UnitCode>,
    pub collected_at: Option<Timestamp>,
    /// The batch making the product.
    pub batch: Option<String>,
    /// The unit to infuse (final product or allocated dose).
    pub product_unit: Option<UnitCode>,
    pub released_at_risk: bool,
    pub predicted_dose_at: Option<Timestamp>,
    /// The collection slot booked for the order and the infusion date the schedule plans
    /// with it (`schedule.booked` naming the order; gone when the booking is cancelled).
    pub booked: Option<Booked>,
    pub infused_at: Option<Timestamp>,
    /// Batches that failed for this order.
    pub failed_batches: u32,
    pub timeline: Vec<TimelineEntry>,
    /// When each milestone was (last) reached.
    #[serde(skip)]
    pub reached: BTreeMap<&'static str, Timestamp>,
}

/// A booked slot: the schedule's dates for the order (midnight UTC of each date).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Booked {
    pub collection: Timestamp,
    pub infusion: Timestamp,
}

/// The id the schedule gives the booking of `order` (`bk-<order>` in lower case: order ids
/// are upper case, ledger streams lower case). `routes::schedule::book_slot` names bookings
/// by it, and the order book finds the order of a cancelled booking by it.
pub fn booking_id(order: &str) -> String {
    format!("bk-{}", order.to_ascii_lowercase())
}

impl Order {
    /// True once QA released the product (or released it at risk), or a released banked dose
    /// was allocated.
    pub fn is_released(&self) -> bool {
        self.reached.contains_key(Milestone::Released.as_str())
            || self
                .reached
                .contains_key(Milestone::ReleasedAtRisk.as_str())
            || self.reached.contains_key(Milestone::DoseAllocated.as_str())
    }

    fn push(&mut self, seq: u64, at: Timestamp, what: &str, by: &str, detail: Option<String>) {
        self.timeline.push(TimelineEntry {
            seq,
            at,
            what: what.to_string(),
            by: by.to_string(),
            detail,
            manual: false,
        });
    }
}

/// A ledger record as the order book reads it.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub seq: u64,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub actor: &'a str,
    pub recorded_at: Timestamp,
    /// The e-signature's meaning and signer, when the record carries one.
    pub signature: Option<(&'a str, &'a str)>,
}

/// All enrolments and orders.
#[derive(Debug, Default)]
pub struct OrderBook {
    enrolled: BTreeMap<SubjectId, SiteId>,
    orders: BTreeMap<OrderId, Order>,
    /// Order id by ledger stream.
    by_stream: BTreeMap<String, OrderId>,
    /// How the records of the modules that perform the flow's steps find their order.
    links: Links,
    /// Records that could not be read (logged by the caller).
    pub unreadable: Vec<(u64, String)>,
}

/// The keys by which a module's record names an order's material: the starting-material
/// unit a batch starts from, the batch, the product unit QC registers, the banked dose, the
/// shipment that carries a product unit.
#[derive(Debug, Default)]
struct Links {
    by_collected: BTreeMap<UnitCode, OrderId>,
    by_batch: BTreeMap<String, OrderId>,
    /// When each linked batch started, on the batch's own clock.
    batch_started_at: BTreeMap<String, Timestamp>,
    by_product: BTreeMap<UnitCode, OrderId>,
    /// QA release decisions waiting for their e-signature: decision seq → (order, at risk).
    decisions: BTreeMap<u64, (OrderId, bool)>,
    /// Orders whose product units travel in each shipment.
    shipments: BTreeMap<String, Vec<OrderId>>,
    /// The order of each booking held now (booking id → order).
    by_booking: BTreeMap<String, OrderId>,
}

/// The ledger record types of other modules that move an order along (see
/// [`OrderBook::apply`]). The order flow never records these steps itself: the module that
/// performs a step is the only source of its milestone.
pub const MODULE_EVENT_TYPES: &[&str] = &[
    "culture.batch_opened",
    "batch.batch_started",
    "culture.prediction_made",
    "batch.batch_completed",
    "batch.batch_aborted",
    "qc.batch.registered",
    "qc.release.decided",
    "bank.dose_allocated",
    "bank.allocation_cancelled",
    "shipment.packed",
    "shipment.dispatched",
    "shipment.received",
];

impl OrderBook {
    /// The order, if it exists.
    pub fn order(&self, id: &OrderId) -> Option<&Order> {
        self.orders.get(id)
    }

    /// Every order, by id.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// The hospital a subject is enrolled at.
    pub fn enrolled_at(&self, subject: &SubjectId) -> Option<&SiteId> {
        self.enrolled.get(subject)
    }

    /// Applies one record; records of other types are ignored.
    pub fn apply(&mut self, r: RecordView<'_>) {
        match r.event_type {
            "esig.signed" => {
                self.apply_signature(r);
                self.apply_release_signature(r);
            }
            "bedside.verified" | "bedside.mismatch" | "infusion.recorded" => self.apply_custody(r),
            "schedule.booked" | "schedule.cancelled" => self.apply_booking(r),
            t if MODULE_EVENT_TYPES.contains(&t) => self.apply_module(r),
            _ => match OrderEvent::from_json(r.event_type, r.payload) {
                None => {}
                Some(Err(e)) => self.unreadable.push((r.seq, e)),
                Some(Ok(event)) => self.apply_event(r.seq, &event),
            },
        }
    }

    fn apply_signature(&mut self, r: RecordView<'_>) {
        let Some((meaning, signer)) = r.signature else {
            return;
        };
        let Some(order) = self
            .by_stream
            .get(r.stream)
            .and_then(|id| self.orders.get_mut(id))
        else {
            return;
        };
        let signs_placed = serde_json::from_str::<serde_json::Value>(r.payload)
            .ok()
            .and_then(|p| p.get("signs_seq").and_then(|s| s.as_u64()))
            == Some(order.placed_seq);
        if meaning == "Ordered" && signer == order.physician.as_str() && signs_placed {
            if order.stage == Stage::Ordered {
                order.stage = Stage::Signed;
                order.signed_at = Some(r.recorded_at);
            }
            order.push(r.seq, r.recorded_at, "order.signed", signer, None);
        }
    }

    /// A booking of the schedule that names an order: its dates predict the order's
    /// collection and infusion; a cancelled booking predicts nothing.
    fn apply_booking(&mut self, r: RecordView<'_>) {
        let Ok(p) = serde_json::from_str::<serde_json::Value>(r.payload) else {
            self.unreadable
                .push((r.seq, format!("{}: not JSON", r.event_type)));
            return;
        };
        let date = |key: &str| {
            p.get(key)
                .and_then(|v| v.as_str())
                .and_then(|d| Timestamp::parse(&format!("{d}T00:00:00Z")).ok())
        };
        if r.event_type == "schedule.cancelled" {
            let Some(booking) = p.get("booking").and_then(|b| b.as_str()) else {
                return;
            };
            if let Some(order) = self
                .links
                .by_booking
                .remove(booking)
                .and_then(|id| self.orders.get_mut(&id))
            {
                order.booked = None;
                order.push(r.seq, r.recorded_at, "schedule.cancelled", r.actor, None);
            }
            return;
        }
        let Some(order) = p
            .get("order")
            .and_then(|o| o.as_str())
            .and_then(|o| OrderId::parse(o).ok())
            .and_then(|o| self.orders.get_mut(&o))
        else {
            return;
        };
        let (Some(collection), Some(infusion)) = (date("collection"), date("infusion")) else {
            self.unreadable.push((
                r.seq,
                "schedule.booked: collection or infusion is not a date".into(),
            ));
            return;
        };
        order.booked = Some(Booked {
            collection,
            infusion,
        });
        self.links
            .by_booking
            .insert(booking_id(order.id.as_str()), order.id.clone());
        let detail = format!(
            "collection {} · infusion {}",
            collection.date(),
            infusion.date()
        );
        order.push(
            r.seq,
            r.recorded_at,
            "schedule.booked",
            r.actor,
            Some(detail),
        );
    }

    /// A record of the batch, QC, bank or shipment module: the milestone it means for the
    /// order whose material it names, recorded as done by that module (not manual).
    fn apply_module(&mut self, r: RecordView<'_>) {
        let p: serde_json::Value = match serde_json::from_str(r.payload) {
            Ok(p) => p,
            Err(e) => {
                self.unreadable
                    .push((r.seq, format!("{}: {e}", r.event_type)));
                return;
            }
        };
        let text = |key: &str| p.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let unit = |key: &str| {
            p.get(key)
                .and_then(|v| v.as_str())
                .and_then(|u| UnitCode::parse(u).ok())
        };
        let stream_batch = r.stream.strip_prefix("batch/").map(str::to_string);
        let links = &mut self.links;
        let (order_id, milestone, reached) = match r.event_type {
            "culture.batch_opened" => {
                let (Some(batch), Some(start)) = (text("batch"), unit("starting_unit")) else {
                    return;
                };
                let Some(order) = links.by_collected.get(&start).cloned() else {
                    return;
                };
                links.by_batch.insert(batch.clone(), order.clone());
                let reached = Reached {
                    batch: Some(batch),
                    ..Reached::default()
                };
                (order, Milestone::ManufacturingStarted, reached)
            }
            "batch.batch_started" => {
                if let (Some(batch), Some(at)) = (stream_batch, text("at")) {
                    if let Ok(at) = Timestamp::parse(&at) {
                        links.batch_started_at.insert(batch, at);
                    }
                }
                return;
            }
            "culture.prediction_made" => {
                let Some(batch) = stream_batch else { return };
                let Some(order) = links.by_batch.get(&batch).cloned() else {
                    return;
                };
                let Some(day) = p
                    .get("prediction")
                    .and_then(|x| x.get("median_day"))
                    .and_then(|d| d.as_f64())
                else {
                    return;
                };
                let start = links
                    .batch_started_at
                    .get(&batch)
                    .copied()
                    .unwrap_or(r.recorded_at);
                let reached = Reached {
                    predicted_at: Some(start.plus_us((day * 86_400e6) as i64)),
                    batch: Some(batch),
                    ..Reached::default()
                };
                (order, Milestone::DosePredicted, reached)
            }
            "batch.batch_completed" | "batch.batch_aborted" => {
                let Some(batch) = stream_batch else { return };
                let Some(order) = links.by_batch.get(&batch).cloned() else {
                    return;
                };
                let m = if r.event_type == "batch.batch_completed" {
                    Milestone::Harvested
                } else {
                    Milestone::BatchFailed
                };
                let reached = Reached {
                    batch: Some(batch),
                    ..Reached::default()
                };
                (order, m, reached)
            }
            "qc.batch.registered" => {
                let Some(order) = text("batch").and_then(|b| links.by_batch.get(&b).cloned())
                else {
                    return;
                };
                let units = p.get("units").and_then(|u| u.as_array());
                let first = units
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str().and_then(|u| UnitCode::parse(u).ok()))
                    .next();
                if let (Some(u), Some(o)) = (first, self.orders.get_mut(&order)) {
                    o.product_unit = Some(u);
                    self.links.by_product.insert(u, order);
                }
                return;
            }
            "qc.release.decided" => {
                if let Some(order) = text("batch").and_then(|b| links.by_batch.get(&b).cloned()) {
                    let at_risk = text("kind").as_deref() == Some("released_at_risk");
                    links.decisions.insert(r.seq, (order, at_risk));
                }
                return;
            }
            "bank.dose_allocated" => {
                let (Some(order), Some(dose)) = (
                    text("order").and_then(|o| OrderId::parse(&o).ok()),
                    unit("dose"),
                ) else {
                    return;
                };
                links.by_product.insert(dose, order.clone());
                let reached = Reached {
                    unit: Some(dose),
                    ..Reached::default()
                };
                (order, Milestone::DoseAllocated, reached)
            }
            "bank.allocation_cancelled" => {
                let Some(order) = text("order")
                    .and_then(|o| OrderId::parse(&o).ok())
                    .and_then(|o| self.orders.get_mut(&o))
                else {
                    return;
                };
                if order.stage == Stage::DoseAllocated {
                    order.stage = Stage::Signed;
                    order.product_unit = None;
                    order.reached.remove(Milestone::DoseAllocated.as_str());
                }
                let reason = text("reason");
                order.push(
                    r.seq,
                    r.recorded_at,
                    "allocation_cancelled",
                    r.actor,
                    reason,
                );
                return;
            }
            "shipment.packed" => {
                let Some(shipment) = text("shipment") else {
                    return;
                };
                let orders: Vec<OrderId> = p
                    .get("units")
                    .and_then(|u| u.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str().and_then(|u| UnitCode::parse(u).ok()))
                    .filter_map(|u| links.by_product.get(&u).cloned())
                    .collect();
                if !orders.is_empty() {
                    links.shipments.insert(shipment, orders);
                }
                return;
            }
            "shipment.dispatched" | "shipment.received" => {
                let Some(orders) = text("shipment").and_then(|s| links.shipments.get(&s).cloned())
                else {
                    return;
                };
                let m = if r.event_type == "shipment.dispatched" {
                    Milestone::ShippedToHospital
                } else {
                    Milestone::ReceivedAtHospital
                };
                let at = fact_time(&p, r.recorded_at);
                for order in orders {
                    self.module_milestone(r, at, &order, m, Reached::default());
                }
                return;
            }
            _ => return,
        };
        let at = fact_time(&p, r.recorded_at);
        self.module_milestone(r, at, &order_id, milestone, reached);
    }

    /// A QA e-signature with meaning Released over a release decision of a linked batch.
    fn apply_release_signature(&mut self, r: RecordView<'_>) {
        if r.signature.map(|(meaning, _)| meaning) != Some("Released") {
            return;
        }
        let Ok(p) = serde_json::from_str::<serde_json::Value>(r.payload) else {
            return;
        };
        let Some(signs) = p.get("signs_seq").and_then(|s| s.as_u64()) else {
            return;
        };
        let Some((order, at_risk)) = self.links.decisions.remove(&signs) else {
            return;
        };
        let m = if at_risk {
            Milestone::ReleasedAtRisk
        } else {
            Milestone::Released
        };
        self.module_milestone(
            r,
            fact_time(&p, r.recorded_at),
            &order,
            m,
            Reached::default(),
        );
    }

    fn module_milestone(
        &mut self,
        r: RecordView<'_>,
        at: Timestamp,
        order: &OrderId,
        m: Milestone,
        e: Reached,
    ) {
        let Some(order) = self.orders.get_mut(order) else {
            return;
        };
        let mut detail = Vec::new();
        if let Some(b) = &e.batch {
            detail.push(format!("batch {b}"));
        }
        if let Some(u) = &e.unit {
            detail.push(format!("unit {}", u.eye_readable()));
        }
        if let Some(p) = e.predicted_at {
            detail.push(format!("dose predicted at {p}"));
        }
        detail.push(format!("recorded by {}", r.event_type));
        apply_milestone(order, m, at, e);
        order.push(r.seq, at, m.as_str(), r.actor, Some(detail.join("; ")));
    }

    fn apply_custody(&mut self, r: RecordView<'_>) {
        let Ok(p) = serde_json::from_str::<serde_json::Value>(r.payload) else {
            return;
        };
        let Some(id) = p.get("order").and_then(|o| o.as_str()) else {
            return;
        };
        let Ok(id) = OrderId::parse(id) else { return };
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        let at = p
            .get("at")
            .and_then(|a| a.as_str())
            .and_then(|a| Timestamp::parse(a).ok())
            .unwrap_or(r.recorded_at);
        let detail = match r.event_type {
            "bedside.verified" => {
                order.stage = Stage::Verified;
                let first = p
                    .get("first_checker")
                    .and_then(|c| c.as_str())
                    .unwrap_or("");
                let second = p
                    .get("second_checker")
                    .and_then(|c| c.as_str())
                    .unwrap_or("");
                Some(format!("checked by {first} and {second}"))
            }
            "infusion.recorded" => {
                order.stage = Stage::Infused;
                order.infused_at = Some(at);
                None
            }
            _ => p
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string),
        };
        order.push(r.seq, at, r.event_type, r.actor, detail);
    }

    fn apply_event(&mut self, seq: u64, event: &OrderEvent) {
        match event {
            OrderEvent::Enrolled(e) => {
                self.enrolled.insert(e.subject.clone(), e.site.clone());
            }
            OrderEvent::Placed(e) => {
                let mut order = Order {
                    id: e.order.clone(),
                    subject: e.subject.clone(),
                    site: e.site.clone(),
                    manufacturer: e.manufacturer.clone(),
                    product: e.product,
                    dose: e.dose,
                    window: e.window,
                    physician: e.physician.clone(),
                    placed_at: e.at,
                    placed_seq: seq,
                    signed_at: None,
                    stage: Stage::Ordered,
                    collected_units: Vec::new(),
                    collected_at: None,
                    batch: None,
                    product_unit: None,
                    released_at_risk: false,
                    predicted_dose_at: None,
                    booked: None,
                    infused_at: None,
                    failed_batches: 0,
                    timeline: Vec::new(),
                    reached: BTreeMap::new(),
                };
                order.push(
                    seq,
                    e.at,
                    "order.placed",
                    e.physician.as_str(),
                    Some(format!(
                        "{} {:e} {}",
                        e.product,
                        e.dose.cells,
                        e.product.rules().dose_counts
                    )),
                );
                self.by_stream
                    .insert(crate::event::order_stream(&e.order), e.order.clone());
                self.orders.insert(e.order.clone(), order);
            }
            OrderEvent::Collected(e) => {
                let Some(order) = self.orders.get_mut(&e.order) else {
                    return;
                };
                order.stage = Stage::Collected;
                order.collected_units.push(e.unit);
                self.links.by_collected.insert(e.unit, e.order.clone());
                order.collected_at = Some(e.collected_at);
                order.push(
                    seq,
                    e.collected_at,
                    "order.collected",
                    e.by.as_str(),
                    Some(format!(
                        "{} {} mL, unit {}",
                        e.kind.as_str(),
                        e.volume_ml,
                        e.unit.eye_readable()
                    )),
                );
            }
            OrderEvent::Milestone(e) => {
                let Some(order) = self.orders.get_mut(&e.order) else {
                    return;
                };
                let reached = Reached {
                    unit: e.unit,
                    batch: e.batch.clone(),
                    predicted_at: e.predicted_at,
                };
                apply_milestone(order, e.milestone, e.at, reached);
                let mut detail = Vec::new();
                if let Some(u) = &e.unit {
                    detail.push(format!("unit {}", u.eye_readable()));
                }
                if let Some(b) = &e.batch {
                    detail.push(format!("batch {b}"));
                }
                if let Some(p) = e.predicted_at {
                    detail.push(format!("dose predicted at {p}"));
                }
                if let Some(n) = &e.note {
                    detail.push(n.clone());
                }
                order.timeline.push(TimelineEntry {
                    seq,
                    at: e.at,
                    what: e.milestone.as_str().to_string(),
                    by: e.by.as_str().to_string(),
                    detail: (!detail.is_empty()).then(|| detail.join("; ")),
                    manual: e.manual,
                });
            }
            OrderEvent::Infused(e) => {
                let Some(order) = self.orders.get_mut(&e.order) else {
                    return;
                };
                let mut detail = format!("{} mL {}", e.volume_ml, e.route);
                if let Some(o) = &e.observations {
                    detail.push_str("; ");
                    detail.push_str(o);
                }
                order.push(
                    seq,
                    e.started_at,
                    "infusion_details",
                    e.by.as_str(),
                    Some(detail),
                );
            }
            OrderEvent::FollowUp(e) => {
                let Some(order) = self.orders.get_mut(&e.order) else {
                    return;
                };
                let detail = match e.grade {
                    Some(g) => format!("{} grade {g}", e.term),
                    None => e.term.clone(),
                };
                let what = match e.kind {
                    crate::event::FollowUpKind::AdverseEvent => "adverse_event",
                    crate::event::FollowUpKind::Response => "response",
                };
                order.push(seq, e.observed_at, what, e.by.as_str(), Some(detail));
            }
            OrderEvent::Refused(e) => {
                let Some(order) = e.order.as_ref().and_then(|o| self.orders.get_mut(o)) else {
                    return;
                };
                order.push(
                    seq,
                    e.at,
                    "refused",
                    e.by.as_str(),
                    Some(format!("{}: {}", e.rule, e.message)),
                );
            }
        }
    }
}

/// The module's own time of the fact when its payload states one (a batch runs on its
/// device's clock), else when it was recorded.
fn fact_time(payload: &serde_json::Value, recorded_at: Timestamp) -> Timestamp {
    payload
        .get("at")
        .and_then(|a| a.as_str())
        .and_then(|a| Timestamp::parse(a).ok())
        .unwrap_or(recorded_at)
}

/// What a milestone brings besides its time.
#[derive(Debug, Default)]
struct Reached {
    unit: Option<UnitCode>,
    batch: Option<String>,
    predicted_at: Option<Timestamp>,
}

fn apply_milestone(order: &mut Order, m: Milestone, at: Timestamp, e: Reached) {
    order.reached.insert(m.as_str(), at);
    if let Some(b) = &e.batch {
        order.batch = Some(b.clone());
    }
    order.stage = match m {
        Milestone::ShippedToCpc => Stage::ShippedToCpc,
        Milestone::ReceivedAtCpc => Stage::ReceivedAtCpc,
        Milestone::ManufacturingStarted => Stage::Manufacturing,
        Milestone::DosePredicted => {
            order.predicted_dose_at = e.predicted_at;
            order.stage
        }
        Milestone::Harvested => {
            if e.unit.is_some() {
                order.product_unit = e.unit;
            }
            Stage::Harvested
        }
        Milestone::Released => Stage::Released,
        Milestone::ReleasedAtRisk => {
            order.released_at_risk = true;
            Stage::Released
        }
        Milestone::BatchFailed => {
            order.failed_batches += 1;
            order.batch = None;
            order.product_unit = None;
            order.predicted_dose_at = None;
            for m in [
                Milestone::ReceivedAtCpc,
                Milestone::ManufacturingStarted,
                Milestone::Harvested,
                Milestone::Released,
                Milestone::ReleasedAtRisk,
            ] {
                order.reached.remove(m.as_str());
            }
            Stage::Failed
        }
        Milestone::DoseAllocated => {
            if e.unit.is_some() {
                order.product_unit = e.unit;
            }
            Stage::DoseAllocated
        }
        Milestone::ShippedToHospital => Stage::ShippedToHospital,
        Milestone::ReceivedAtHospital => Stage::ReceivedAtHospital,
        Milestone::Thawed => Stage::Thawed,
    };
}
