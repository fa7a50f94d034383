//! Bedside verification: two different qualified users, both scans must match the order.

use crate::common::*;
use cellops_custody::*;

fn ready() -> (CustodyState, UnitCode, UnitCode) {
    let mut state = network();
    let bag = collect(
        &mut state,
        "hospital-a",
        HOSPITAL_FIN,
        "S5678100",
        Some("subj-1"),
        "nurse-1",
        t(0),
    );
    let other = collect(
        &mut state,
        "hospital-a",
        HOSPITAL_FIN,
        "S5678100",
        Some("subj-2"),
        "nurse-1",
        t(0),
    );
    (state, bag, other)
}

fn refusal_of(state: &CustodyState, check: &BedsideCheck) -> Box<BedsideRefusal> {
    match decide_bedside(state, check, &qualified) {
        Ok(event) => panic!("expected a hard stop, got {event:?}"),
        Err(refusal) => refusal,
    }
}

#[test]
fn two_qualified_people_verify_and_the_infusion_follows() {
    let (mut state, bag, _) = ready();
    infuse(&mut state, "order-1", "subj-1", bag, t(1));
    let again = decide_infusion(
        &state,
        &RecordInfusion {
            order: OrderId::parse("order-1").unwrap(),
            by: user("nurse-1"),
            at: t(2),
        },
    );
    assert!(matches!(again, Err(CustodyError::AlreadyInfused { .. })));
    // The unit cannot be verified for another order once infused.
    let check = bedside_check(
        "order-2",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("nurse-2", "subj-1", label(bag)),
        t(3),
    );
    assert!(matches!(
        refusal_of(&state, &check).error,
        CustodyError::NotUsable { .. }
    ));
}

#[test]
fn the_same_person_twice_is_a_hard_stop() {
    let (state, bag, _) = ready();
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("nurse-1", "subj-1", label(bag)),
        t(1),
    );
    let refusal = refusal_of(&state, &check);
    assert!(
        refusal.error.to_string().contains("two DIFFERENT people"),
        "{}",
        refusal.error
    );
    assert!(
        matches!(&refusal.event, Event::BedsideMismatch { reason, .. } if reason == "same_checker")
    );
}

#[test]
fn an_unqualified_checker_is_a_hard_stop() {
    let (state, bag, _) = ready();
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("trainee", "subj-1", label(bag)),
        t(1),
    );
    let refusal = refusal_of(&state, &check);
    assert!(
        refusal
            .error
            .to_string()
            .starts_with("STOP: trainee is not qualified"),
        "{}",
        refusal.error
    );
}

#[test]
fn a_wrong_wristband_is_recorded_with_who_what_and_where() {
    let (mut state, bag, _) = ready();
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("nurse-2", "subj-9", label(bag)),
        t(1),
    );
    let refusal = refusal_of(&state, &check);
    assert_eq!(
        refusal.error.to_string(),
        "STOP: WRONG PATIENT. nurse-2 scanned wristband subj-9, but order order-1 is for patient subj-1. Do not infuse"
    );
    match &refusal.event {
        Event::BedsideMismatch {
            checkers,
            scanned_wristbands,
            location,
            expected_unit,
            ..
        } => {
            assert_eq!(checkers, &[user("nurse-1"), user("nurse-2")]);
            assert_eq!(
                scanned_wristbands,
                &["subj-1".to_string(), "subj-9".to_string()]
            );
            assert_eq!(location.as_str(), "hospital-a/ward-7/bed-3");
            assert_eq!(*expected_unit, bag);
        }
        other => panic!("{other:?}"),
    }
    apply_all(&mut state, &[refusal.event]);
    let blocked = decide_infusion(
        &state,
        &RecordInfusion {
            order: OrderId::parse("order-1").unwrap(),
            by: user("nurse-1"),
            at: t(1),
        },
    );
    assert!(matches!(blocked, Err(CustodyError::NotVerified { .. })));
}

#[test]
fn a_wrong_unit_or_a_unit_made_for_another_patient_is_a_hard_stop() {
    let (state, bag, other) = ready();
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(other)),
        ("nurse-2", "subj-1", label(bag)),
        t(1),
    );
    let refusal = refusal_of(&state, &check);
    assert!(
        refusal
            .error
            .to_string()
            .starts_with("STOP: WRONG UNIT. nurse-1 scanned"),
        "{}",
        refusal.error
    );
    // The order itself names a unit made for someone else: both scans match it, still a stop.
    let check = bedside_check(
        "order-1",
        "subj-1",
        other,
        ("nurse-1", "subj-1", label(other)),
        ("nurse-2", "subj-1", label(other)),
        t(1),
    );
    let refusal = refusal_of(&state, &check);
    assert!(
        matches!(refusal.error, CustodyError::UnitForOtherPatient { .. }),
        "{}",
        refusal.error
    );
    // An unreadable wristband.
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj 1", label(bag)),
        ("nurse-2", "subj-1", label(bag)),
        t(1),
    );
    assert!(matches!(
        refusal_of(&state, &check).error,
        CustodyError::WristbandUnreadable { .. }
    ));
    // Expired unit.
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("nurse-2", "subj-1", label(bag)),
        t(49),
    );
    assert!(matches!(
        refusal_of(&state, &check).error,
        CustodyError::Expired { .. }
    ));
}

#[test]
fn a_stale_verification_must_be_repeated() {
    let (mut state, bag, _) = ready();
    let check = bedside_check(
        "order-1",
        "subj-1",
        bag,
        ("nurse-1", "subj-1", label(bag)),
        ("nurse-2", "subj-1", label(bag)),
        t(1),
    );
    let verified = decide_bedside(&state, &check, &qualified).unwrap();
    apply_all(&mut state, &[verified]);
    let late = t(1).plus_us((BEDSIDE_TO_INFUSION_MINUTES_MAX + 1) * MINUTE_US);
    let err = decide_infusion(
        &state,
        &RecordInfusion {
            order: OrderId::parse("order-1").unwrap(),
            by: user("nurse-1"),
            at: late,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("Repeat the bedside check"),
        "{err}"
    );
}
