//! Bad instances get errors that name the field and the fix.

use cellops_schedule::instance::Use;
use cellops_schedule::{Network, ScheduleError};

use crate::common::instance;

fn errors(inst: cellops_schedule::Instance) -> Vec<String> {
    match Network::new(inst) {
        Err(ScheduleError::Invalid(v)) => v.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn negative_duration_names_the_stage_field() {
    let mut inst = instance(10, 1);
    inst.products[0].stages[2].duration_days = -3;
    let e = errors(inst);
    assert!(
        e.iter().any(
            |m| m.starts_with("products[0].stages[2].duration_days: is -3, negative")
                && m.contains("fix:")
        ),
        "{e:?}"
    );
}

#[test]
fn unknown_resource_kind_is_reported_per_site() {
    let mut inst = instance(10, 1);
    inst.products[0].stages[1].uses.push(Use {
        kind: "culture_devise".into(),
        offset_days: 0,
        days: 1,
    });
    let e = errors(inst);
    assert!(
        e.iter().any(|m| m.starts_with("products[0].stages[1].uses[3].kind: unknown resource: site cpc has no \"culture_devise\"")),
        "{e:?}"
    );
}

#[test]
fn impossible_hold_window_names_the_hospital() {
    let mut inst = instance(10, 1);
    // A hold of 0 days cannot absorb a transit of 1 or 2 days.
    inst.products[0].stages[1].hold_max_days = Some(0);
    let e = errors(inst);
    assert!(
        e.iter().any(
            |m| m.starts_with("products[0].stages[1].hold_max_days: impossible window")
                && m.contains("at hospital h0")
        ),
        "{e:?}"
    );
}

#[test]
fn impossible_order_windows_are_errors() {
    let mut inst = instance(10, 1);
    inst.orders[0].due_day = inst.orders[0].earliest_day - 1;
    inst.orders[1].latest_day = Some(inst.orders[1].earliest_day + 2);
    inst.orders[2].hospital = "cpc".into();
    inst.orders[3].product = "unknown".into();
    let e = errors(inst);
    assert!(
        e.iter()
            .any(|m| m.starts_with("orders[0].due_day: impossible window")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("orders[1].latest_day: impossible window")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("orders[2].hospital: \"cpc\" is not a hospital")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.starts_with("orders[3].product:")),
        "{e:?}"
    );
}

#[test]
fn outage_windows_and_duplicate_resources_are_checked() {
    let mut inst = instance(10, 1);
    inst.resources[0]
        .outages
        .push(cellops_schedule::instance::Outage {
            from_day: 10,
            to_day: 5,
            units: 1,
            reason: "maintenance".into(),
        });
    let mut dup = inst.resources[1].clone();
    dup.id = "other".into();
    inst.resources.push(dup);
    let e = errors(inst);
    assert!(
        e.iter()
            .any(|m| m.starts_with("resources[0].outages[0].to_day: 5 is before from_day 10")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.contains("pool units of one kind")),
        "{e:?}"
    );
}

#[test]
fn unreadable_json_is_a_parse_error() {
    assert!(matches!(
        Network::from_json("{\"format\": 1}"),
        Err(ScheduleError::Parse(_))
    ));
    let mut v: serde_json::Value = serde_json::to_value(instance(5, 1)).unwrap();
    v["surprise"] = serde_json::json!(1);
    let err = Network::from_json(&v.to_string()).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
}
