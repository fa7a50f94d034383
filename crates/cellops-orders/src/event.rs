//! The order events, as recorded in the ledger on stream `order/<order id>` (enrolments on
//! `patient/<subject id>`). Each payload is a plain JSON object; `event_type` names it.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::events::EventType;
use cellops_domain::{SiteId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::product::{Collection, DoseBasis, Product};

/// Version of every order event's payload schema.
pub const EVENT_VERSION: u32 = 1;

/// The ordered dose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dose {
    /// Cells per body or per kg (see `basis`).
    pub cells: f64,
    /// Per body or per kg.
    pub basis: DoseBasis,
    /// Body weight in kg, with a per-kg dose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_weight_kg: Option<f64>,
}

impl Dose {
    /// Cells for the whole patient.
    pub fn cells_total(&self) -> f64 {
        match self.basis {
            DoseBasis::PerBody => self.cells,
            DoseBasis::PerKg => self.cells * self.body_weight_kg.unwrap_or(0.0),
        }
    }
}

/// The treatment window: infusion must fall between `earliest` and `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Earliest infusion.
    pub earliest: Timestamp,
    /// Latest infusion.
    pub latest: Timestamp,
}

/// A milestone of an order's flow after collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// Starting material handed to the courier for the CPC.
    ShippedToCpc,
    /// Starting material received and checked at the CPC.
    ReceivedAtCpc,
    /// A batch was started from the approved recipe.
    ManufacturingStarted,
    /// The twin predicted when the dose will be reached.
    DosePredicted,
    /// The product was harvested, formulated and filled.
    Harvested,
    /// QA released the product.
    Released,
    /// QA released the product at risk (tests pending, justification and physician's
    /// acknowledgement recorded).
    ReleasedAtRisk,
    /// The batch failed, or its starting material was rejected (past its hold time, damaged):
    /// the order needs a new collection.
    BatchFailed,
    /// A dose from the allogeneic bank was allocated to the order.
    DoseAllocated,
    /// The product left for the hospital.
    ShippedToHospital,
    /// The hospital received the product.
    ReceivedAtHospital,
    /// The product was thawed at the bedside.
    Thawed,
}

/// Every milestone.
pub const MILESTONES: [Milestone; 12] = [
    Milestone::ShippedToCpc,
    Milestone::ReceivedAtCpc,
    Milestone::ManufacturingStarted,
    Milestone::DosePredicted,
    Milestone::Harvested,
    Milestone::Released,
    Milestone::ReleasedAtRisk,
    Milestone::BatchFailed,
    Milestone::DoseAllocated,
    Milestone::ShippedToHospital,
    Milestone::ReceivedAtHospital,
    Milestone::Thawed,
];

impl Milestone {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::ShippedToCpc => "shipped_to_cpc",
            Milestone::ReceivedAtCpc => "received_at_cpc",
            Milestone::ManufacturingStarted => "manufacturing_started",
            Milestone::DosePredicted => "dose_predicted",
            Milestone::Harvested => "harvested",
            Milestone::Released => "released",
            Milestone::ReleasedAtRisk => "released_at_risk",
            Milestone::BatchFailed => "batch_failed",
            Milestone::DoseAllocated => "dose_allocated",
            Milestone::ShippedToHospital => "shipped_to_hospital",
            Milestone::ReceivedAtHospital => "received_at_hospital",
            Milestone::Thawed => "thawed",
        }
    }

    /// Parses the API name; the error lists the names.
    pub fn parse(text: &str) -> Result<Milestone, crate::OrderError> {
        MILESTONES
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| crate::OrderError::Invalid {
                field: "milestone",
                message: format!(
                    "{text:?} is not a milestone: use one of {}",
                    MILESTONES.map(|m| m.as_str()).join(", ")
                ),
            })
    }

    /// True for the steps done at the treating hospital.
    pub fn at_hospital(self) -> bool {
        matches!(
            self,
            Milestone::ShippedToCpc | Milestone::ReceivedAtHospital | Milestone::Thawed
        )
    }

    /// True for the steps done at the manufacturing site.
    pub fn at_manufacturer(self) -> bool {
        !self.at_hospital()
    }

    /// The module whose own records mark this milestone, and how to perform it there; `None`
    /// for the steps the order flow records itself (hand-off to the courier, receipt and
    /// identity check at the CPC, thaw), each with its operator's e-signature.
    pub fn performed_by(self) -> Option<&'static str> {
        match self {
            // Before a batch starts, rejecting the starting material (e.g. past its hold
            // time) is the flow's own step; once a batch runs, only its abort fails it.
            Milestone::ShippedToCpc
            | Milestone::ReceivedAtCpc
            | Milestone::Thawed
            | Milestone::BatchFailed => None,
            Milestone::ManufacturingStarted | Milestone::DosePredicted | Milestone::Harvested => {
                Some(
                    "the batch module: start the batch with the collected unit as starting_unit (POST /api/batches); the prediction, harvest and abort are its records",
                )
            }
            Milestone::Released | Milestone::ReleasedAtRisk => Some(
                "QA release of the batch (POST /api/batches/{batch}/release) after its QC registration lists the product unit",
            ),
            Milestone::DoseAllocated => {
                Some("the dose bank (POST /api/bank/allocations with the order)")
            }
            Milestone::ShippedToHospital | Milestone::ReceivedAtHospital => Some(
                "the shipment of the product unit (POST /api/shipments, then /dispatch and /receive)",
            ),
        }
    }
}

/// `patient.enrolled`: a hospital enrolled a patient under a random pseudonymous subject id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    pub subject: SubjectId,
    pub site: SiteId,
    pub by: UserId,
    pub at: Timestamp,
}

/// `order.placed`: a physician ordered a therapy (signed by a following `esig.signed` with
/// meaning `Ordered`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    pub order: OrderId,
    pub subject: SubjectId,
    /// The treating hospital.
    pub site: SiteId,
    /// The site that makes the product (CPC) or holds the dose bank.
    pub manufacturer: SiteId,
    pub product: Product,
    pub dose: Dose,
    pub window: Window,
    /// The treating physician.
    pub physician: UserId,
    pub at: Timestamp,
}

/// `order.collected`: starting material collected and labelled for the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub order: OrderId,
    pub unit: UnitCode,
    pub kind: Collection,
    pub volume_ml: f64,
    /// Total nucleated cells, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nucleated_cells: Option<f64>,
    /// CD3+ cells (apheresis), when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cd3_cells: Option<f64>,
    /// When the collection ended (starts the hold-time clock).
    pub collected_at: Timestamp,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// `order.milestone`: a step of the flow was done. `manual` when it was recorded by hand
/// (with its operator's e-signature) rather than by the module that performs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilestoneRecorded {
    pub order: OrderId,
    pub milestone: Milestone,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// With `dose_predicted`: when the dose will be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_at: Option<Timestamp>,
    pub manual: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// `order.infused`: the details of an infusion, recorded with custody's `infusion.recorded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Infused {
    pub order: OrderId,
    pub unit: UnitCode,
    pub volume_ml: f64,
    pub started_at: Timestamp,
    /// Route of administration ("intravenous", "hepatic artery").
    pub route: String,
    /// Observations during and after the infusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<String>,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// What a follow-up record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// An adverse event (term and CTCAE grade 1–5).
    AdverseEvent,
    /// A response assessment.
    Response,
}

/// `order.follow_up`: the hospital recorded an adverse event or a response after infusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub order: OrderId,
    pub kind: FollowUpKind,
    /// The adverse-event term or the response category.
    pub term: String,
    /// CTCAE grade 1–5, with an adverse event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<u8>,
    pub observed_at: Timestamp,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// `order.refused`: a command on an order was refused; the rule and message are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderId>,
    pub action: String,
    pub rule: String,
    pub message: String,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// An order event.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderEvent {
    Enrolled(Enrolled),
    Placed(Placed),
    Collected(Collected),
    Milestone(MilestoneRecorded),
    Infused(Infused),
    FollowUp(FollowUp),
    Refused(Refused),
}

impl OrderEvent {
    /// The ledger event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            OrderEvent::Enrolled(_) => "patient.enrolled",
            OrderEvent::Placed(_) => "order.placed",
            OrderEvent::Collected(_) => "order.collected",
            OrderEvent::Milestone(_) => "order.milestone",
            OrderEvent::Infused(_) => "order.infused",
            OrderEvent::FollowUp(_) => "order.follow_up",
            OrderEvent::Refused(_) => "order.refused",
        }
    }

    /// The payload as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            OrderEvent::Enrolled(e) => serde_json::to_value(e),
            OrderEvent::Placed(e) => serde_json::to_value(e),
            OrderEvent::Collected(e) => serde_json::to_value(e),
            OrderEvent::Milestone(e) => serde_json::to_value(e),
            OrderEvent::Infused(e) => serde_json::to_value(e),
            OrderEvent::FollowUp(e) => serde_json::to_value(e),
            OrderEvent::Refused(e) => serde_json::to_value(e),
        };
        v.expect("order events serialize")
    }

    /// Reads a recorded event; `None` for event types that are not order events.
    pub fn from_json(event_type: &str, payload: &str) -> Option<Result<OrderEvent, String>> {
        fn read<T: serde::de::DeserializeOwned>(p: &str) -> Result<T, String> {
            serde_json::from_str(p).map_err(|e| e.to_string())
        }
        Some(match event_type {
            "patient.enrolled" => read(payload).map(OrderEvent::Enrolled),
            "order.placed" => read(payload).map(OrderEvent::Placed),
            "order.collected" => read(payload).map(OrderEvent::Collected),
            "order.milestone" => read(payload).map(OrderEvent::Milestone),
            "order.infused" => read(payload).map(OrderEvent::Infused),
            "order.follow_up" => read(payload).map(OrderEvent::FollowUp),
            "order.refused" => read(payload).map(OrderEvent::Refused),
            _ => return None,
        })
    }

    /// The ledger stream the event belongs on.
    pub fn stream(&self) -> String {
        match self {
            OrderEvent::Enrolled(e) => {
                format!("patient/{}", e.subject.as_str().to_ascii_lowercase())
            }
            OrderEvent::Placed(e) => order_stream(&e.order),
            OrderEvent::Collected(e) => order_stream(&e.order),
            OrderEvent::Milestone(e) => order_stream(&e.order),
            OrderEvent::Infused(e) => order_stream(&e.order),
            OrderEvent::FollowUp(e) => order_stream(&e.order),
            OrderEvent::Refused(e) => match &e.order {
                Some(o) => order_stream(o),
                None => format!("refusals/{}", e.site.as_str().to_ascii_lowercase()),
            },
        }
    }
}

/// The ledger stream of an order (streams are lowercase).
pub fn order_stream(order: &OrderId) -> String {
    format!("order/{}", order.as_str().to_ascii_lowercase())
}

const fn ev(name: &'static str, description: &'static str) -> EventType {
    EventType {
        name,
        version: EVENT_VERSION,
        description,
    }
}

/// The catalogue of order event types.
pub const ORDER_EVENT_TYPES: &[EventType] = &[
    ev(
        "patient.enrolled",
        "a hospital enrolled a patient under a pseudonymous subject id",
    ),
    ev(
        "order.placed",
        "a physician ordered a therapy (product, dose, treatment window)",
    ),
    ev(
        "order.collected",
        "starting material was collected and labelled for an order",
    ),
    ev(
        "order.milestone",
        "a step of the vein-to-vein flow was done for an order",
    ),
    ev(
        "order.infused",
        "infusion details: volume, route, start, observations",
    ),
    ev(
        "order.follow_up",
        "an adverse event or response was recorded after infusion",
    ),
    ev(
        "order.refused",
        "a command on an order was refused; the rule is named",
    ),
];
