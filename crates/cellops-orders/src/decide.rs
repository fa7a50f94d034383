//! Decisions: a command and the order book in, the event to record (or the rule broken) out.
//! Time and ids come in with the command.

use cellops_custody::{OrderId, SubjectId, UnitCode};
use cellops_domain::{SiteId, Timestamp, UserId};

use crate::book::{Order, OrderBook, Stage};
use crate::error::OrderError;
use crate::event::{
    Collected, Dose, Enrolled, FollowUp, FollowUpKind, Milestone, MilestoneRecorded, Placed, Window,
};
use crate::product::{
    BODY_WEIGHT_KG_RANGE, Collection, DoseBasis, Product, TREATMENT_WINDOW_DAYS_MAX,
};

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// Longest free text (notes, terms), in characters.
pub const TEXT_CHARS_MAX: usize = 2_000;

/// Enrols a patient at a hospital under `subject` (a random id the server draws).
pub fn decide_enrol(
    book: &OrderBook,
    subject: SubjectId,
    site: SiteId,
    by: UserId,
    at: Timestamp,
) -> Result<Enrolled, OrderError> {
    if book.enrolled_at(&subject).is_some() {
        return Err(OrderError::Invalid {
            field: "subject",
            message: format!("subject id {subject} is already taken: draw another"),
        });
    }
    Ok(Enrolled {
        subject,
        site,
        by,
        at,
    })
}

/// An order as a physician places it.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// The new order id (drawn by the server).
    pub order: OrderId,
    pub subject: SubjectId,
    pub site: SiteId,
    pub manufacturer: SiteId,
    pub product: Product,
    pub dose: Dose,
    pub window: Window,
    pub physician: UserId,
    pub at: Timestamp,
}

/// Checks an order: the patient enrolled at this hospital, the dose within the product's
/// range in the product's basis (with a plausible body weight per kg), the treatment window
/// ordered, not over and not longer than [`TREATMENT_WINDOW_DAYS_MAX`] days, and long enough
/// for the product's typical vein-to-vein time.
pub fn decide_place(book: &OrderBook, c: PlaceOrder) -> Result<Placed, OrderError> {
    match book.enrolled_at(&c.subject) {
        Some(site) if *site == c.site => {}
        _ => {
            return Err(OrderError::NotEnrolled {
                subject: c.subject.to_string(),
                site: c.site.to_string(),
            });
        }
    }
    if book.order(&c.order).is_some() {
        return Err(OrderError::Invalid {
            field: "order",
            message: format!("order id {} is already taken", c.order),
        });
    }
    check_dose(c.product, &c.dose)?;
    check_window(c.product, &c.window, c.at)?;
    Ok(Placed {
        order: c.order,
        subject: c.subject,
        site: c.site,
        manufacturer: c.manufacturer,
        product: c.product,
        dose: c.dose,
        window: c.window,
        physician: c.physician,
        at: c.at,
    })
}

fn check_dose(product: Product, dose: &Dose) -> Result<(), OrderError> {
    let rules = product.rules();
    if dose.basis != rules.dose_basis {
        let want = match rules.dose_basis {
            DoseBasis::PerBody => "per_body",
            DoseBasis::PerKg => "per_kg",
        };
        return Err(OrderError::Invalid {
            field: "dose_basis",
            message: format!("{product} is dosed {want}: give dose_basis {want:?}"),
        });
    }
    if !dose.cells.is_finite() || dose.cells <= 0.0 {
        return Err(OrderError::Invalid {
            field: "dose_cells",
            message: "give the dose as a positive number of cells, e.g. 1e8".into(),
        });
    }
    let basis = match dose.basis {
        DoseBasis::PerBody => "cells/body",
        DoseBasis::PerKg => "cells/kg",
    };
    if dose.cells < rules.dose_min || dose.cells > rules.dose_max {
        return Err(OrderError::DoseOutOfRange {
            product: product.id(),
            dose: dose.cells,
            min: rules.dose_min,
            max: rules.dose_max,
            basis,
        });
    }
    match (dose.basis, dose.body_weight_kg) {
        (DoseBasis::PerKg, None) => Err(OrderError::Invalid {
            field: "body_weight_kg",
            message: "a per-kg dose needs the patient's body weight in kg".into(),
        }),
        (DoseBasis::PerKg, Some(w))
            if !(BODY_WEIGHT_KG_RANGE.0..=BODY_WEIGHT_KG_RANGE.1).contains(&w) =>
        {
            Err(OrderError::Invalid {
                field: "body_weight_kg",
                message: format!(
                    "{w} kg is not a plausible body weight: give {}–{} kg",
                    BODY_WEIGHT_KG_RANGE.0, BODY_WEIGHT_KG_RANGE.1
                ),
            })
        }
        (DoseBasis::PerBody, Some(_)) => Err(OrderError::Invalid {
            field: "body_weight_kg",
            message: "a per-body dose takes no body weight: leave body_weight_kg out".into(),
        }),
        _ => Ok(()),
    }
}

fn check_window(product: Product, w: &Window, now: Timestamp) -> Result<(), OrderError> {
    let window = |message: String| Err(OrderError::Window { message });
    if w.latest < w.earliest {
        return window(format!(
            "latest {} is before earliest {}: swap them",
            w.latest, w.earliest
        ));
    }
    if w.latest <= now {
        return window(format!(
            "the window ended at {}, before now ({now}): give a window in the future",
            w.latest
        ));
    }
    let span_days = (w.latest.unix_us() - w.earliest.unix_us()) / MICROS_PER_DAY;
    if span_days > TREATMENT_WINDOW_DAYS_MAX {
        return window(format!(
            "{span_days} days is longer than the {TREATMENT_WINDOW_DAYS_MAX} days an order may span"
        ));
    }
    let earliest_possible =
        now.plus_us(crate::status::typical_days_to_infusion(product) * MICROS_PER_DAY);
    if w.latest < earliest_possible {
        return window(format!(
            "{product} typically needs {} days from order to infusion, so the earliest infusion is about {earliest_possible}; the window ends at {}: extend it",
            crate::status::typical_days_to_infusion(product),
            w.latest
        ));
    }
    Ok(())
}

fn order_of<'b>(book: &'b OrderBook, id: &OrderId) -> Result<&'b Order, OrderError> {
    book.order(id).ok_or_else(|| OrderError::UnknownOrder {
        order: id.to_string(),
    })
}

fn wrong_stage(order: &Order, action: &'static str) -> OrderError {
    if order.stage == Stage::Ordered {
        return OrderError::NotSigned {
            order: order.id.to_string(),
        };
    }
    OrderError::WrongStage {
        order: order.id.to_string(),
        stage: order.stage.as_str(),
        action,
        next: order.stage.next(order.product),
    }
}

fn at_hospital(order: &Order, site: &SiteId) -> Result<(), OrderError> {
    if &order.site != site {
        return Err(OrderError::WrongHospital {
            order: order.id.to_string(),
            order_site: order.site.to_string(),
            site: site.to_string(),
        });
    }
    Ok(())
}

/// A collection recorded against an order.
#[derive(Debug, Clone)]
pub struct RecordCollection {
    pub order: OrderId,
    pub unit: UnitCode,
    pub volume_ml: f64,
    pub nucleated_cells: Option<f64>,
    pub cd3_cells: Option<f64>,
    pub collected_at: Timestamp,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// Largest volume accepted for a collection, mL (a leukapheresis product is ~50–300 mL).
pub const COLLECTION_VOLUME_ML_MAX: f64 = 1_000.0;

/// Checks a collection: an autologous order, signed (or after a failed batch), at the
/// order's hospital, a plausible volume, collected not in the future and not before the
/// signature.
pub fn decide_collection(book: &OrderBook, c: RecordCollection) -> Result<Collected, OrderError> {
    let order = order_of(book, &c.order)?;
    at_hospital(order, &c.site)?;
    let kind = order.product.rules().collection;
    if kind == Collection::DoseBank {
        return Err(OrderError::Invalid {
            field: "order",
            message: format!(
                "{} is served from the dose bank: no collection from the patient",
                order.product
            ),
        });
    }
    if !matches!(order.stage, Stage::Signed | Stage::Failed) {
        return Err(wrong_stage(order, "collection"));
    }
    if !c.volume_ml.is_finite() || c.volume_ml <= 0.0 || c.volume_ml > COLLECTION_VOLUME_ML_MAX {
        return Err(OrderError::Invalid {
            field: "volume_ml",
            message: format!(
                "give the collected volume in mL, above 0 and at most {COLLECTION_VOLUME_ML_MAX}"
            ),
        });
    }
    for (field, v) in [
        ("nucleated_cells", c.nucleated_cells),
        ("cd3_cells", c.cd3_cells),
    ] {
        if v.is_some_and(|v| !v.is_finite() || v <= 0.0) {
            return Err(OrderError::Invalid {
                field,
                message: "give a positive cell count, e.g. 2.6e9".into(),
            });
        }
    }
    if c.collected_at > c.at {
        return Err(OrderError::Invalid {
            field: "collected_at",
            message: format!("{} is in the future (now {})", c.collected_at, c.at),
        });
    }
    if order.signed_at.is_some_and(|s| c.collected_at < s) {
        return Err(OrderError::Invalid {
            field: "collected_at",
            message: "the collection cannot be before the order was signed".into(),
        });
    }
    Ok(Collected {
        order: c.order,
        unit: c.unit,
        kind,
        volume_ml: c.volume_ml,
        nucleated_cells: c.nucleated_cells,
        cd3_cells: c.cd3_cells,
        collected_at: c.collected_at,
        by: c.by,
        site: c.site,
        at: c.at,
    })
}

/// A milestone recorded against an order.
#[derive(Debug, Clone)]
pub struct RecordMilestone {
    pub order: OrderId,
    pub milestone: Milestone,
    pub unit: Option<UnitCode>,
    pub batch: Option<String>,
    pub predicted_at: Option<Timestamp>,
    pub manual: bool,
    pub note: Option<String>,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// The stages a milestone may follow.
fn allowed_from(m: Milestone, product: Product) -> &'static [Stage] {
    match m {
        Milestone::ShippedToCpc => &[Stage::Collected],
        Milestone::ReceivedAtCpc => &[Stage::ShippedToCpc],
        Milestone::ManufacturingStarted => &[Stage::ReceivedAtCpc],
        Milestone::DosePredicted => &[Stage::Manufacturing],
        Milestone::Harvested => &[Stage::Manufacturing],
        Milestone::Released | Milestone::ReleasedAtRisk => &[Stage::Harvested],
        // A running batch fails by its own abort (the batch module's record).
        Milestone::BatchFailed => &[Stage::Collected, Stage::ShippedToCpc, Stage::ReceivedAtCpc],
        Milestone::DoseAllocated if !product.is_autologous() => &[Stage::Signed],
        Milestone::DoseAllocated => &[],
        Milestone::ShippedToHospital if product.is_autologous() => &[Stage::Released],
        Milestone::ShippedToHospital => &[Stage::DoseAllocated],
        Milestone::ReceivedAtHospital => &[Stage::ShippedToHospital],
        Milestone::Thawed => &[Stage::ReceivedAtHospital],
    }
}

/// Checks a milestone: allowed from the order's stage, hospital steps at the order's
/// hospital, the fresh starting material within its hold time at CPC receipt, a product unit
/// at harvest and at dose allocation, a prediction time with `dose_predicted`.
pub fn decide_milestone(
    book: &OrderBook,
    c: RecordMilestone,
) -> Result<MilestoneRecorded, OrderError> {
    let order = order_of(book, &c.order)?;
    if let Some(module) = c.milestone.performed_by() {
        return Err(OrderError::Invalid {
            field: "milestone",
            message: format!(
                "{} is recorded by {module}; it cannot be entered by hand",
                c.milestone.as_str()
            ),
        });
    }
    if c.milestone.at_hospital() {
        at_hospital(order, &c.site)?;
    } else if order.manufacturer != c.site {
        return Err(OrderError::Invalid {
            field: "site",
            message: format!(
                "{} is done at {}, the site making order {}'s product, not at {}",
                c.milestone.as_str(),
                order.manufacturer,
                order.id,
                c.site
            ),
        });
    }
    if !allowed_from(c.milestone, order.product).contains(&order.stage) {
        return Err(wrong_stage(order, c.milestone.as_str()));
    }
    if c.note
        .as_ref()
        .is_some_and(|n| n.chars().count() > TEXT_CHARS_MAX)
    {
        return Err(OrderError::Invalid {
            field: "note",
            message: format!("keep the note under {TEXT_CHARS_MAX} characters"),
        });
    }
    if c.milestone == Milestone::ReceivedAtCpc {
        let rules = order.product.rules();
        if let Some(collected_at) = order.collected_at {
            let deadline = collected_at.plus_us(rules.fresh_hold_hours_max * MICROS_PER_HOUR);
            if c.at > deadline {
                return Err(OrderError::HoldTimeExceeded {
                    order: order.id.to_string(),
                    collected_at,
                    deadline,
                    at: c.at,
                });
            }
        }
    }
    Ok(MilestoneRecorded {
        order: c.order,
        milestone: c.milestone,
        unit: c.unit,
        batch: c.batch,
        predicted_at: c.predicted_at,
        manual: c.manual,
        note: c.note,
        by: c.by,
        site: c.site,
        at: c.at,
    })
}

/// Checks that a bedside verification may start for `order` at `site`: the order's hospital,
/// the product thawed there, a product unit known.
pub fn check_bedside(
    book: &OrderBook,
    order: &OrderId,
    site: &SiteId,
) -> Result<UnitCode, OrderError> {
    let order = order_of(book, order)?;
    at_hospital(order, site)?;
    if !order.is_released() {
        return Err(OrderError::NotReleased {
            order: order.id.to_string(),
        });
    }
    if order.stage != Stage::Thawed {
        return Err(wrong_stage(order, "bedside verification"));
    }
    order.product_unit.ok_or_else(|| OrderError::Invalid {
        field: "order",
        message: "the order has no product unit yet".into(),
    })
}

/// Checks that an infusion may be recorded for `order` at `site`: the order's hospital, the
/// product released (or released at risk), the bedside verification done, within the window.
pub fn check_infusion(
    book: &OrderBook,
    order: &OrderId,
    site: &SiteId,
    at: Timestamp,
) -> Result<(), OrderError> {
    let order = order_of(book, order)?;
    at_hospital(order, site)?;
    if !order.is_released() {
        return Err(OrderError::NotReleased {
            order: order.id.to_string(),
        });
    }
    if order.stage != Stage::Verified {
        return Err(wrong_stage(order, "infusion"));
    }
    if at > order.window.latest {
        return Err(OrderError::Window {
            message: format!(
                "the treatment window ended at {}; the physician must place a new order",
                order.window.latest
            ),
        });
    }
    Ok(())
}

/// A follow-up observation.
#[derive(Debug, Clone)]
pub struct RecordFollowUp {
    pub order: OrderId,
    pub kind: FollowUpKind,
    pub term: String,
    pub grade: Option<u8>,
    pub observed_at: Timestamp,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// Checks a follow-up: after infusion, at the order's hospital, a term, a CTCAE grade 1–5
/// with an adverse event, observed not before the infusion nor in the future.
pub fn decide_follow_up(book: &OrderBook, c: RecordFollowUp) -> Result<FollowUp, OrderError> {
    let order = order_of(book, &c.order)?;
    at_hospital(order, &c.site)?;
    let Some(infused_at) = order.infused_at else {
        return Err(wrong_stage(order, "follow-up"));
    };
    let term = c.term.trim();
    if term.is_empty() || term.chars().count() > TEXT_CHARS_MAX {
        return Err(OrderError::Invalid {
            field: "term",
            message: "name the adverse event or the response (e.g. \"cytokine release syndrome\", \"partial response\")".into(),
        });
    }
    match (c.kind, c.grade) {
        (FollowUpKind::AdverseEvent, Some(1..=5)) | (FollowUpKind::Response, None) => {}
        (FollowUpKind::AdverseEvent, _) => {
            return Err(OrderError::Invalid {
                field: "grade",
                message: "an adverse event needs its CTCAE grade, 1 to 5".into(),
            });
        }
        (FollowUpKind::Response, Some(_)) => {
            return Err(OrderError::Invalid {
                field: "grade",
                message: "a response takes no grade: leave grade out".into(),
            });
        }
    }
    if c.observed_at < infused_at || c.observed_at > c.at {
        return Err(OrderError::Invalid {
            field: "observed_at",
            message: format!(
                "give a time between the infusion ({infused_at}) and now ({})",
                c.at
            ),
        });
    }
    Ok(FollowUp {
        order: c.order,
        kind: c.kind,
        term: term.to_string(),
        grade: c.grade,
        observed_at: c.observed_at,
        by: c.by,
        site: c.site,
        at: c.at,
    })
}

/// The details of an infusion.
#[derive(Debug, Clone)]
pub struct RecordInfusionDetails {
    pub order: OrderId,
    pub volume_ml: f64,
    pub started_at: Timestamp,
    pub route: String,
    pub observations: Option<String>,
    pub by: UserId,
    pub site: SiteId,
    pub at: Timestamp,
}

/// Checks an infusion (see [`check_infusion`]) and its details: a volume, a route, a start
/// not in the future and not before the bedside verification.
pub fn decide_infusion_details(
    book: &OrderBook,
    c: RecordInfusionDetails,
) -> Result<crate::event::Infused, OrderError> {
    check_infusion(book, &c.order, &c.site, c.at)?;
    let order = order_of(book, &c.order)?;
    let unit = order.product_unit.ok_or_else(|| OrderError::Invalid {
        field: "order",
        message: "the order has no product unit".into(),
    })?;
    if !c.volume_ml.is_finite() || c.volume_ml <= 0.0 || c.volume_ml > COLLECTION_VOLUME_ML_MAX {
        return Err(OrderError::Invalid {
            field: "volume_ml",
            message: format!(
                "give the infused volume in mL, above 0 and at most {COLLECTION_VOLUME_ML_MAX}"
            ),
        });
    }
    let route = c.route.trim();
    if route.is_empty() || route.chars().count() > 100 {
        return Err(OrderError::Invalid {
            field: "route",
            message: "give the route of administration, e.g. \"intravenous\" or \"hepatic artery\""
                .into(),
        });
    }
    if c.observations
        .as_ref()
        .is_some_and(|o| o.chars().count() > TEXT_CHARS_MAX)
    {
        return Err(OrderError::Invalid {
            field: "observations",
            message: format!("keep observations under {TEXT_CHARS_MAX} characters"),
        });
    }
    let verified_at = order
        .timeline
        .iter()
        .rev()
        .find(|e| e.what == "bedside.verified")
        .map(|e| e.at);
    if c.started_at > c.at || verified_at.is_some_and(|v| c.started_at < v) {
        return Err(OrderError::Invalid {
            field: "started_at",
            message: "the infusion starts after the bedside verification and not in the future"
                .into(),
        });
    }
    Ok(crate::event::Infused {
        order: c.order,
        unit,
        volume_ml: c.volume_ml,
        started_at: c.started_at,
        route: route.to_string(),
        observations: c.observations,
        by: c.by,
        site: c.site,
        at: c.at,
    })
}
