//! The staffing needs of booked stages: declared actions per stage, `recipe` expanded from
//! the recipe's qualifications, only stages overlapping the period; the report joins the
//! training answers and counts the gaps.

use cellops_schedule::booking::{Answer, BookingRequest, Planner};
use cellops_schedule::staffing::{self, StaffingNeed};

use crate::common::instance;

fn booked() -> Planner {
    let mut p = Planner::from_instance(instance(1, 11)).unwrap();
    for (id, product, date) in [
        ("bk-1", "prime-car-t", "2027-01-05"),
        ("bk-2", "bm-msc", "2027-03-02"),
    ] {
        let r = BookingRequest {
            product: product.into(),
            hospital: "h01".into(),
            collection_date: date.into(),
            earliest_date: None,
            latest_infusion: None,
            due_date: None,
            weight: None,
        };
        let Answer::Feasible(prop) = p.check(&r, 0).unwrap() else {
            panic!("{date} is feasible");
        };
        let res = p.reservation(id, &r, &prop, 0);
        assert!(p.reserve(&res));
    }
    p
}

fn actions(needs: &[StaffingNeed], booking: &str, stage: &str) -> Vec<String> {
    needs
        .iter()
        .filter(|n| n.booking == booking && n.stage == stage)
        .map(|n| n.action.clone())
        .collect()
}

#[test]
fn each_booked_stage_needs_its_declared_actions_at_its_site() {
    let p = booked();
    let net = p.network();
    let bookings = p.bookings(None);
    let (from, to) = (
        net.day_of("2027-01-01").unwrap(),
        net.day_of("2027-01-31").unwrap(),
    );
    let recipe = |product: &str| {
        (product == "prime-car-t").then(|| {
            vec![
                "cpc-receipt".to_string(),
                "cpc-ipc-sampling".to_string(),
                "cpc-receipt".to_string(),
            ]
        })
    };
    let needs = staffing::needs(net, &bookings, from, to, recipe);
    assert_eq!(
        actions(&needs, "bk-1", "collection"),
        ["collection.apheresis"]
    );
    let collection = needs.iter().find(|n| n.stage == "collection").unwrap();
    assert_eq!(collection.site, "h01");
    // `recipe` becomes one need per distinct recipe qualification, at the CPC.
    assert_eq!(
        actions(&needs, "bk-1", "culture"),
        [
            "qualification:cpc-ipc-sampling",
            "qualification:cpc-receipt"
        ]
    );
    let culture = needs.iter().find(|n| n.stage == "culture").unwrap();
    assert_eq!(culture.site, net.site_id(net.cpc));
    assert!(culture.start_day <= culture.end_day && culture.end_day - culture.start_day >= 7);
    // bk-2 (March) is outside the period.
    assert!(actions(&needs, "bk-2", "culture").is_empty());
    // Over the whole spring, bk-2's culture has no recipe to expand: one need with the problem.
    let spring = net.day_of("2027-05-31").unwrap();
    let needs = staffing::needs(net, &bookings, from, spring, recipe);
    let msc: Vec<&StaffingNeed> = needs
        .iter()
        .filter(|n| n.booking == "bk-2" && n.stage == "culture")
        .collect();
    assert_eq!(msc.len(), 1);
    assert_eq!(msc[0].action, "recipe");
    assert!(
        msc[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("no recipe of bm-msc")
    );
    assert_eq!(
        actions(&needs, "bk-2", "collection"),
        ["collection.bone_marrow"]
    );

    // The report: the training side answers each known action; unknown ones are gaps.
    let report = staffing::report("2027-01-01", "2027-05-31", needs.clone(), |need| {
        if need.action.starts_with("qualification:") {
            Ok((need.action[14..].to_string(), vec!["op".into()], Vec::new()))
        } else {
            Ok((
                "x".into(),
                Vec::new(),
                vec![("ns".into(), "expired".into())],
            ))
        }
    });
    let staffed = needs
        .iter()
        .filter(|n| n.problem.is_none() && n.action.starts_with("qualification:"))
        .count();
    assert_eq!(report.gaps, needs.len() - staffed);
    assert!(!report.all_staffed);
    let msc = report
        .needs
        .iter()
        .find(|n| n.need.booking == "bk-2" && n.need.stage == "culture")
        .unwrap();
    assert!(!msc.staffed && msc.qualification.is_none());
}

#[test]
fn a_malformed_staffing_action_is_refused_naming_the_field() {
    let mut inst = instance(1, 11);
    inst.products[0].stages[1].staffing = vec!["Aseptic Processing!".into()];
    let e = cellops_schedule::Network::new(inst).unwrap_err();
    let fields: Vec<&str> = e.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["products[0].stages[1].staffing[0]"], "{e}");
}
