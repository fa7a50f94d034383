//! Booking requests: feasible dates, binding constraints, alternatives, reservations.

use cellops_schedule::ScheduleError;
use cellops_schedule::booking::{Answer, BookingRequest, Planner};

use crate::common::instance;

fn planner() -> Planner {
    // One patient's worth of demand: one culture device, one QC slot per weekday.
    Planner::from_instance(instance(1, 11)).unwrap()
}

fn request(product: &str, hospital: &str, date: &str) -> BookingRequest {
    BookingRequest {
        product: product.into(),
        hospital: hospital.into(),
        collection_date: date.into(),
        earliest_date: None,
        latest_infusion: None,
        due_date: None,
        weight: None,
    }
}

fn feasible(p: &mut Planner, r: &BookingRequest) -> cellops_schedule::booking::Proposal {
    match p.check(r, 0).unwrap() {
        Answer::Feasible(x) => x,
        other => panic!("expected feasible: {other:?}"),
    }
}

fn book(p: &mut Planner, id: &str, r: &BookingRequest) {
    let prop = feasible(p, r);
    let res = p.reservation(id, r, &prop, 0);
    assert!(p.reserve(&res));
}

#[test]
fn a_free_weekday_is_feasible_end_to_end() {
    let mut p = planner();
    // 2027-01-05 is a Tuesday.
    let prop = feasible(&mut p, &request("prime-car-t", "h01", "2027-01-05"));
    assert_eq!(prop.collection, "2027-01-05");
    let names: Vec<&str> = prop.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["collection", "culture", "qc", "ship"]);
    // 1 d collection + ≥1 d transit + the planned culture and freeze + 7 d QC + ≥1 d
    // shipping.
    let least = 1 + 1 + cellops_schedule::generate::prime_culture_stage_days().0 + 7 + 1;
    assert!(prop.vein_to_vein_days >= least, "{prop:?}");
    assert_eq!(prop.infusion, prop.stages[3].end);
}

#[test]
fn a_closed_day_names_the_resource_and_offers_alternatives() {
    let mut p = planner();
    // 2027-01-09 is a Saturday: no apheresis chair.
    let Answer::Infeasible {
        binding,
        alternatives,
    } = p
        .check(&request("prime-car-t", "h02", "2027-01-09"), 0)
        .unwrap()
    else {
        panic!("a Saturday collection is infeasible")
    };
    assert_eq!(binding.constraint, "closed");
    assert_eq!(
        binding.message,
        "no collection_chair at h02 on 2027-01-09 (closed that day)"
    );
    assert_eq!(alternatives.len(), 3);
    for alt in &alternatives {
        feasible(&mut p, &request("prime-car-t", "h02", &alt.collection));
    }
    assert_eq!(
        alternatives[0].collection, "2027-01-04",
        "earliest from today (day 0)"
    );
}

#[test]
fn full_culture_devices_bind_and_cancelling_frees_them() {
    let mut p = planner();
    book(&mut p, "B1", &request("prime-car-t", "h01", "2027-01-05"));
    let r2 = request("prime-car-t", "h02", "2027-01-05");
    let Answer::Infeasible {
        binding,
        alternatives,
    } = p.check(&r2, 0).unwrap()
    else {
        panic!("the only culture device is taken")
    };
    assert_eq!(binding.constraint, "capacity");
    assert_eq!(binding.resource.as_deref(), Some("cpc/culture_device"));
    assert!(
        binding
            .message
            .starts_with("no culture_device capacity at cpc between 2027-01-0"),
        "{}",
        binding.message
    );
    assert!(
        binding.message.contains("hold limit"),
        "{}",
        binding.message
    );
    // The first alternative starts after B1's culture frees the device.
    let b1 = p.booking("B1").unwrap().to_vec();
    assert!(!alternatives.is_empty());
    assert!(
        alternatives.iter().all(|a| a.slots[1].start >= b1[1].end),
        "{alternatives:?}"
    );
    let predicted = p
        .predict("prime-car-t", "h02", "2027-01-05", None)
        .unwrap()
        .unwrap();
    // The prediction is the first alternative's dates (without the booking answer's risk).
    assert_eq!(
        predicted,
        cellops_schedule::booking::Proposal {
            risk: None,
            ..alternatives[0].clone()
        }
    );
    assert!(p.cancel("B1"));
    assert!(!p.cancel("B1"));
    feasible(&mut p, &r2);
}

#[test]
fn a_tight_treatment_window_is_the_binding_constraint() {
    let mut p = planner();
    let mut r = request("bm-msc", "h01", "2027-01-05");
    r.latest_infusion = Some("2027-01-20".into());
    let Answer::Infeasible {
        binding,
        alternatives,
    } = p.check(&r, 0).unwrap()
    else {
        panic!("a 3-week MSC culture cannot end in 15 days")
    };
    assert_eq!(binding.constraint, "treatment_window");
    assert!(
        binding
            .message
            .contains("after the latest infusion date 2027-01-20"),
        "{}",
        binding.message
    );
    assert!(alternatives.is_empty());
}

#[test]
fn bad_requests_name_the_field() {
    let mut p = planner();
    let e = p
        .check(&request("car-t", "h01", "2027-01-05"), 0)
        .unwrap_err();
    assert_eq!(e.fields()[0].field, "product");
    let e = p
        .check(&request("bm-msc", "cpc", "2027-01-05"), 0)
        .unwrap_err();
    assert_eq!(e.fields()[0].field, "hospital");
    let e = p
        .check(&request("bm-msc", "h01", "2027-1-5"), 0)
        .unwrap_err();
    assert_eq!(e.fields()[0].field, "collection_date");
    let e = p
        .check(&request("bm-msc", "h01", "2027-01-05"), 3)
        .unwrap_err();
    assert!(matches!(e, ScheduleError::Invalid(_)));
    assert!(e.to_string().contains("in the past"), "{e}");
}

#[test]
fn reservations_replay_without_search() {
    let mut a = planner();
    book(&mut a, "B1", &request("prime-car-t", "h01", "2027-01-05"));
    book(&mut a, "B2", &request("allo-car-t", "h03", "2027-01-06"));
    let mut b = planner();
    for id in ["B1", "B2"] {
        let slots = a.booking(id).unwrap().to_vec();
        let out = a.bookings(None).into_iter().find(|x| x.id == id).unwrap();
        assert!(b.reserve(&cellops_schedule::booking::Reservation {
            id: id.into(),
            product: out.product,
            hospital: out.hospital,
            weight: 1,
            earliest_day: 0,
            due_day: 40,
            latest_day: None,
            slots,
        }));
    }
    assert_eq!(
        serde_json::to_value(a.gantt()).unwrap(),
        serde_json::to_value(b.gantt()).unwrap()
    );
    assert_eq!(a.bookings(Some("h03")).len(), 1);
    assert_eq!(a.bookings(Some("cpc")).len(), 2);
}
