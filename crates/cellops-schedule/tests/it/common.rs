//! Shared helpers: generated networks and an independent feasibility checker that reads
//! the instance file directly (not the planner's precomputed routes).

use cellops_schedule::generate::{GenParams, generate};
use cellops_schedule::instance::{Instance, SiteKind, StageSite, Transit};
use cellops_schedule::{Network, Slot, date};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub fn instance(patients: usize, seed: u64) -> Instance {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    generate(
        &GenParams::year(&format!("t{patients}-{seed}"), patients),
        &mut rng,
    )
}

pub fn network(patients: usize, seed: u64) -> Network {
    Network::new(instance(patients, seed)).expect("generated instances are valid")
}

/// Checks every constraint of `docs/scheduling.md` for the planned orders (`plans[i]` for
/// `inst.orders[i]`, empty = unplanned) and returns the objective.
pub fn check_plan(inst: &Instance, plans: &[Vec<Slot>]) -> i64 {
    check_plan_except(inst, plans, &[])
}

/// [`check_plan`] that checks only capacity (not durations and gaps) for the orders in
/// `route_exempt` (a retest or a late courier changes their route).
pub fn check_plan_except(inst: &Instance, plans: &[Vec<Slot>], route_exempt: &[&str]) -> i64 {
    let start = date::parse_date(&inst.start_date).unwrap();
    let h = inst.horizon_days;
    let cap = |r: usize, d: i64| -> i64 {
        let res = &inst.resources[r];
        let mut c = match &res.weekday_capacity {
            Some(w) => w[date::weekday(start + d)],
            None => res.capacity_per_day,
        };
        for o in &res.outages {
            if o.from_day <= d && d <= o.to_day {
                c -= o.units;
            }
        }
        c.max(0)
    };
    let mut used = vec![vec![0i64; h as usize]; inst.resources.len()];
    let mut cost = 0;
    for (order, slots) in inst.orders.iter().zip(plans) {
        if slots.is_empty() {
            cost += order.weight * inst.unplanned_penalty;
            continue;
        }
        let product = inst
            .products
            .iter()
            .find(|p| p.id == order.product)
            .unwrap();
        let hosp = inst.sites.iter().find(|s| s.id == order.hospital).unwrap();
        assert_eq!(hosp.kind, SiteKind::Hospital);
        assert_eq!(slots.len(), product.stages.len(), "order {}", order.id);
        assert!(
            slots[0].start >= order.earliest_day,
            "order {} starts early",
            order.id
        );
        let exempt = route_exempt.contains(&order.id.as_str());
        for (k, (slot, st)) in slots.iter().zip(&product.stages).enumerate() {
            let during = if st.transit == Transit::During {
                hosp.transit_days
            } else {
                0
            };
            if !exempt {
                assert_eq!(
                    slot.end,
                    slot.start + st.duration_days + during,
                    "order {} stage {k}",
                    order.id
                );
            }
            assert!(slot.end < h, "order {} ends after the horizon", order.id);
            if k > 0 && !exempt {
                let before = if st.transit == Transit::Before {
                    hosp.transit_days
                } else {
                    0
                };
                let gap = slot.start - slots[k - 1].end;
                assert!(
                    gap >= st.min_gap_days + before,
                    "order {} stage {k} gap {gap}",
                    order.id
                );
                if let Some(hold) = st.hold_max_days {
                    assert!(
                        gap <= hold,
                        "order {} stage {k} breaks hold {hold}: {gap}",
                        order.id
                    );
                }
            }
            let site = match st.site {
                StageSite::Cpc => inst
                    .sites
                    .iter()
                    .find(|s| s.kind == SiteKind::Cpc)
                    .unwrap()
                    .id
                    .clone(),
                StageSite::Hospital => hosp.id.clone(),
            };
            for u in &st.uses {
                let r = inst
                    .resources
                    .iter()
                    .position(|r| r.site == site && r.kind == u.kind)
                    .unwrap();
                for d in slot.start + u.offset_days..slot.start + u.offset_days + u.days {
                    used[r][d as usize] += 1;
                }
            }
        }
        let end = slots.last().unwrap().end;
        if let Some(l) = order.latest_day {
            assert!(end <= l, "order {} after its latest day", order.id);
        }
        cost += order.weight
            * ((end - order.earliest_day) + inst.lateness_weight * (end - order.due_day).max(0));
    }
    for (r, days) in used.iter().enumerate() {
        for (d, u) in days.iter().enumerate() {
            assert!(
                *u <= cap(r, d as i64),
                "resource {} over capacity on day {d}: {u} > {}",
                inst.resources[r].id,
                cap(r, d as i64)
            );
        }
    }
    cost
}
