//! Durations as distributions from the twin, failure and OOS rates in the booking answer.

use cellops_schedule::booking::{Answer, BookingRequest, Planner, Proposal};
use cellops_schedule::generate::{PRIME_HARVEST, prime_culture_stage_days};
use cellops_schedule::instance::{DurationDistribution, DurationP, SERVICE_LEVEL_DEFAULT};
use cellops_schedule::{Network, ScheduleError};

use crate::common::instance;

fn errors(inst: cellops_schedule::Instance) -> Vec<String> {
    match Network::new(inst) {
        Err(ScheduleError::Invalid(v)) => v.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn dist(days: &[(i64, f64)]) -> DurationDistribution {
    DurationDistribution {
        source: "test".into(),
        days: days
            .iter()
            .map(|&(days, p)| DurationP { days, p })
            .collect(),
    }
}

#[test]
fn the_prime_harvest_rule_is_the_shipped_recipes_decision() {
    let recipes = cellops_process::shipped::shipped_recipes().unwrap();
    let prime = recipes
        .iter()
        .find(|r| r.product() == "prime-car-t")
        .expect("a PRIME recipe ships");
    let decision = prime
        .steps()
        .find_map(|(_, s)| match &s.kind {
            cellops_process::recipe::model::StepKind::Decision(d) if s.id == "harvest-decision" => {
                Some(d.clone())
            }
            _ => None,
        })
        .expect("the PRIME recipe decides the harvest");
    assert_eq!(decision.target_min, PRIME_HARVEST.dose_car_pos_cells);
    assert_eq!(decision.earliest_day, PRIME_HARVEST.earliest_day);
    assert_eq!(decision.latest_day, PRIME_HARVEST.latest_day);
}

#[test]
fn the_generated_prime_culture_comes_from_the_twin_at_the_service_level() {
    let (planned, d) = prime_culture_stage_days();
    assert!(d.source.contains("cellops-twin"), "{}", d.source);
    // Harvest between the decision's first and last day, plus a day to harvest and freeze.
    let first = i64::from(PRIME_HARVEST.earliest_day) + 1;
    let last = i64::from(PRIME_HARVEST.latest_day) + 1;
    assert!(
        d.days.iter().all(|x| (first..=last).contains(&x.days)),
        "{d:?}"
    );
    assert!(d.days.len() >= 3, "lots differ, so lengths differ: {d:?}");
    assert!(d.p_at_most(*planned) >= SERVICE_LEVEL_DEFAULT - 1e-9);
    assert!(d.p_at_most(*planned - 1) < SERVICE_LEVEL_DEFAULT);
    let inst = instance(20, 3);
    let culture = &inst.products[0].stages[1];
    assert_eq!(culture.name, "culture");
    assert_eq!(culture.duration_days, *planned);
    assert_eq!(culture.duration_distribution.as_ref(), Some(d));
    // The device is held for the planned length.
    assert_eq!(culture.uses[0].days, *planned);
    Network::new(inst).unwrap();
}

#[test]
fn a_bad_distribution_names_the_field_and_the_fix() {
    let mut inst = instance(5, 1);
    inst.products[0].stages[1].duration_distribution = Some(dist(&[(9, 0.5), (8, 0.6)]));
    let e = errors(inst);
    assert!(
        e.iter().any(|m| m.starts_with(
            "products[0].stages[1].duration_distribution.days[1].days: 8 is not after"
        ) && m.contains("fix:")),
        "{e:?}"
    );
    let mut inst = instance(5, 1);
    inst.products[0].stages[1].duration_distribution = Some(dist(&[(8, 0.5), (9, 0.4)]));
    let e = errors(inst);
    assert!(
        e.iter().any(|m| m.starts_with(
            "products[0].stages[1].duration_distribution.days: probabilities sum to 0.9"
        )),
        "{e:?}"
    );
    let mut inst = instance(5, 1);
    inst.products[0].stages[1].duration_distribution = Some(dist(&[(8, 0.2), (-1, 0.3), (9, 1.5)]));
    let e = errors(inst);
    assert!(
        e.iter()
            .any(|m| m.starts_with("products[0].stages[1].duration_distribution.days[1].days")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("products[0].stages[1].duration_distribution.days[2].p: is 1.5")),
        "{e:?}"
    );
}

#[test]
fn a_planned_length_below_the_service_level_is_refused() {
    let mut inst = instance(5, 1);
    let stage = &mut inst.products[0].stages[1];
    stage.duration_days = 10;
    stage.duration_distribution = Some(dist(&[(9, 0.5), (10, 0.3), (13, 0.2)]));
    let e = errors(inst.clone());
    assert!(
        e.iter().any(|m| m.starts_with(
            "products[0].stages[1].duration_days: is 10, which covers 80 % of the stage's lots; the service level 0.9 needs 13"
        ) && m.contains("lower service_level")),
        "{e:?}"
    );
    inst.service_level = Some(0.8);
    Network::new(inst.clone()).unwrap();
    inst.service_level = Some(1.5);
    let e = errors(inst);
    assert!(
        e.iter().any(|m| m.starts_with("service_level: is 1.5")),
        "{e:?}"
    );
}

#[test]
fn an_unknown_oos_stage_is_refused() {
    let mut inst = instance(5, 1);
    inst.products[0].oos_repeats = Some("qcc".into());
    let e = errors(inst);
    assert!(
        e.iter()
            .any(|m| m.starts_with("products[0].oos_repeats: \"qcc\" is not a stage")),
        "{e:?}"
    );
}

fn request(product: &str, date: &str, latest: Option<&str>) -> BookingRequest {
    BookingRequest {
        product: product.into(),
        hospital: "h01".into(),
        collection_date: date.into(),
        earliest_date: None,
        latest_infusion: latest.map(str::to_string),
        due_date: None,
        weight: None,
    }
}

fn feasible(p: &mut Planner, r: &BookingRequest) -> Proposal {
    match p.check(r, 0).unwrap() {
        Answer::Feasible(x) => x,
        other => panic!("expected feasible: {other:?}"),
    }
}

#[test]
fn a_booking_answer_carries_its_risk_and_the_repeats_dates() {
    let mut p = Planner::from_instance(instance(1, 11)).unwrap();
    // 2027-01-05 is a Tuesday.
    let prop = feasible(&mut p, &request("prime-car-t", "2027-01-05", None));
    let risk = prop.risk.clone().expect("a checked proposal has its risk");
    let prod = &p.network().instance().products[0];
    let ftr = (1.0 - prod.p_fail) * (1.0 - prod.p_oos);
    assert!((risk.p_first_time_right - ftr).abs() < 1e-12);
    // The culture may outrun its planned length: on time is less likely than first time right.
    let (planned, d) = prime_culture_stage_days();
    assert!((risk.p_on_time - ftr * d.p_at_most(*planned)).abs() < 1e-12);
    assert!(risk.p_on_time < risk.p_first_time_right);
    // An OOS is known when QC ends; the retest takes at least QC's length again.
    let oos = risk.if_oos.expect("PRIME has a QC stage");
    assert_eq!(oos.known, prop.stages[2].end);
    let qc_days = p.network().instance().products[0].stages[2].duration_days;
    assert!(oos.delay_days.unwrap() >= qc_days, "{oos:?}");
    assert!(oos.within_window);
    // A failure is known at harvest: a new collection and the whole route again.
    let failed = risk.if_failed.expect("PRIME can fail");
    assert_eq!(failed.known, prop.stages[1].end);
    let (known, infusion) = (prop.slots[1].end, prop.slots[3].end);
    assert!(
        failed.delay_days.unwrap() >= known + 1 + prop.vein_to_vein_days - infusion,
        "{failed:?} vs {prop:?}"
    );
    // A treatment window that holds the plan but not a repeat says so.
    let tight = feasible(
        &mut p,
        &request("prime-car-t", "2027-01-05", Some(&prop.infusion)),
    );
    let risk = tight.risk.unwrap();
    assert!(!risk.if_oos.unwrap().within_window);
    assert!(!risk.if_failed.unwrap().within_window);
    // The check reserved nothing: the same request answers the same.
    assert_eq!(
        feasible(&mut p, &request("prime-car-t", "2027-01-05", None)),
        prop
    );
}

#[test]
fn a_dose_failing_its_release_check_is_replaced_by_another_dose() {
    let mut p = Planner::from_instance(instance(1, 11)).unwrap();
    let prop = feasible(&mut p, &request("allo-car-t", "2027-01-05", None));
    let risk = prop.risk.unwrap();
    let oos = risk.if_oos.expect("the dose release check repeats");
    assert_eq!(oos.known, prop.stages[0].end);
    assert!(oos.delay_days.unwrap() >= 1, "{oos:?}");
    // No culture distribution: on time is first time right.
    assert!((risk.p_on_time - risk.p_first_time_right).abs() < 1e-12);
}
