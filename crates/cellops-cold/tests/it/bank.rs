use crate::common::*;
use cellops_cold::*;
use cellops_custody::{OrderId, SubjectId, UnitCode};

fn order(id: &str, patient: &str, antibodies: &[&str], needed_by: f64) -> DoseOrder {
    DoseOrder {
        order: OrderId::parse(id).unwrap(),
        patient: SubjectId::parse(patient).unwrap(),
        product: "S1234".into(),
        antibodies: antibodies.iter().map(|s| s.to_string()).collect(),
        needed_by: days(needed_by),
        site: site(),
        by: user("pharm"),
        at: days(1.0),
    }
}

/// Two lots; lot 0 released with doses expiring at days 50, 30, 40; lot 1 (HLA B*07:02)
/// released with doses expiring at days 20 and 60.
fn bank(w: &mut World) -> (Vec<UnitCode>, Vec<Vec<BankDose>>) {
    let lots = w.units(&[days(400.0), days(400.0)]);
    let doses0 = w.split(lots[0], &[days(50.0), days(30.0), days(40.0)]);
    let doses1 = w.split(lots[1], &[days(20.0), days(60.0)]);
    for (lot, doses, hla) in [(lots[0], &doses0, "A*02:01"), (lots[1], &doses1, "B*07:02")] {
        let e = decide_register_lot(
            &w.cold,
            &w.custody,
            &RegisterLot {
                lot,
                doses: doses.clone(),
                hla: vec![hla.into()],
                site: site(),
                by: user("op"),
                at: t(2.0),
            },
        )
        .unwrap();
        w.apply(&e);
    }
    for (i, d) in doses0.iter().chain(&doses1).enumerate() {
        let position = format!("dewar-01/R1/B{}/P{}", i / 4 + 1, i % 4 + 1);
        w.put_away(d.code, &position, d.expires_at, t(3.0));
    }
    (lots, vec![doses0, doses1])
}

fn allocated(e: &ColdEvent) -> UnitCode {
    match e {
        ColdEvent::DoseAllocated { dose, .. } => *dose,
        other => panic!("{other:?}"),
    }
}

#[test]
fn allocation_takes_the_first_expiring_compatible_released_dose() {
    let mut w = World::new();
    let (lots, doses) = bank(&mut w);
    let released = |l: &UnitCode| *l == lots[0] || *l == lots[1];
    // Earliest is lot 1's day-20 dose.
    let e = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-1", "p-1", &[], 10.0),
        released,
    )
    .unwrap();
    assert_eq!(allocated(&e), doses[1][0].code);
    // A patient with antibodies against B*07:02 gets lot 0's earliest (day 30).
    let e = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-2", "p-2", &["B*07:02"], 10.0),
        released,
    )
    .unwrap();
    assert_eq!(allocated(&e), doses[0][1].code);
    w.apply(&e);
    // The next order of such a patient gets the day-40 dose; one needing it after day 45
    // gets the day-50 dose.
    let e = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-3", "p-3", &["B*07:02"], 45.0),
        released,
    )
    .unwrap();
    assert_eq!(allocated(&e), doses[0][0].code);
    // The same order twice is refused.
    let err = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-2", "p-2", &[], 10.0),
        released,
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), "order_allocated");
}

#[test]
fn no_dose_is_allocated_from_unreleased_lots_or_with_excursions_and_the_message_says_why() {
    let mut w = World::new();
    let (lots, _) = bank(&mut w);
    let err = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-1", "p-1", &[], 10.0),
        |_| false,
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), "no_dose_available");
    assert!(err.to_string().contains("5 in unreleased lots"), "{err}");
    let only_lot0 = |l: &UnitCode| *l == lots[0];
    let err = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-1", "p-1", &["A*02:01"], 10.0),
        only_lot0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("3 incompatible"), "{err}");
    let err = decide_allocate(
        &w.cold,
        &w.custody,
        &order("ord-1", "p-1", &[], 60.0),
        only_lot0,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("3 expiring before needed_by"),
        "{err}"
    );
}

#[test]
fn a_lot_recall_lists_every_dose_and_recipient() {
    let mut w = World::new();
    let (lots, doses) = bank(&mut w);
    let released = |_: &UnitCode| true;
    for (o, p) in [("ord-1", "p-1"), ("ord-2", "p-2")] {
        let e = decide_allocate(
            &w.cold,
            &w.custody,
            &order(o, p, &["B*07:02"], 10.0),
            released,
        )
        .unwrap();
        w.apply(&e);
    }
    // A cancelled allocation frees the dose and is no longer a recipient.
    let e = decide_cancel_allocation(
        &w.cold,
        &doses[0][0].code,
        &OrderId::parse("ord-2").unwrap(),
        "order withdrawn",
        &user("pharm"),
        days(2.0),
    );
    assert!(e.is_err(), "ord-2 holds the day-40 dose, not day 50");
    let e = decide_cancel_allocation(
        &w.cold,
        &doses[0][2].code,
        &OrderId::parse("ord-2").unwrap(),
        "order withdrawn",
        &user("pharm"),
        days(2.0),
    )
    .unwrap();
    w.apply(&e);
    let recall = recall_lot(&w.cold, &w.custody, &lots[0]).unwrap();
    assert_eq!(recall.doses.len(), 3);
    let recipients: Vec<&str> = recall.recipients.iter().map(|p| p.as_str()).collect();
    assert_eq!(recipients, ["p-1"]);
    let d = recall
        .doses
        .iter()
        .find(|d| d.dose == doses[0][1].code)
        .unwrap();
    assert_eq!(d.allocated_to.as_ref().unwrap().1.as_str(), "p-1");
    assert!(d.position.is_some());
    assert!(recall_lot(&w.cold, &w.custody, &doses[0][0].code).is_err());
}
