//! The optimiser's plans are feasible, complete and better than construction alone.

use cellops_schedule::optimise::{Options, optimise};
use cellops_schedule::output::{plan_out, schedule_gantt};

use crate::common::{check_plan, instance, network};

#[test]
fn plans_are_feasible_and_cost_what_they_claim() {
    for (n, seed) in [(60, 1), (150, 2)] {
        let net = network(n, seed);
        let (sched, stats) = optimise(
            &net,
            Options {
                iterations_max: 3000,
                ..Options::default()
            },
        );
        let cost = check_plan(&instance(n, seed), &sched.slots);
        assert_eq!(cost, stats.cost);
        assert_eq!(cost, sched.cost(&net));
        assert!(stats.cost <= stats.construction_cost);
        let out = plan_out(&net, &sched);
        assert!(out.unplanned.is_empty(), "{:?}", out.unplanned);
        assert_eq!(out.objective, cost);
        // Never below the no-waiting lower bound.
        let bound: i64 = (0..net.orders.len())
            .map(|o| net.orders[o].weight * net.order_route(o).min_length())
            .sum();
        assert!(cost >= bound);
        assert!(
            stats.lower_bound >= bound && cost >= stats.lower_bound,
            "{stats:?}"
        );
    }
}

#[test]
fn ample_capacity_reaches_the_lower_bound_and_stops() {
    let mut inst = instance(80, 6);
    for r in &mut inst.resources {
        r.capacity_per_day *= 10;
        if let Some(w) = &mut r.weekday_capacity {
            for c in w.iter_mut() {
                *c *= 10;
            }
        }
    }
    let net = cellops_schedule::Network::new(inst.clone()).unwrap();
    let (sched, stats) = optimise(&net, Options::default());
    assert_eq!(stats.cost, stats.lower_bound, "{stats:?}");
    assert_eq!(
        stats.iterations, 0,
        "nothing to improve on a proven optimum"
    );
    assert_eq!(check_plan(&inst, &sched.slots), stats.cost);
}

#[test]
fn local_search_improves_a_tight_instance() {
    let mut inst = instance(200, 5);
    for r in &mut inst.resources {
        if r.kind == "culture_device" {
            r.capacity_per_day = (r.capacity_per_day * 3 / 4).max(1);
        }
    }
    let net = cellops_schedule::Network::new(inst.clone()).unwrap();
    let (sched, stats) = optimise(
        &net,
        Options {
            iterations_max: 4000,
            ..Options::default()
        },
    );
    check_plan(&inst, &sched.slots);
    assert!(stats.improvements > 0, "{stats:?}");
    assert!(stats.cost < stats.construction_cost, "{stats:?}");
}

#[test]
fn same_seed_same_plan() {
    let net = network(80, 3);
    let opts = Options {
        iterations_max: 1500,
        ..Options::default()
    };
    assert_eq!(optimise(&net, opts).0.slots, optimise(&net, opts).0.slots);
}

#[test]
fn gantt_lanes_never_overlap_and_stay_within_capacity() {
    let net = network(100, 4);
    let (sched, _) = optimise(
        &net,
        Options {
            iterations_max: 500,
            ..Options::default()
        },
    );
    let rows = schedule_gantt(&net, &sched);
    assert_eq!(rows.len(), net.instance().resources.len());
    let mut bars = 0;
    for row in &rows {
        let mut by_lane: std::collections::BTreeMap<usize, Vec<(i64, i64)>> = Default::default();
        for b in &row.bars {
            by_lane
                .entry(b.lane)
                .or_default()
                .push((b.start_day, b.last_day));
            bars += 1;
        }
        assert!(
            by_lane.len() <= row.capacity_max as usize,
            "{}",
            row.resource
        );
        for spans in by_lane.values() {
            for w in spans.windows(2) {
                assert!(w[0].1 < w[1].0, "{} lane overlap", row.resource);
            }
        }
    }
    assert!(bars > 100);
}

#[test]
fn verify_agrees_with_the_independent_checker_and_catches_overbooking() {
    let inst = instance(60, 9);
    let net = cellops_schedule::Network::new(inst.clone()).unwrap();
    let (sched, _) = optimise(
        &net,
        Options {
            iterations_max: 300,
            ..Options::default()
        },
    );
    assert_eq!(
        cellops_schedule::verify::check(&net, &sched.slots),
        Ok(check_plan(&inst, &sched.slots))
    );
    // Two orders on the same hospital chair on the same day: put one where another is.
    let mut slots = sched.slots.clone();
    let (a, b) = (0..slots.len())
        .flat_map(|a| (0..slots.len()).map(move |b| (a, b)))
        .find(|&(a, b)| {
            a != b
                && net.orders[a].hospital == net.orders[b].hospital
                && net.orders[a].product == net.orders[b].product
                && net.orders[b].earliest <= net.orders[a].earliest
        })
        .unwrap();
    slots[b] = slots[a].clone();
    let err = cellops_schedule::verify::check(&net, &slots).unwrap_err();
    assert!(err.contains("over capacity"), "{err}");
}
