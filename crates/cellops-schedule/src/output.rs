//! Output forms: the plan report (`cellops schedule plan`) and Gantt data per resource.

use serde::Serialize;

use crate::network::{Day, Network};
use crate::plan::{Schedule, Slot, order_cost};

/// One stage in a plan report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageOut {
    /// Stage name.
    pub stage: String,
    /// Start day.
    pub start_day: Day,
    /// End day.
    pub end_day: Day,
    /// Start date.
    pub start: String,
    /// End date.
    pub end: String,
}

/// One order in a plan report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderOut {
    /// Order id.
    pub id: String,
    /// Product id.
    pub product: String,
    /// Hospital id.
    pub hospital: String,
    /// Whether every stage is planned.
    pub planned: bool,
    /// Stages (empty when unplanned).
    pub stages: Vec<StageOut>,
    /// Infusion date, when planned.
    pub infusion: Option<String>,
    /// Days from the earliest day to infusion.
    pub vein_to_vein_days: Option<Day>,
    /// Days after the due day.
    pub late_days: Option<Day>,
    /// The order's share of the objective.
    pub cost: i64,
}

/// A plan report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanOut {
    /// Instance name.
    pub instance: String,
    /// Objective: Σ weight × (vein-to-vein days + lateness_weight × late days) +
    /// Σ weight × unplanned_penalty over unplanned orders.
    pub objective: i64,
    /// Orders planned.
    pub planned: usize,
    /// Ids of orders that could not be planned.
    pub unplanned: Vec<String>,
    /// Every order.
    pub orders: Vec<OrderOut>,
}

/// Stage list of a slot sequence.
pub fn stages_out(net: &Network, order: usize, slots: &[Slot]) -> Vec<StageOut> {
    let route = net.order_route(order);
    slots
        .iter()
        .zip(&route.stages)
        .map(|(s, st)| StageOut {
            stage: st.name.clone(),
            start_day: s.start,
            end_day: s.end,
            start: net.date_of(s.start),
            end: net.date_of(s.end),
        })
        .collect()
}

/// The report of a schedule.
pub fn plan_out(net: &Network, sched: &Schedule) -> PlanOut {
    let mut orders = Vec::new();
    let mut unplanned = Vec::new();
    for (k, o) in net.orders.iter().enumerate() {
        let slots = &sched.slots[k];
        let planned = slots.len() == net.order_route(k).stages.len();
        if !planned {
            unplanned.push(o.id.clone());
        }
        let end = slots.last().filter(|_| planned).map(|s| s.end);
        orders.push(OrderOut {
            id: o.id.clone(),
            product: net.product_id(o.product).to_string(),
            hospital: net.site_id(o.hospital).to_string(),
            planned,
            stages: if planned {
                stages_out(net, k, slots)
            } else {
                Vec::new()
            },
            infusion: end.map(|e| net.date_of(e)),
            vein_to_vein_days: end.map(|e| e - o.earliest),
            late_days: end.map(|e| (e - o.due).max(0)),
            cost: order_cost(net, k, slots),
        });
    }
    PlanOut {
        instance: net.instance().name.clone(),
        objective: sched.cost(net),
        planned: orders.len() - unplanned.len(),
        unplanned,
        orders,
    }
}

/// One bar of a Gantt chart: an order's use of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// Order (or booking) id.
    pub order: String,
    /// Stage name.
    pub stage: String,
    /// First day used.
    pub start_day: Day,
    /// Last day used (inclusive).
    pub last_day: Day,
    /// First date used.
    pub start: String,
    /// Last date used (inclusive).
    pub last: String,
    /// Unit lane (0-based) so that bars in one lane never overlap.
    pub lane: usize,
}

/// A resource row of a Gantt chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GanttRow {
    /// Resource id.
    pub resource: String,
    /// Site id.
    pub site: String,
    /// Resource kind.
    pub kind: String,
    /// Most units on any day (lanes).
    pub capacity_max: u32,
    /// Bars, by start day.
    pub bars: Vec<Bar>,
}

/// Gantt data for every resource from (id, route index pair, slots) triples.
pub fn gantt<'a>(
    net: &Network,
    items: impl IntoIterator<Item = (&'a str, usize, usize, &'a [Slot])>,
) -> Vec<GanttRow> {
    let inst = net.instance();
    let mut raw: Vec<Vec<(Day, Day, String, String)>> = vec![Vec::new(); inst.resources.len()];
    for (id, product, hospital, slots) in items {
        let route = net.route(product, hospital);
        for (slot, st) in slots.iter().zip(&route.stages) {
            for &(r, off, days) in &st.uses {
                let s = slot.start + off;
                raw[r].push((s, s + days - 1, id.to_string(), st.name.clone()));
            }
        }
    }
    raw.into_iter()
        .enumerate()
        .map(|(r, mut uses)| {
            uses.sort();
            let mut lane_free: Vec<Day> = Vec::new();
            let bars = uses
                .into_iter()
                .map(|(s, e, order, stage)| {
                    let lane = match lane_free.iter().position(|&f| f < s) {
                        Some(l) => l,
                        None => {
                            lane_free.push(Day::MIN);
                            lane_free.len() - 1
                        }
                    };
                    lane_free[lane] = e;
                    Bar {
                        order,
                        stage,
                        start_day: s,
                        last_day: e,
                        start: net.date_of(s),
                        last: net.date_of(e),
                        lane,
                    }
                })
                .collect();
            let res = &inst.resources[r];
            GanttRow {
                resource: res.id.clone(),
                site: res.site.clone(),
                kind: res.kind.clone(),
                capacity_max: net.capacity[r].iter().copied().max().unwrap_or(0),
                bars,
            }
        })
        .collect()
}

/// Gantt data of a schedule.
pub fn schedule_gantt(net: &Network, sched: &Schedule) -> Vec<GanttRow> {
    gantt(
        net,
        net.orders.iter().enumerate().map(|(k, o)| {
            (
                o.id.as_str(),
                o.product,
                o.hospital,
                sched.slots[k].as_slice(),
            )
        }),
    )
}
