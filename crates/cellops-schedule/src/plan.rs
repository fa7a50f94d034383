//! A schedule under construction: resource usage per day, each order's stage slots, and the
//! objective. Placing an order finds its earliest possible infusion given what is already
//! placed (a depth-first search over the stage windows); the optimiser, the booking check
//! and replanning all build on [`Schedule::place`].

use serde::{Deserialize, Serialize};

use crate::network::{Day, Network, Route};

/// One stage of one order: `start` and `end` days (`end` = next stage may start from here;
/// the last stage's end is the infusion day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// First day of the stage.
    pub start: Day,
    /// Day the stage ends.
    pub end: Day,
}

/// What an order wants from a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First stage start, earliest.
    pub first_start_min: Day,
    /// First stage start, latest (inclusive).
    pub first_start_max: Day,
    /// Last stage end (infusion), latest; `None` = the horizon.
    pub end_max: Option<Day>,
}

/// Why a stage could not be placed at a start day: the first resource and day that was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// Stage index.
    pub stage: usize,
    /// Resource index that was full.
    pub resource: usize,
    /// First day it was found full (over all starts tried for this stage).
    pub first_day: Day,
    /// Last day it was found full.
    pub last_day: Day,
}

/// Resource usage per resource per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    usage: Vec<Vec<u32>>,
}

impl Profile {
    /// An empty profile for `net`.
    pub fn new(net: &Network) -> Profile {
        Profile {
            usage: net.capacity.iter().map(|c| vec![0; c.len()]).collect(),
        }
    }

    /// Units of `resource` in use on `day`.
    pub fn used(&self, resource: usize, day: Day) -> u32 {
        self.usage[resource].get(day as usize).copied().unwrap_or(0)
    }

    /// The first day in `from..from+days` on which `resource` has no free unit.
    fn first_full(&self, net: &Network, resource: usize, from: Day, days: Day) -> Option<Day> {
        (from..from + days).find(|&d| {
            d < 0
                || d >= net.horizon
                || self.usage[resource][d as usize] >= net.capacity[resource][d as usize]
        })
    }

    fn add(&mut self, resource: usize, from: Day, days: Day) {
        for d in from..from + days {
            self.usage[resource][d as usize] += 1;
        }
    }

    fn sub(&mut self, resource: usize, from: Day, days: Day) {
        for d in from..from + days {
            let u = &mut self.usage[resource][d as usize];
            assert!(
                *u > 0,
                "usage of resource {resource} on day {d} would go negative"
            );
            *u -= 1;
        }
    }

    /// Days on which a resource is used beyond its capacity (after a capacity reduction).
    pub fn overloaded(&self, net: &Network, resource: usize) -> Vec<Day> {
        (0..net.horizon)
            .filter(|&d| self.usage[resource][d as usize] > net.capacity[resource][d as usize])
            .collect()
    }
}

/// A schedule: the profile plus every order's slots.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Resource usage.
    pub profile: Profile,
    /// Slots per order (index as in `Network::orders`); empty = unplanned.
    pub slots: Vec<Vec<Slot>>,
    /// Extra days added to each stage's duration (a late courier), per order and stage.
    pub extra: Vec<Vec<Day>>,
    /// Number of leading stages that may not move (already happened), per order.
    pub frozen: Vec<usize>,
    /// First day the stage after the frozen ones may start, per order (after a failure).
    pub resume_min: Vec<Day>,
}

/// Cost of an order: weight × (vein-to-vein days + lateness_weight × late days), or
/// weight × unplanned_penalty when it is not planned.
pub fn order_cost(net: &Network, order: usize, slots: &[Slot]) -> i64 {
    let o = &net.orders[order];
    let inst = net.instance();
    match slots.last() {
        Some(last) if slots.len() == net.order_route(order).stages.len() => {
            let late = (last.end - o.due).max(0);
            o.weight * ((last.end - o.earliest) + inst.lateness_weight * late)
        }
        _ => o.weight * inst.unplanned_penalty,
    }
}

struct Search<'a> {
    net: &'a Network,
    route: &'a Route,
    extra: &'a [Day],
    end_max: Day,
    /// (stage, start) pairs known to lead nowhere in this search.
    dead: DeadSet,
    /// Deepest stage that failed, with its reason (for explanations).
    blocked: Option<Blocked>,
}

impl Schedule {
    /// An empty schedule for `net`'s orders.
    pub fn new(net: &Network) -> Schedule {
        let n = net.orders.len();
        Schedule {
            profile: Profile::new(net),
            slots: vec![Vec::new(); n],
            extra: (0..n)
                .map(|o| vec![0; net.order_route(o).stages.len()])
                .collect(),
            frozen: vec![0; n],
            resume_min: vec![0; n],
        }
    }

    /// Total cost of all orders.
    pub fn cost(&self, net: &Network) -> i64 {
        (0..net.orders.len())
            .map(|o| order_cost(net, o, &self.slots[o]))
            .sum()
    }

    /// Adds (`add = true`) or removes the usage of stages `from..` of `slots` on `route`.
    pub fn apply_usage(
        profile: &mut Profile,
        route: &Route,
        slots: &[Slot],
        from: usize,
        add: bool,
    ) {
        for (k, slot) in slots.iter().enumerate().skip(from) {
            for &(r, off, days) in &route.stages[k].uses {
                if add {
                    profile.add(r, slot.start + off, days);
                } else {
                    profile.sub(r, slot.start + off, days);
                }
            }
        }
    }

    /// Removes the movable part of an order (stages after the frozen ones).
    pub fn unplace(&mut self, net: &Network, order: usize) {
        let f = self.frozen[order];
        let route = net.order_route(order);
        Schedule::apply_usage(&mut self.profile, route, &self.slots[order], f, false);
        self.slots[order].truncate(f);
    }

    /// Commits `slots` (all stages) for an order whose movable part is unplaced.
    pub fn commit(&mut self, net: &Network, order: usize, slots: Vec<Slot>) {
        let f = self.frozen[order];
        assert_eq!(
            self.slots[order].len(),
            f,
            "order {order} is already placed"
        );
        assert_eq!(&slots[..f], &self.slots[order][..], "frozen stages changed");
        Schedule::apply_usage(&mut self.profile, net.order_route(order), &slots, f, true);
        self.slots[order] = slots;
    }

    /// The window an order's first movable stage must start in.
    pub fn order_window(&self, net: &Network, order: usize) -> Window {
        let o = &net.orders[order];
        Window {
            first_start_min: o.earliest.max(self.resume_min[order]),
            first_start_max: net.horizon - 1,
            end_max: o.latest,
        }
    }

    /// Finds the earliest-infusion placement of an unplaced (movable part) order, without
    /// committing it.
    pub fn find(&mut self, net: &Network, order: usize) -> Option<Vec<Slot>> {
        let window = self.order_window(net, order);
        let f = self.frozen[order];
        let prefix = self.slots[order].clone();
        let route = net.order_route(order);
        let extra = self.extra[order].clone();
        find_placement(
            net,
            &mut self.profile,
            route,
            &extra,
            &prefix,
            f,
            window,
            self.resume_min[order],
        )
        .0
    }

    /// Sets an order's slots outright (from a ledger record or a replan), whatever was
    /// placed before; frozen stages are ignored.
    pub fn set_slots(&mut self, net: &Network, order: usize, slots: Vec<Slot>) {
        let route = net.order_route(order);
        Schedule::apply_usage_saturating(&mut self.profile, route, &self.slots[order], false);
        Schedule::apply_usage_saturating(&mut self.profile, route, &slots, true);
        self.slots[order] = slots;
    }

    /// Appends an order (already pushed to `net.orders`) with no slots.
    pub fn push_order(&mut self, net: &Network) {
        let o = self.slots.len();
        assert_eq!(
            o + 1,
            net.orders.len(),
            "push the order to the network first"
        );
        self.slots.push(Vec::new());
        self.extra.push(vec![0; net.order_route(o).stages.len()]);
        self.frozen.push(0);
        self.resume_min.push(0);
    }

    /// Removes an order's usage and its entry (call before removing it from `net.orders`).
    pub fn remove_order(&mut self, net: &Network, order: usize) {
        let route = net.order_route(order);
        Schedule::apply_usage_saturating(&mut self.profile, route, &self.slots[order], false);
        self.slots.remove(order);
        self.extra.remove(order);
        self.frozen.remove(order);
        self.resume_min.remove(order);
    }

    /// Like [`Schedule::apply_usage`] for untrusted slots (ledger records): days outside the
    /// horizon are skipped and counts never underflow.
    fn apply_usage_saturating(profile: &mut Profile, route: &Route, slots: &[Slot], add: bool) {
        for (slot, st) in slots.iter().zip(&route.stages) {
            for &(r, off, days) in &st.uses {
                for d in (slot.start + off).max(0)..slot.start + off + days {
                    if let Some(u) = profile.usage[r].get_mut(d as usize) {
                        *u = if add { *u + 1 } else { u.saturating_sub(1) };
                    }
                }
            }
        }
    }

    /// Places an unplaced order at its earliest infusion; returns whether it fit.
    pub fn place(&mut self, net: &Network, order: usize) -> bool {
        match self.find(net, order) {
            Some(slots) => {
                self.commit(net, order, slots);
                true
            }
            None => false,
        }
    }
}

/// Searches the earliest-infusion placement of `route` given `prefix` (the frozen stages,
/// `prefix.len() == from`), leaving `profile` unchanged. `resume_min` is the earliest start
/// of stage `from` when `from > 0` (e.g. a retest after an OOS). Returns the full slot list,
/// or `None` with the deepest blocking resource.
#[allow(clippy::too_many_arguments)]
pub fn find_placement(
    net: &Network,
    profile: &mut Profile,
    route: &Route,
    extra: &[Day],
    prefix: &[Slot],
    from: usize,
    window: Window,
    resume_min: Day,
) -> (Option<Vec<Slot>>, Option<Blocked>) {
    assert_eq!(prefix.len(), from);
    let n = route.stages.len();
    if from >= n {
        return (Some(prefix.to_vec()), None);
    }
    let end_max = window
        .end_max
        .unwrap_or(net.horizon - 1)
        .min(net.horizon - 1);
    let mut search = Search {
        net,
        route,
        extra,
        end_max,
        dead: DeadSet::new(n, net.horizon),
        blocked: None,
    };
    let tail_min: Vec<Day> = (0..=n)
        .map(|k| {
            (k..n)
                .map(|j| {
                    route.stages[j].duration
                        + extra[j]
                        + if j > k { route.stages[j].gap_min } else { 0 }
                })
                .sum()
        })
        .collect();
    let (lo, hi) = if from == 0 {
        (
            window.first_start_min.max(0),
            window.first_start_max.min(net.horizon - 1),
        )
    } else {
        let prev_end = prefix[from - 1].end;
        let (lo, hi) = stage_window(net, route, from, prev_end);
        if resume_min > lo {
            // A retest or resumption: the hold window opens at `resume_min`.
            (resume_min, resume_min + (hi - lo))
        } else {
            (lo, hi)
        }
    };
    let mut best: Option<Vec<Slot>> = None;
    let mut best_end = Day::MAX;
    let mut path = prefix.to_vec();
    for s in lo..=hi {
        if s + tail_min[from] >= best_end || s + tail_min[from] > end_max {
            break;
        }
        if search.dfs(profile, from, s, &mut path, &tail_min) {
            let end = path.last().expect("complete path").end;
            if end < best_end {
                best_end = end;
                best = Some(path.clone());
            }
            path.truncate(from);
            if from > 0 && route.stages[from].gap_max.is_none() {
                // Later starts can only end later.
                break;
            }
        }
    }
    let blocked = search.blocked;
    (best, blocked)
}

fn stage_window(net: &Network, route: &Route, k: usize, prev_end: Day) -> (Day, Day) {
    let st = &route.stages[k];
    let lo = prev_end + st.gap_min;
    let hi = st
        .gap_max
        .map(|g| prev_end + g)
        .unwrap_or(net.horizon - 1)
        .min(net.horizon - 1);
    (lo, hi)
}

/// A set of (stage, start day) pairs as one bit per stage and day of the horizon: the
/// search asks it at every step, where hashing the pair cost more than the search itself.
struct DeadSet {
    bits: Vec<u64>,
    days: usize,
}

impl DeadSet {
    fn new(stages: usize, horizon: Day) -> DeadSet {
        let days = horizon.max(0) as usize;
        DeadSet {
            bits: vec![0; (stages * days).div_ceil(64)],
            days,
        }
    }

    /// Bit index of (stage, start), `None` outside the horizon (never recorded).
    fn index(&self, stage: usize, start: Day) -> Option<usize> {
        usize::try_from(start)
            .ok()
            .filter(|&d| d < self.days)
            .map(|d| stage * self.days + d)
    }

    fn contains(&self, stage: usize, start: Day) -> bool {
        self.index(stage, start)
            .is_some_and(|i| self.bits[i / 64] & (1 << (i % 64)) != 0)
    }

    fn insert(&mut self, stage: usize, start: Day) {
        if let Some(i) = self.index(stage, start) {
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }
}

impl Search<'_> {
    /// Tries stage `k` at `start`, then the rest at their earliest; on success the path holds
    /// every slot and the profile is unchanged.
    fn dfs(
        &mut self,
        profile: &mut Profile,
        k: usize,
        start: Day,
        path: &mut Vec<Slot>,
        tail_min: &[Day],
    ) -> bool {
        if self.dead.contains(k, start) {
            return false;
        }
        let st = &self.route.stages[k];
        let end = start + st.duration + self.extra[k];
        if start + tail_min[k] > self.end_max {
            return false;
        }
        for &(r, off, days) in &st.uses {
            if let Some(day) = profile.first_full(self.net, r, start + off, days) {
                self.blocked = Some(match self.blocked {
                    Some(b) if b.stage == k && b.resource == r => Blocked {
                        first_day: b.first_day.min(day),
                        last_day: b.last_day.max(day),
                        ..b
                    },
                    Some(b) if b.stage >= k => b,
                    _ => Blocked {
                        stage: k,
                        resource: r,
                        first_day: day,
                        last_day: day,
                    },
                });
                self.dead.insert(k, start);
                return false;
            }
        }
        path.push(Slot { start, end });
        if k + 1 == self.route.stages.len() {
            return true;
        }
        // Tentatively occupy this stage so later stages see it.
        for &(r, off, days) in &st.uses {
            profile.add(r, start + off, days);
        }
        let (lo, hi) = stage_window(self.net, self.route, k + 1, end);
        let mut ok = false;
        for s in lo..=hi {
            if s + tail_min[k + 1] > self.end_max {
                break;
            }
            if self.dfs(profile, k + 1, s, path, tail_min) {
                ok = true;
                break;
            }
        }
        for &(r, off, days) in &st.uses {
            profile.sub(r, start + off, days);
        }
        if !ok {
            path.pop();
            self.dead.insert(k, start);
        }
        ok
    }
}
