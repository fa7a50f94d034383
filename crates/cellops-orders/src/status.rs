//! The order status everyone sees: what happened, what is next, and predicted dates for the
//! steps ahead (the booked slot's dates from the schedule, typical durations per product
//! between them, and the twin's dose prediction once a batch runs).

use cellops_domain::Timestamp;
use serde::Serialize;

use crate::book::{Order, Stage, TimelineEntry};
use crate::product::Product;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A predicted date for a step ahead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicted {
    /// The step.
    pub step: &'static str,
    /// When it is expected.
    pub at: Timestamp,
    /// What the prediction rests on.
    pub basis: &'static str,
}

/// The status of one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderStatus<'a> {
    pub stage: &'static str,
    pub next: &'static str,
    pub happened: &'a [TimelineEntry],
    pub predicted: Vec<Predicted>,
}

/// The steps ahead of each stage, with their typical duration from the step before, in days.
fn plan(product: Product) -> Vec<(&'static str, Stage, i64)> {
    let r = product.rules();
    if product.is_autologous() {
        vec![
            ("collection", Stage::Collected, r.days_to_collection),
            (
                "receipt_at_cpc",
                Stage::ReceivedAtCpc,
                r.days_collection_to_receipt,
            ),
            ("harvest", Stage::Harvested, r.days_manufacturing),
            ("release", Stage::Released, r.days_harvest_to_release),
            (
                "receipt_at_hospital",
                Stage::ReceivedAtHospital,
                r.days_shipping,
            ),
            ("infusion", Stage::Infused, 0),
        ]
    } else {
        vec![
            ("dose_allocation", Stage::DoseAllocated, 0),
            (
                "receipt_at_hospital",
                Stage::ReceivedAtHospital,
                r.days_shipping,
            ),
            ("infusion", Stage::Infused, 0),
        ]
    }
}

/// Typical days from a signed order to infusion.
pub fn typical_days_to_infusion(product: Product) -> i64 {
    plan(product).iter().map(|(_, _, d)| d).sum()
}

/// How far along the plan a stage is: the number of plan steps done.
fn steps_done(stage: Stage, product: Product) -> usize {
    let order = [
        Stage::Ordered,
        Stage::Signed,
        Stage::Failed,
        Stage::Collected,
        Stage::ShippedToCpc,
        Stage::ReceivedAtCpc,
        Stage::Manufacturing,
        Stage::Harvested,
        Stage::Released,
        Stage::DoseAllocated,
        Stage::ShippedToHospital,
        Stage::ReceivedAtHospital,
        Stage::Thawed,
        Stage::Verified,
        Stage::Infused,
    ];
    let rank = |s: Stage| order.iter().position(|x| *x == s).unwrap_or(0);
    plan(product)
        .iter()
        .take_while(|(_, s, _)| rank(*s) <= rank(stage))
        .count()
}

/// The status of `order` at `now`.
pub fn status(order: &Order, now: Timestamp) -> OrderStatus<'_> {
    let last = order
        .timeline
        .last()
        .map(|e| e.at)
        .unwrap_or(order.placed_at);
    let mut t = if last > now { last } else { now };
    let mut predicted = Vec::new();
    if !matches!(order.stage, Stage::Infused) {
        let done = steps_done(order.stage, order.product);
        for (step, _, days) in plan(order.product).into_iter().skip(done) {
            let mut basis = "typical duration";
            let before = t;
            t = t.plus_us(days * MICROS_PER_DAY);
            if let Some(b) = order.booked {
                // The schedule's dates hold unless the steps before them already passed them.
                let booked = match step {
                    "collection" => Some(b.collection),
                    "infusion" => Some(b.infusion),
                    _ => None,
                };
                if let Some(at) = booked
                    && at >= before
                {
                    t = at;
                    basis = "booked schedule";
                }
            }
            if step == "harvest" {
                if let Some(p) = order.predicted_dose_at {
                    t = p;
                    basis = "twin prediction of the dose";
                }
            }
            if step == "infusion" && t < order.window.earliest {
                t = order.window.earliest;
                basis = "start of the treatment window";
            }
            predicted.push(Predicted { step, at: t, basis });
        }
    }
    OrderStatus {
        stage: order.stage.as_str(),
        next: order.stage.next(order.product),
        happened: &order.timeline,
        predicted,
    }
}
