//! The optimiser: greedy construction (orders by earliest day, then urgency, each placed at
//! its earliest infusion) followed by large-neighbourhood search (remove a few related
//! orders, re-place them in a random or urgency order, keep the result when the objective
//! does not get worse). Deterministic for a given seed.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::network::{Day, Network};
use crate::plan::{Schedule, Slot, order_cost};

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Seed of the search's RNG.
    pub seed: u64,
    /// Most local-search iterations, over all the searches (each gets an equal share).
    pub iterations_max: usize,
    /// Stop after this many iterations without improvement...
    pub stall_max: usize,
    /// ...or after this many per movable order, whichever is fewer: a small instance runs
    /// out of new neighbourhoods long before a large one (50 orders reached their proven
    /// optimum within 300 iterations and then searched 6000 more; 40 per order already cost
    /// 100 orders 11 % of their objective, so instances of 100 or more keep 6000).
    pub stall_per_order: usize,
    /// Most orders removed per iteration.
    pub destroy_max: usize,
    /// Searches from the constructed plan, each with its own seed (`seed`, `seed + 1`, …);
    /// the best plan wins. Every second one removes up to `destroy_max_wide` orders per
    /// iteration: small neighbourhoods polish a plan quickly, wide ones escape the local
    /// optima small ones get stuck in (on the 50-order instance the narrow searches all
    /// stopped 3 % above a plan only a wide one found).
    pub restarts: usize,
    /// Most orders removed per iteration in the wide searches.
    pub destroy_max_wide: usize,
    /// Starting temperature of the acceptance rule, in objective units: a worse
    /// neighbour is kept with probability exp(−worsening / T), T falling linearly to 0 over
    /// `iterations_max`; 0 keeps only neighbours at least as good.
    pub temperature: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            iterations_max: 80_000,
            stall_max: 6_000,
            stall_per_order: 60,
            destroy_max: 8,
            restarts: 4,
            destroy_max_wide: 30,
            temperature: 20.0,
        }
    }
}

/// What the optimiser did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Objective after construction.
    pub construction_cost: i64,
    /// Objective at the end.
    pub cost: i64,
    /// Local-search iterations run.
    pub iterations: usize,
    /// Iterations that improved the objective.
    pub improvements: usize,
    /// A lower bound on the objective: every order placed alone on the empty network (so
    /// only its route, calendar and windows count). Reaching it proves the plan optimal.
    pub lower_bound: i64,
}

/// Builds a schedule for every order of `net` and improves it.
pub fn optimise(net: &Network, options: Options) -> (Schedule, Stats) {
    let mut sched = Schedule::new(net);
    let lower_bound = lower_bound(net, &mut sched);
    construct(net, &mut sched);
    let construction_cost = sched.cost(net);
    let (mut iterations, mut improvements) = (0, 0);
    let mut best: Option<(i64, Schedule)> = None;
    for r in 0..options.restarts.max(1) {
        let mut run = sched.clone();
        let opts = Options {
            seed: options.seed.wrapping_add(r as u64),
            iterations_max: options.iterations_max / options.restarts.max(1),
            destroy_max: if r % 2 == 1 {
                options.destroy_max_wide
            } else {
                options.destroy_max
            },
            ..options
        };
        let (its, imps) = improve(net, &mut run, opts, lower_bound, &|_| true);
        iterations += its;
        improvements += imps;
        let cost = run.cost(net);
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, run));
        }
        if cost <= lower_bound {
            break;
        }
    }
    let (cost, sched) = best.expect("at least one search");
    (
        sched,
        Stats {
            construction_cost,
            cost,
            iterations,
            improvements,
            lower_bound,
        },
    )
}

/// Σ over orders of the cost of placing the order alone on `sched`'s (empty) profile.
pub fn lower_bound(net: &Network, sched: &mut Schedule) -> i64 {
    (0..net.orders.len())
        .map(|o| {
            let slots = sched.find(net, o).unwrap_or_default();
            order_cost(net, o, &slots)
        })
        .sum()
}

/// Places every unplaced order greedily: earliest day first, then higher weight, then due.
pub fn construct(net: &Network, sched: &mut Schedule) {
    let mut order: Vec<usize> = (0..net.orders.len())
        .filter(|&o| sched.slots[o].len() < net.order_route(o).stages.len())
        .collect();
    order.sort_by_key(|&o| {
        let x = &net.orders[o];
        (x.earliest, -x.weight, x.due, o)
    });
    for o in order {
        sched.place(net, o);
    }
}

/// Large-neighbourhood search over the orders `movable` accepts, until `iterations_max`,
/// `stall_max` (or `stall_per_order` per movable order, if fewer) iterations without
/// improvement, or the objective reaches `lower_bound`.
/// Returns (iterations, improvements).
pub fn improve(
    net: &Network,
    sched: &mut Schedule,
    options: Options,
    lower_bound: i64,
    movable: &dyn Fn(usize) -> bool,
) -> (usize, usize) {
    let candidates: Vec<usize> = (0..net.orders.len()).filter(|&o| movable(o)).collect();
    if candidates.len() < 2 {
        return (0, 0);
    }
    // Per order: the infusion day with no waiting, and its number of stages (what `waits`
    // needs, asked for every candidate at every iteration).
    let shortest: Vec<(Day, usize)> = (0..net.orders.len())
        .map(|o| {
            let route = net.order_route(o);
            (
                net.orders[o].earliest + route.min_length(),
                route.stages.len(),
            )
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut cost = sched.cost(net);
    let stall_max = options
        .stall_max
        .min(options.stall_per_order.saturating_mul(candidates.len()));
    let mut best_cost = cost;
    let mut best = sched.slots.clone();
    let mut stall = 0;
    let mut improvements = 0;
    let mut it = 0;
    while it < options.iterations_max && stall < stall_max && cost > lower_bound {
        it += 1;
        let k = rng
            .gen_range(2..=options.destroy_max.max(2))
            .min(candidates.len());
        let set = pick(&shortest, sched, &candidates, k, &mut rng);
        let old: Vec<(usize, Vec<Slot>)> =
            set.iter().map(|&o| (o, sched.slots[o].clone())).collect();
        let before: i64 = set
            .iter()
            .map(|&o| order_cost(net, o, &sched.slots[o]))
            .sum();
        for &o in &set {
            sched.unplace(net, o);
        }
        let mut seq = set.clone();
        match rng.gen_range(0..3) {
            0 => seq.shuffle(&mut rng),
            1 => seq.sort_by_key(|&o| (-net.orders[o].weight, net.orders[o].earliest)),
            _ => seq.sort_by_key(|&o| (net.orders[o].due, -net.orders[o].weight)),
        }
        for &o in &seq {
            sched.place(net, o);
        }
        let after: i64 = set
            .iter()
            .map(|&o| order_cost(net, o, &sched.slots[o]))
            .sum();
        let t = options.temperature * (1.0 - it as f64 / options.iterations_max as f64);
        let accept_worse = after > before
            && t > 0.0
            && rng.gen_bool((-((after - before) as f64) / t).exp().clamp(0.0, 1.0));
        if after < before || accept_worse {
            cost += after - before;
            if cost < best_cost {
                best_cost = cost;
                best = sched.slots.clone();
                improvements += 1;
                stall = 0;
            } else {
                stall += 1;
            }
        } else if after == before {
            stall += 1;
        } else {
            for &o in &set {
                sched.unplace(net, o);
            }
            for (o, slots) in old {
                if slots.len() > sched.frozen[o] {
                    sched.commit(net, o, slots);
                }
            }
            stall += 1;
        }
    }
    if cost > best_cost {
        // Back to the best plan seen.
        for &o in &candidates {
            sched.unplace(net, o);
        }
        for &o in &candidates {
            if best[o].len() > sched.frozen[o] {
                sched.commit(net, o, best[o].clone());
            }
        }
        cost = best_cost;
    }
    debug_assert_eq!(cost, sched.cost(net));
    (it, improvements)
}

/// Picks `k` orders to remove: half the time at random, otherwise an order that waits
/// (infusion later than its shortest route allows) and the orders overlapping it in time.
fn pick(
    shortest: &[(Day, usize)],
    sched: &Schedule,
    candidates: &[usize],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    if rng.gen_bool(0.4) {
        return candidates.choose_multiple(rng, k).copied().collect();
    }
    let waiting: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&o| {
            let (end_min, stages) = shortest[o];
            let slots = &sched.slots[o];
            // Unplanned (or partly planned) orders wait a lot; see `waits`.
            slots.len() != stages || slots.last().is_some_and(|last| last.end > end_min)
        })
        .collect();
    let Some(&seed) = waiting.choose(rng) else {
        return candidates.choose_multiple(rng, k).copied().collect();
    };
    let span = span(sched, seed);
    let mut near: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&o| o != seed)
        .filter(|&o| {
            let s = span_of(sched, o);
            s.0 <= span.1 && span.0 <= s.1
        })
        .collect();
    near.shuffle(rng);
    near.truncate(k - 1);
    near.push(seed);
    near
}

fn span(sched: &Schedule, o: usize) -> (Day, Day) {
    span_of(sched, o)
}

fn span_of(sched: &Schedule, o: usize) -> (Day, Day) {
    match (sched.slots[o].first(), sched.slots[o].last()) {
        (Some(a), Some(b)) => (a.start, b.end),
        _ => (Day::MIN, Day::MAX),
    }
}

/// Days an order waits beyond its shortest route (unplanned orders count as a lot).
pub fn waits(net: &Network, sched: &Schedule, o: usize) -> Day {
    let route = net.order_route(o);
    match sched.slots[o].last() {
        Some(last) if sched.slots[o].len() == route.stages.len() => {
            last.end - net.orders[o].earliest - route.min_length()
        }
        _ => Day::MAX / 4,
    }
}
