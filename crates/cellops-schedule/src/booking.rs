//! Bookings against a network: is a requested collection date feasible end to end
//! (collection → manufacturing → QC → release → shipping → infusion window)? If so, what are
//! the stage dates; if not, which constraint binds and which dates would work instead.
//!
//! [`Planner`] holds the network and the reserved capacity. It is the read model behind the
//! booking API: the server rebuilds it from ledger records with [`Planner::reserve`],
//! [`Planner::cancel`] and [`Planner::apply_replan`], none of which search or fail, so the
//! projection is a pure function of the records.

use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;
use crate::instance::Instance;
use crate::network::{Day, Network, OrderInfo};
use crate::output::{GanttRow, StageOut, gantt, stages_out};
use crate::plan::{Blocked, Schedule, Slot, Window, find_placement};
use crate::replan::{Disruption, Move, Replan, replan};

/// Most alternatives proposed for an infeasible request.
pub const ALTERNATIVES_MAX: usize = 3;
/// How far after the earliest date alternatives are searched, days.
pub const ALTERNATIVES_SCAN_DAYS: Day = 180;

/// A booking request from a hospital.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    /// Product id.
    pub product: String,
    /// Hospital id (collects and treats).
    pub hospital: String,
    /// Requested date of the first stage (collection), `YYYY-MM-DD`.
    pub collection_date: String,
    /// Earliest date the patient can be collected (alternatives start here); default today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_date: Option<String>,
    /// Last acceptable infusion date (end of the treatment window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_infusion: Option<String>,
    /// Wanted infusion date (for the optimiser's lateness cost); default the earliest possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Clinical urgency, 1 to 100 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// A feasible plan for one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Collection (first stage) date.
    pub collection: String,
    /// Infusion date (end of the last stage).
    pub infusion: String,
    /// Vein-to-vein days (collection to infusion).
    pub vein_to_vein_days: Day,
    /// Stage dates.
    pub stages: Vec<StageDates>,
    /// The slots in day numbers (what a booking record stores).
    pub slots: Vec<Slot>,
    /// How likely the dates hold, and what happens if they do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
}

/// The risk behind a proposal: the chance it runs as planned, from the product's failure and
/// OOS rates and its stages' duration distributions, and the dates a repeat would give with
/// the capacity booked today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// No manufacturing failure and no OOS: `(1 − p_fail) × (1 − p_oos)`.
    pub p_first_time_right: f64,
    /// First time right and every stage within its planned length: the chance the infusion
    /// date holds.
    pub p_on_time: f64,
    /// If QC finds an out-of-specification result: the retest and the rest of the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_oos: Option<Rescue>,
    /// If manufacturing fails: a new collection and the whole route again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_failed: Option<Rescue>,
}

/// What a repeat would give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescue {
    /// The day the repeat is known to be needed.
    pub known: String,
    /// Infusion after the repeat; `None` when nothing fits before the horizon.
    pub infusion: Option<String>,
    /// Days later than the proposal's infusion.
    pub delay_days: Option<Day>,
    /// Whether the repeat still ends inside the treatment window (always true without one).
    pub within_window: bool,
}

/// One stage's dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDates {
    /// Stage name.
    pub stage: String,
    /// Start date.
    pub start: String,
    /// End date.
    pub end: String,
}

/// The constraint that makes a request infeasible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// `capacity`, `closed`, `treatment_window` or `horizon`.
    pub constraint: String,
    /// Stage that could not be placed.
    pub stage: Option<String>,
    /// Resource id that was full.
    pub resource: Option<String>,
    /// First date the resource was found full.
    pub from: Option<String>,
    /// Last date the resource was found full.
    pub to: Option<String>,
    /// One sentence for the hospital.
    pub message: String,
}

/// The answer to a booking request. Serialised with `"feasible": true` (and the proposal's
/// fields) or `"feasible": false` (with `binding` and `alternatives`), as `POST /api/bookings`
/// answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The requested date works.
    Feasible(Proposal),
    /// It does not: why, and the earliest dates that work.
    Infeasible {
        /// The binding constraint.
        binding: Binding,
        /// Earliest feasible alternatives (up to [`ALTERNATIVES_MAX`]).
        alternatives: Vec<Proposal>,
    },
}

impl Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Yes<'a> {
            feasible: bool,
            #[serde(flatten)]
            proposal: &'a Proposal,
        }
        #[derive(Serialize)]
        struct No<'a> {
            feasible: bool,
            binding: &'a Binding,
            alternatives: &'a [Proposal],
        }
        match self {
            Answer::Feasible(proposal) => Yes {
                feasible: true,
                proposal,
            }
            .serialize(serializer),
            Answer::Infeasible {
                binding,
                alternatives,
            } => No {
                feasible: false,
                binding,
                alternatives,
            }
            .serialize(serializer),
        }
    }
}

/// A booking as listed by [`Planner::bookings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookingOut {
    /// Booking id.
    pub id: String,
    /// Product id.
    pub product: String,
    /// Hospital id.
    pub hospital: String,
    /// Urgency weight.
    pub weight: i64,
    /// Collection date.
    pub collection: Option<String>,
    /// Infusion date.
    pub infusion: Option<String>,
    /// Stages.
    pub stages: Vec<StageOut>,
}

/// What a booking record carries (enough to re-reserve without searching).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Booking id.
    pub id: String,
    /// Product id.
    pub product: String,
    /// Hospital id.
    pub hospital: String,
    /// Urgency weight.
    pub weight: i64,
    /// Earliest day (for vein-to-vein accounting).
    pub earliest_day: Day,
    /// Due day.
    pub due_day: Day,
    /// Latest infusion day, if any.
    pub latest_day: Option<Day>,
    /// Reserved slots.
    pub slots: Vec<Slot>,
}

/// The network and its reserved capacity.
#[derive(Debug, Clone)]
pub struct Planner {
    net: Network,
    sched: Schedule,
}

impl Planner {
    /// A planner over `instance`'s network (its sites, resources and products). The
    /// instance's orders are not booked: bookings come from [`Planner::reserve`].
    pub fn from_instance(mut instance: Instance) -> Result<Planner, ScheduleError> {
        instance.orders.clear();
        let net = Network::new(instance)?;
        let sched = Schedule::new(&net);
        Ok(Planner { net, sched })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    fn parse_date(&self, field: &str, text: &str) -> Result<Day, ScheduleError> {
        self.net.day_of(text).ok_or_else(|| {
            ScheduleError::field(
                field,
                format!("{text:?} is not a date"),
                "write the date as YYYY-MM-DD",
            )
        })
    }

    fn route_of(&self, product: &str, hospital: &str) -> Result<(usize, usize), ScheduleError> {
        let p = self.net.product(product).ok_or_else(|| {
            let known: Vec<&str> = self
                .net
                .instance()
                .products
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            ScheduleError::field(
                "product",
                format!("{product:?} is not a product of this network"),
                format!("use one of {}", known.join(", ")),
            )
        })?;
        let h = self.net.hospital(hospital).ok_or_else(|| {
            ScheduleError::field(
                "hospital",
                format!("{hospital:?} is not a hospital of this network"),
                "use the id of a hospital site",
            )
        })?;
        Ok((p, h))
    }

    fn proposal(&self, product: usize, hospital: usize, slots: Vec<Slot>) -> Proposal {
        let route = self.net.route(product, hospital);
        let first = slots.first().map(|s| s.start).unwrap_or(0);
        let last = slots.last().map(|s| s.end).unwrap_or(0);
        Proposal {
            collection: self.net.date_of(first),
            infusion: self.net.date_of(last),
            vein_to_vein_days: last - first,
            stages: slots
                .iter()
                .zip(&route.stages)
                .map(|(s, st)| StageDates {
                    stage: st.name.clone(),
                    start: self.net.date_of(s.start),
                    end: self.net.date_of(s.end),
                })
                .collect(),
            slots,
            risk: None,
        }
    }

    /// A proposal with its [`Risk`]: the repeats are searched against today's bookings
    /// plus this proposal's own stages up to the point of the repeat.
    fn proposal_with_risk(
        &mut self,
        product: usize,
        hospital: usize,
        slots: Vec<Slot>,
        latest: Option<Day>,
    ) -> Proposal {
        let risk = self.risk(product, hospital, &slots, latest);
        Proposal {
            risk: Some(risk),
            ..self.proposal(product, hospital, slots)
        }
    }

    fn risk(&mut self, p: usize, h: usize, slots: &[Slot], latest: Option<Day>) -> Risk {
        let prod = &self.net.instance().products[p];
        let (p_fail, p_oos) = (prod.p_fail, prod.p_oos);
        let first_time_right = (1.0 - p_fail) * (1.0 - p_oos);
        let p_on_time = first_time_right * self.net.p_on_plan(p);
        let route = self.net.route(p, h).clone();
        let infusion = slots.last().map_or(0, |s| s.end);
        let extra = vec![0; route.stages.len()];
        let oos = self.net.oos_stage(p);
        let rescue = |planner: &Planner, known: Day, found: Option<Vec<Slot>>| {
            let end = found.as_ref().and_then(|s| s.last()).map(|s| s.end);
            Rescue {
                known: planner.net.date_of(known),
                infusion: end.map(|e| planner.net.date_of(e)),
                delay_days: end.map(|e| e - infusion),
                within_window: match (end, latest) {
                    (Some(e), Some(l)) => e <= l,
                    (Some(_), None) => true,
                    (None, _) => false,
                },
            }
        };
        // An OOS is known when the repeated stage ends; the stages before it stay as they
        // were, the retest and the rest of the route take new capacity.
        let if_oos = oos.filter(|&k| k < slots.len()).map(|k| {
            let known = slots[k].end;
            Schedule::apply_usage(&mut self.sched.profile, &route, slots, 0, true);
            let (found, _) = find_placement(
                &self.net,
                &mut self.sched.profile,
                &route,
                &extra,
                &slots[..k],
                k,
                // Used only when the repeat starts the route (k = 0).
                Window {
                    first_start_min: known,
                    first_start_max: self.net.horizon - 1,
                    end_max: None,
                },
                known,
            );
            Schedule::apply_usage(&mut self.sched.profile, &route, slots, 0, false);
            rescue(self, known, found)
        });
        // A failure is known when manufacturing ends (the stage before the OOS stage, else
        // the first stage); what ran until then stays used, the rest is freed.
        let made = oos.filter(|&k| k > 0).map_or(0, |k| k - 1);
        let if_failed = (p_fail > 0.0 && made < slots.len()).then(|| {
            let known = slots[made].end;
            let used = &slots[..=made];
            Schedule::apply_usage(&mut self.sched.profile, &route, used, 0, true);
            let (found, _) = find_placement(
                &self.net,
                &mut self.sched.profile,
                &route,
                &extra,
                &[],
                0,
                Window {
                    first_start_min: known + 1,
                    first_start_max: self.net.horizon - 1,
                    end_max: None,
                },
                0,
            );
            Schedule::apply_usage(&mut self.sched.profile, &route, used, 0, false);
            rescue(self, known, found)
        });
        Risk {
            p_first_time_right: first_time_right,
            p_on_time,
            if_oos,
            if_failed,
        }
    }

    fn search(
        &mut self,
        p: usize,
        h: usize,
        from: Day,
        to: Day,
        end_max: Option<Day>,
    ) -> (Option<Vec<Slot>>, Option<Blocked>) {
        let route = self.net.route(p, h).clone();
        let extra = vec![0; route.stages.len()];
        find_placement(
            &self.net,
            &mut self.sched.profile,
            &route,
            &extra,
            &[],
            0,
            Window {
                first_start_min: from,
                first_start_max: to,
                end_max,
            },
            0,
        )
    }

    /// Checks `request` as of `today` without reserving anything.
    pub fn check(&mut self, request: &BookingRequest, today: Day) -> Result<Answer, ScheduleError> {
        let (p, h) = self.route_of(&request.product, &request.hospital)?;
        let day = self.parse_date("collection_date", &request.collection_date)?;
        if day < today {
            return Err(ScheduleError::field(
                "collection_date",
                format!(
                    "{} is in the past (today is {})",
                    request.collection_date,
                    self.net.date_of(today)
                ),
                "request today or a later date",
            ));
        }
        if day >= self.net.horizon {
            return Err(ScheduleError::field(
                "collection_date",
                format!(
                    "{} is after the planning horizon ({})",
                    request.collection_date,
                    self.net.date_of(self.net.horizon - 1)
                ),
                "request an earlier date",
            ));
        }
        let earliest = match &request.earliest_date {
            Some(t) => self.parse_date("earliest_date", t)?.max(today),
            None => today,
        };
        let latest = match &request.latest_infusion {
            Some(t) => Some(self.parse_date("latest_infusion", t)?),
            None => None,
        };
        if let Some(l) = latest
            && l < day
        {
            return Err(ScheduleError::field(
                "latest_infusion",
                format!(
                    "{} is before collection_date {}: an impossible window",
                    self.net.date_of(l),
                    request.collection_date
                ),
                "give a latest infusion date after the collection date",
            ));
        }
        let (found, blocked) = self.search(p, h, day, day, latest);
        if let Some(slots) = found {
            return Ok(Answer::Feasible(
                self.proposal_with_risk(p, h, slots, latest),
            ));
        }
        let binding = self.explain(p, h, day, latest, blocked);
        let mut alternatives = Vec::new();
        let mut from = earliest;
        let stop = (earliest + ALTERNATIVES_SCAN_DAYS).min(self.net.horizon - 1);
        while alternatives.len() < ALTERNATIVES_MAX && from <= stop {
            match self.search(p, h, from, stop, latest).0 {
                Some(slots) => {
                    let start = slots[0].start;
                    if start != day {
                        alternatives.push(self.proposal_with_risk(p, h, slots, latest));
                    }
                    from = start + 1;
                }
                None => break,
            }
        }
        Ok(Answer::Infeasible {
            binding,
            alternatives,
        })
    }

    fn explain(
        &mut self,
        p: usize,
        h: usize,
        day: Day,
        latest: Option<Day>,
        blocked: Option<Blocked>,
    ) -> Binding {
        let route = self.net.route(p, h).clone();
        if let Some(b) = blocked {
            let stage = route.stages[b.stage].name.clone();
            let label = self.net.resource_label(b.resource);
            let resource = Some(self.net.resource_id(b.resource).to_string());
            let closed = b.stage == 0
                && b.first_day == day
                && b.last_day == day
                && self.net.capacity[b.resource].get(day as usize) == Some(&0);
            if closed {
                return Binding {
                    constraint: "closed".into(),
                    stage: Some(stage),
                    resource,
                    from: Some(self.net.date_of(day)),
                    to: Some(self.net.date_of(day)),
                    message: format!("no {label} on {} (closed that day)", self.net.date_of(day)),
                };
            }
            let (from, to) = (self.net.date_of(b.first_day), self.net.date_of(b.last_day));
            let span = if from == to {
                format!("on {from}")
            } else {
                format!("between {from} and {to}")
            };
            let hold = route.stages[b.stage]
                .gap_max
                .map(|g| format!(" within the {g}-day hold limit after the previous stage"))
                .unwrap_or_default();
            let res = &self.net.instance().resources[b.resource];
            return Binding {
                constraint: "capacity".into(),
                stage: Some(stage.clone()),
                resource,
                from: Some(from),
                to: Some(to),
                message: format!(
                    "no {} capacity at {} {span} for stage {stage}{hold}",
                    res.kind, res.site
                ),
            };
        }
        if let Some(l) = latest
            && let (Some(slots), _) = self.search(p, h, day, day, None)
        {
            let end = slots.last().expect("a route has stages").end;
            return Binding {
                constraint: "treatment_window".into(),
                stage: None,
                resource: None,
                from: Some(self.net.date_of(end)),
                to: Some(self.net.date_of(l)),
                message: format!(
                    "the earliest infusion from this collection date is {}, after the latest infusion date {}",
                    self.net.date_of(end),
                    self.net.date_of(l)
                ),
            };
        }
        Binding {
            constraint: "horizon".into(),
            stage: None,
            resource: None,
            from: None,
            to: Some(self.net.date_of(self.net.horizon - 1)),
            message: format!(
                "the route does not end before the end of the planning horizon ({})",
                self.net.date_of(self.net.horizon - 1)
            ),
        }
    }

    /// The earliest feasible plan for an order of `product` at `hospital` whose first stage
    /// may start on `earliest_date` (and infusion by `latest_infusion`), without reserving.
    pub fn predict(
        &mut self,
        product: &str,
        hospital: &str,
        earliest_date: &str,
        latest_infusion: Option<&str>,
    ) -> Result<Option<Proposal>, ScheduleError> {
        let (p, h) = self.route_of(product, hospital)?;
        let from = self.parse_date("earliest_date", earliest_date)?.max(0);
        let latest = match latest_infusion {
            Some(t) => Some(self.parse_date("latest_infusion", t)?),
            None => None,
        };
        let found = self.search(p, h, from, self.net.horizon - 1, latest).0;
        Ok(found.map(|s| self.proposal(p, h, s)))
    }

    /// The reservation a booking record should carry for a feasible `proposal`.
    pub fn reservation(
        &self,
        id: &str,
        request: &BookingRequest,
        proposal: &Proposal,
        today: Day,
    ) -> Reservation {
        let earliest = request
            .earliest_date
            .as_deref()
            .and_then(|t| self.net.day_of(t))
            .unwrap_or(today)
            .min(proposal.slots[0].start);
        let end = proposal.slots.last().map(|s| s.end).unwrap_or(0);
        Reservation {
            id: id.to_string(),
            product: request.product.clone(),
            hospital: request.hospital.clone(),
            weight: request
                .weight
                .unwrap_or(1)
                .clamp(1, crate::network::WEIGHT_MAX),
            earliest_day: earliest,
            due_day: request
                .due_date
                .as_deref()
                .and_then(|t| self.net.day_of(t))
                .unwrap_or(end),
            latest_day: request
                .latest_infusion
                .as_deref()
                .and_then(|t| self.net.day_of(t)),
            slots: proposal.slots.clone(),
        }
    }

    /// Reserves capacity for a booking (from a ledger record): no search, never fails. A
    /// record naming an unknown product or hospital, or a booking id already held, is
    /// ignored and `false` returned.
    pub fn reserve(&mut self, r: &Reservation) -> bool {
        let (Some(p), Some(h)) = (self.net.product(&r.product), self.net.hospital(&r.hospital))
        else {
            return false;
        };
        if self.index(&r.id).is_some() || r.slots.len() != self.net.route(p, h).stages.len() {
            return false;
        }
        self.net.orders.push(OrderInfo {
            id: r.id.clone(),
            product: p,
            hospital: h,
            earliest: r.earliest_day,
            due: r.due_day,
            latest: r.latest_day,
            weight: r.weight,
            confirmed: true,
        });
        self.sched.push_order(&self.net);
        let o = self.net.orders.len() - 1;
        self.sched.set_slots(&self.net, o, r.slots.clone());
        true
    }

    /// Cancels a booking and frees its capacity; `false` when there is none with this id.
    pub fn cancel(&mut self, id: &str) -> bool {
        match self.index(id) {
            Some(o) => {
                self.sched.remove_order(&self.net, o);
                self.net.orders.remove(o);
                true
            }
            None => false,
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.net.orders.iter().position(|o| o.id == id)
    }

    /// The slots of a booking.
    pub fn booking(&self, id: &str) -> Option<&[Slot]> {
        self.index(id).map(|o| self.sched.slots[o].as_slice())
    }

    /// Bookings, optionally only those of one hospital (the CPC id lists all).
    pub fn bookings(&self, site: Option<&str>) -> Vec<BookingOut> {
        let cpc = self.net.site_id(self.net.cpc).to_string();
        self.net
            .orders
            .iter()
            .enumerate()
            .filter(|(_, o)| match site {
                None => true,
                Some(s) => s == cpc || self.net.site_id(o.hospital) == s,
            })
            .map(|(k, o)| {
                let slots = &self.sched.slots[k];
                BookingOut {
                    id: o.id.clone(),
                    product: self.net.product_id(o.product).to_string(),
                    hospital: self.net.site_id(o.hospital).to_string(),
                    weight: o.weight,
                    collection: slots.first().map(|s| self.net.date_of(s.start)),
                    infusion: slots.last().map(|s| self.net.date_of(s.end)),
                    stages: stages_out(&self.net, k, slots),
                }
            })
            .collect()
    }

    /// Gantt data per resource over all bookings.
    pub fn gantt(&self) -> Vec<GanttRow> {
        gantt(
            &self.net,
            self.net.orders.iter().enumerate().map(|(k, o)| {
                (
                    o.id.as_str(),
                    o.product,
                    o.hospital,
                    self.sched.slots[k].as_slice(),
                )
            }),
        )
    }

    /// Computes a replan for `disruption` as of `today` without changing the planner; record
    /// the result and apply it with [`Planner::apply_replan`].
    pub fn replan(&self, disruption: &Disruption, today: Day) -> Result<Replan, ScheduleError> {
        let mut net = self.net.clone();
        let mut sched = self.sched.clone();
        replan(&mut net, &mut sched, disruption, today)
    }

    /// Applies a recorded replan: the disruption's capacity or delay effect, then every
    /// move's new slots. No search; never fails (unknown ids are skipped).
    pub fn apply_replan(&mut self, disruption: &Disruption, moves: &[Move]) {
        match disruption {
            Disruption::Breakdown {
                resource,
                from_day,
                to_day,
                units,
            } => {
                if let Some(r) = self.net.resource_by_id(resource) {
                    self.net.reduce_capacity(r, *from_day, *to_day, *units);
                }
            }
            Disruption::CourierLate { order, days } => {
                if let Some(o) = self.index(order)
                    && let Some(last) = self.sched.extra[o].last_mut()
                {
                    *last += *days;
                }
            }
            Disruption::BatchFailed { .. } | Disruption::Oos { .. } => {}
        }
        for m in moves {
            if let Some(o) = self.index(&m.order) {
                self.sched.set_slots(&self.net, o, m.slots.clone());
            }
        }
    }
}
