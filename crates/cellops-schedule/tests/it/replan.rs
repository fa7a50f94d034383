//! Replanning moves only what the disruption touches and says why.

use cellops_schedule::instance::Outage;
use cellops_schedule::optimise::{Options, optimise};
use cellops_schedule::replan::{Disruption, replan};
use cellops_schedule::{Network, Schedule};

use crate::common::{check_plan, check_plan_except, instance};

const N: usize = 150;
const SEED: u64 = 21;

fn planned() -> (Network, Schedule) {
    let net = Network::new(instance(N, SEED)).unwrap();
    let (sched, _) = optimise(
        &net,
        Options {
            iterations_max: 1000,
            ..Options::default()
        },
    );
    (net, sched)
}

fn unchanged_except(before: &Schedule, after: &Schedule, net: &Network, ids: &[String]) {
    for (o, order) in net.orders.iter().enumerate() {
        if !ids.contains(&order.id) {
            assert_eq!(
                before.slots[o], after.slots[o],
                "order {} moved without a reason",
                order.id
            );
        }
    }
}

#[test]
fn a_device_breakdown_moves_few_orders_and_keeps_capacity() {
    let (mut net, mut sched) = planned();
    let before = sched.clone();
    // Announced ahead: the devices go out of service in four weeks, for a month.
    let today = 120;
    let (from, to) = (today + 28, today + 58);
    let d = Disruption::Breakdown {
        resource: "cpc/culture_device".into(),
        from_day: from,
        to_day: to,
        units: 2,
    };
    let out = replan(&mut net, &mut sched, &d, today).unwrap();
    let ids: Vec<String> = out.changes.iter().map(|c| c.order.clone()).collect();
    assert!(
        !out.changes.is_empty(),
        "a two-device loss over a month displaces someone"
    );
    assert!(out.changes.len() <= 12, "{} changes", out.changes.len());
    for c in &out.changes {
        assert!(
            c.reason.starts_with("culture_device at cpc out of service"),
            "{}",
            c.reason
        );
        // Nothing that had started moved.
        for (b, a) in c.before.iter().zip(&c.after) {
            if b.start_day < today {
                assert_eq!(b, a, "{}", c.order);
            }
        }
    }
    unchanged_except(&before, &sched, &net, &ids);
    let mut inst = instance(N, SEED);
    inst.resources[0].outages.push(Outage {
        from_day: from,
        to_day: to,
        units: 2,
        reason: String::new(),
    });
    check_plan(&inst, &sched.slots);
    assert!(out.unresolved.is_empty(), "{:?}", out.unresolved);
}

#[test]
fn a_breakdown_under_running_batches_is_reported_unresolved() {
    let (mut net, mut sched) = planned();
    let d = Disruption::Breakdown {
        resource: "cpc/culture_device".into(),
        from_day: 120,
        to_day: 150,
        units: 3,
    };
    let out = replan(&mut net, &mut sched, &d, 120).unwrap();
    assert_eq!(out.unresolved.len(), 1, "{out:?}");
    assert!(
        out.unresolved[0].starts_with(
            "stages already running use more culture_device at cpc than remain between 2027-05-04"
        ),
        "{}",
        out.unresolved[0]
    );
}

#[test]
fn confirmed_bookings_move_last() {
    let mut inst = instance(N, SEED);
    for (k, o) in inst.orders.iter_mut().enumerate() {
        o.confirmed = k % 2 == 0;
    }
    let mut net = Network::new(inst).unwrap();
    let (mut sched, _) = optimise(
        &net,
        Options {
            iterations_max: 1000,
            ..Options::default()
        },
    );
    let d = Disruption::Breakdown {
        resource: "cpc/culture_device".into(),
        from_day: 150,
        to_day: 160,
        units: 1,
    };
    let out = replan(&mut net, &mut sched, &d, 150).unwrap();
    assert!(!out.changes.is_empty());
    assert_eq!(out.confirmed_moved, 0, "{:?}", out.changes);
}

#[test]
fn a_failed_batch_is_recollected_after_the_failure() {
    let (mut net, mut sched) = planned();
    let before = sched.clone();
    // An order whose culture runs on day 200.
    let o = (0..net.orders.len())
        .find(|&o| {
            sched.slots[o].len() == 4
                && sched.slots[o][1].start < 200
                && 200 < sched.slots[o][1].end
        })
        .expect("some culture runs on day 200");
    let id = net.orders[o].id.clone();
    let out = replan(
        &mut net,
        &mut sched,
        &Disruption::BatchFailed {
            order: id.clone(),
            day: 200,
        },
        200,
    )
    .unwrap();
    let change = out.changes.iter().find(|c| c.order == id).unwrap();
    assert!(change.reason.contains("batch failed"), "{}", change.reason);
    assert!(
        sched.slots[o][0].start >= 201,
        "new collection after the failure"
    );
    assert!(change.infusion_shift_days.unwrap() > 0);
    unchanged_except(&before, &sched, &net, &[id]);
    check_plan(&instance(N, SEED), &sched.slots);
}

#[test]
fn an_oos_repeats_qc_only() {
    let (mut net, mut sched) = planned();
    let o = (0..net.orders.len())
        .find(|&o| sched.slots[o].len() == 4 && sched.slots[o][2].start > 100)
        .unwrap();
    let id = net.orders[o].id.clone();
    let old = sched.slots[o].clone();
    let day = old[2].start + 5;
    let out = replan(
        &mut net,
        &mut sched,
        &Disruption::Oos {
            order: id.clone(),
            day,
        },
        day,
    )
    .unwrap();
    assert_eq!(
        &sched.slots[o][..2],
        &old[..2],
        "collection and culture stay"
    );
    assert!(sched.slots[o][2].start > day);
    assert!(
        out.changes
            .iter()
            .any(|c| c.order == id && c.reason.starts_with("OOS on"))
    );
    check_plan_except(&instance(N, SEED), &sched.slots, &[&id]);
}

#[test]
fn a_late_courier_moves_only_its_infusion() {
    let (mut net, mut sched) = planned();
    let before = sched.clone();
    let o = (0..net.orders.len())
        .find(|&o| sched.slots[o].len() == 4)
        .unwrap();
    let id = net.orders[o].id.clone();
    let ship = sched.slots[o][3];
    let today = ship.start + 1;
    let out = replan(
        &mut net,
        &mut sched,
        &Disruption::CourierLate {
            order: id.clone(),
            days: 2,
        },
        today,
    )
    .unwrap();
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].infusion_shift_days, Some(2));
    assert_eq!(sched.slots[o][3].end, ship.end + 2);
    unchanged_except(&before, &sched, &net, std::slice::from_ref(&id));
    check_plan_except(&instance(N, SEED), &sched.slots, &[&id]);
}

#[test]
fn unknown_ids_are_field_errors() {
    let (mut net, mut sched) = planned();
    let e = replan(
        &mut net,
        &mut sched,
        &Disruption::CourierLate {
            order: "nope".into(),
            days: 1,
        },
        0,
    )
    .unwrap_err();
    assert_eq!(e.fields()[0].field, "order");
    let e = replan(
        &mut net,
        &mut sched,
        &Disruption::Breakdown {
            resource: "cpc/x".into(),
            from_day: 1,
            to_day: 2,
            units: 1,
        },
        0,
    )
    .unwrap_err();
    assert_eq!(e.fields()[0].field, "resource");
}

#[test]
fn a_late_courier_before_departure_keeps_every_earlier_stage() {
    let (mut net, mut sched) = planned();
    let o = (0..net.orders.len())
        .find(|&o| sched.slots[o].len() == 4 && sched.slots[o][0].start > 150)
        .unwrap();
    let id = net.orders[o].id.clone();
    let old = sched.slots[o].clone();
    let out = replan(
        &mut net,
        &mut sched,
        &Disruption::CourierLate {
            order: id.clone(),
            days: 3,
        },
        100,
    )
    .unwrap();
    assert_eq!(
        &sched.slots[o][..3],
        &old[..3],
        "collection, culture and QC stay"
    );
    let ship = sched.slots[o][3];
    assert_eq!(ship.end - ship.start, old[3].end - old[3].start + 3);
    assert!(out.changes.iter().all(|c| c.order == id));
    check_plan_except(&instance(N, SEED), &sched.slots, &[&id]);
}
