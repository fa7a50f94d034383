//! Replanning after a disruption with minimal disruption to confirmed bookings.
//!
//! Stages that started before `today` never move. The disruption displaces only the orders
//! it touches (the failed or OOS order, the late shipment, the bookings on the broken
//! device's overloaded days, unconfirmed ones first); everything else keeps its slots. The
//! displaced orders are re-placed at their earliest infusion, confirmed bookings first, and
//! the result is a diff that says what moved and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;
use crate::network::{Day, Network};
use crate::output::{StageOut, stages_out};
use crate::plan::{Schedule, Slot};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Disruption {
    /// Manufacturing failed on `day`: the order needs a new collection and a new batch.
    BatchFailed {
        /// Order (booking) id.
        order: String,
        /// Day the failure was found.
        day: Day,
    },
    /// QC found an out-of-specification result on `day`: QC is repeated, then shipping.
    Oos {
        /// Order (booking) id.
        order: String,
        /// Day of the OOS result.
        day: Day,
    },
    /// `units` of a resource are out of service from `from_day` to `to_day` (inclusive).
    Breakdown {
        /// Resource id.
        resource: String,
        /// First day out of service.
        from_day: Day,
        /// Last day out of service.
        to_day: Day,
        /// Units lost.
        units: u32,
    },
    /// The courier of an order's shipment arrives `days` late.
    CourierLate {
        /// Order (booking) id.
        order: String,
        /// Days of delay.
        days: Day,
    },
}

/// One order whose plan changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Order (booking) id.
    pub order: String,
    /// Whether it was a confirmed booking.
    pub confirmed: bool,
    /// Why it moved.
    pub reason: String,
    /// Stages before.
    pub before: Vec<StageOut>,
    /// Stages after (empty: could not be re-planned).
    pub after: Vec<StageOut>,
    /// Infusion day change in days (after − before), when both exist.
    pub infusion_shift_days: Option<Day>,
}

/// An order's new slots, as a replan record stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Order (booking) id.
    pub order: String,
    /// All its slots after the replan (empty: unplanned).
    pub slots: Vec<Slot>,
}

/// The outcome of a replan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replan {
    /// Orders whose slots changed, by id.
    pub changes: Vec<Change>,
    /// Confirmed bookings that moved.
    pub confirmed_moved: usize,
    /// Orders that could not be re-planned.
    pub unplanned: Vec<String>,
    /// Conflicts the replan cannot resolve (stages already running on lost capacity), each
    /// with what to do.
    pub unresolved: Vec<String>,
}

impl Replan {
    /// The new slots of every changed order.
    pub fn moves(&self) -> Vec<Move> {
        self.changes
            .iter()
            .map(|c| Move {
                order: c.order.clone(),
                slots: c
                    .after
                    .iter()
                    .map(|s| Slot {
                        start: s.start_day,
                        end: s.end_day,
                    })
                    .collect(),
            })
            .collect()
    }
}

fn order_index(net: &Network, id: &str, field: &str) -> Result<usize, ScheduleError> {
    net.orders.iter().position(|o| o.id == id).ok_or_else(|| {
        ScheduleError::field(
            field,
            format!("{id:?} is not a planned order or booking"),
            "give the id of an order in the plan",
        )
    })
}

/// Applies `disruption` to `net` and `sched` as of `today` and re-plans the displaced
/// orders. Other orders keep their slots.
pub fn replan(
    net: &mut Network,
    sched: &mut Schedule,
    disruption: &Disruption,
    today: Day,
) -> Result<Replan, ScheduleError> {
    let before = sched.slots.clone();
    // Freeze what has started.
    for o in 0..net.orders.len() {
        sched.frozen[o] = sched.slots[o]
            .iter()
            .take_while(|s| s.start < today)
            .count();
        sched.resume_min[o] = today;
    }
    let mut reasons: BTreeMap<usize, String> = BTreeMap::new();
    let mut unresolved = Vec::new();
    let mut displaced: Vec<usize> = Vec::new();
    match disruption {
        Disruption::BatchFailed { order, day } => {
            let o = order_index(net, order, "order")?;
            sched.frozen[o] = 0;
            sched.unplace(net, o);
            sched.resume_min[o] = (*day + 1).max(today);
            displaced.push(o);
            reasons.insert(
                o,
                format!(
                    "batch failed on {}: new collection and manufacture",
                    net.date_of(*day)
                ),
            );
        }
        Disruption::Oos { order, day } => {
            let o = order_index(net, order, "order")?;
            let qc = net
                .oos_stage(net.orders[o].product)
                .or_else(|| {
                    sched.slots[o]
                        .iter()
                        .position(|s| s.start <= *day && *day < s.end)
                })
                .ok_or_else(|| {
                    ScheduleError::field(
                        "day",
                        format!("order {order} has no QC stage and no stage running on day {day}"),
                        "report the OOS on a day a stage of the order is running",
                    )
                })?;
            if sched.slots[o].len() <= qc {
                return Err(ScheduleError::field(
                    "order",
                    format!("order {order} has no planned QC stage"),
                    "plan the order before reporting an OOS",
                ));
            }
            sched.frozen[o] = qc;
            sched.unplace(net, o);
            sched.resume_min[o] = (*day + 1).max(today);
            displaced.push(o);
            reasons.insert(
                o,
                format!(
                    "OOS on {}: QC repeated, shipping after the retest",
                    net.date_of(*day)
                ),
            );
        }
        Disruption::CourierLate { order, days } => {
            let o = order_index(net, order, "order")?;
            if *days < 1 {
                return Err(ScheduleError::field(
                    "days",
                    format!("is {days}"),
                    "give the delay in whole days, at least 1",
                ));
            }
            let route = net.order_route(o);
            let k = route.stages.len() - 1;
            if sched.slots[o].len() <= k {
                return Err(ScheduleError::field(
                    "order",
                    format!("order {order} has no planned shipment"),
                    "plan the order before reporting a late courier",
                ));
            }
            sched.extra[o][k] += days;
            if sched.frozen[o] > k {
                // Already on the road: only the arrival moves.
                sched.slots[o][k].end += days;
            } else {
                // Not yet on the road: keep every earlier stage, re-place the shipment.
                sched.frozen[o] = k;
                sched.unplace(net, o);
                sched.resume_min[o] = today;
                displaced.push(o);
            }
            reasons.insert(o, format!("courier late by {days} d"));
        }
        Disruption::Breakdown {
            resource,
            from_day,
            to_day,
            units,
        } => {
            let r = net.resource_by_id(resource).ok_or_else(|| {
                ScheduleError::field(
                    "resource",
                    format!("{resource:?} is not a resource"),
                    "give the id of a resource of the network",
                )
            })?;
            if from_day > to_day {
                return Err(ScheduleError::field(
                    "to_day",
                    format!("{to_day} is before from_day {from_day}: an impossible window"),
                    "set to_day on or after from_day",
                ));
            }
            net.reduce_capacity(r, *from_day, *to_day, *units);
            // Displace movable users of the overloaded days: unconfirmed first, latest start first.
            let mut users: Vec<usize> = (0..net.orders.len())
                .filter(|&o| uses_in(net, sched, o, r, *from_day, *to_day))
                .collect();
            users.sort_by_key(|&o| {
                (
                    net.orders[o].confirmed,
                    std::cmp::Reverse(sched.slots[o].first().map(|s| s.start).unwrap_or(0)),
                )
            });
            for o in users {
                if sched.profile.overloaded(net, r).is_empty() {
                    break;
                }
                sched.unplace(net, o);
                displaced.push(o);
                reasons.insert(
                    o,
                    format!(
                        "{} out of service from {} to {} ({units} unit(s))",
                        net.resource_label(r),
                        net.date_of(*from_day),
                        net.date_of(*to_day)
                    ),
                );
            }
            let over = sched.profile.overloaded(net, r);
            if let (Some(first), Some(last)) = (over.first(), over.last()) {
                unresolved.push(format!(
                    "stages already running use more {} than remain between {} and {}: move them to a backup unit or report their batches as failed",
                    net.resource_label(r),
                    net.date_of(*first),
                    net.date_of(*last)
                ));
            }
        }
    }
    // A confirmed booking keeps its promised collection date or a later one, never earlier.
    for &o in &displaced {
        if net.orders[o].confirmed
            && sched.frozen[o] == 0
            && !matches!(disruption, Disruption::BatchFailed { .. })
            && let Some(first) = before[o].first()
        {
            sched.resume_min[o] = sched.resume_min[o].max(first.start);
        }
    }
    displaced.sort_by_key(|&o| {
        let x = &net.orders[o];
        (!x.confirmed, -x.weight, x.earliest, o)
    });
    displaced.dedup();
    let mut unplanned = Vec::new();
    for &o in &displaced {
        if !sched.place(net, o) {
            unplanned.push(net.orders[o].id.clone());
        }
    }
    let mut changes = Vec::new();
    for (o, was) in before.iter().enumerate() {
        if *was != sched.slots[o] || reasons.contains_key(&o) {
            let shift = match (was.last(), sched.slots[o].last()) {
                (Some(a), Some(b)) if sched.slots[o].len() == net.order_route(o).stages.len() => {
                    Some(b.end - a.end)
                }
                _ => None,
            };
            changes.push(Change {
                order: net.orders[o].id.clone(),
                confirmed: net.orders[o].confirmed,
                reason: reasons
                    .get(&o)
                    .cloned()
                    .unwrap_or_else(|| "re-placed".into()),
                before: stages_out(net, o, was),
                after: stages_out(net, o, &sched.slots[o]),
                infusion_shift_days: shift,
            });
        }
    }
    for o in 0..net.orders.len() {
        sched.frozen[o] = 0;
        sched.resume_min[o] = 0;
    }
    Ok(Replan {
        confirmed_moved: changes.iter().filter(|c| c.confirmed).count(),
        changes,
        unplanned,
        unresolved,
    })
}

/// Whether a movable stage of `o` uses resource `r` on a day in `from..=to`.
fn uses_in(net: &Network, sched: &Schedule, o: usize, r: usize, from: Day, to: Day) -> bool {
    let route = net.order_route(o);
    sched.slots[o]
        .iter()
        .enumerate()
        .skip(sched.frozen[o])
        .any(|(k, slot): (usize, &Slot)| {
            route.stages[k].uses.iter().any(|&(res, off, days)| {
                let s = slot.start + off;
                res == r && s <= to && from < s + days
            })
        })
}
