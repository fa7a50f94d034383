//! Custody scans: the expected unit is accepted; anything else is refused with a message
//! naming expected vs scanned and a `scan.refused` event.

use crate::common::*;
use cellops_custody::*;
use cellops_isbt::Din;

struct Fixture {
    state: CustodyState,
    bag: UnitCode,
    other: UnitCode,
}

fn fixture() -> Fixture {
    let mut state = network();
    let bag = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-1"),
        "operator-1",
        t(0),
    );
    let other = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-2"),
        "operator-1",
        t(0),
    );
    Fixture { state, bag, other }
}

fn scan(
    state: &CustodyState,
    step: CustodyStep,
    expected: UnitCode,
    text: &str,
    at: cellops_domain::Timestamp,
) -> Result<Event, Box<ScanRefusal>> {
    decide_scan(
        state,
        &ExpectedStep {
            step,
            unit: expected,
            site: site("cpc-kyoto"),
        },
        text,
        &loc("cpc-kyoto/freezer-2"),
        &user("operator-1"),
        at,
    )
}

fn refused(result: Result<Event, Box<ScanRefusal>>) -> Box<ScanRefusal> {
    match result {
        Ok(event) => panic!("expected a refusal, got {event:?}"),
        Err(refusal) => refusal,
    }
}

#[test]
fn accepts_the_expected_unit_and_records_it() {
    let mut f = fixture();
    let event = scan(&f.state, CustodyStep::Store, f.bag, &label(f.bag), t(1)).unwrap();
    assert!(matches!(
        &event,
        Event::ScanAccepted {
            step: CustodyStep::Store,
            ..
        }
    ));
    // A keyboard-wedge scanner's trailing CR/LF is fine.
    assert!(
        scan(
            &f.state,
            CustodyStep::Store,
            f.bag,
            &format!("{}\r\n", label(f.bag)),
            t(1)
        )
        .is_ok()
    );
    apply_all(&mut f.state, &[event]);
    assert_eq!(
        f.state.unit(&f.bag).unwrap().location().as_str(),
        "cpc-kyoto/freezer-2"
    );
}

#[test]
fn refuses_another_unit_naming_expected_and_scanned() {
    let mut f = fixture();
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Store,
        f.bag,
        &label(f.other),
        t(1),
    ));
    let message = refusal.error.to_string();
    assert!(
        message.starts_with("STOP: WRONG UNIT for step store."),
        "{message}"
    );
    assert!(
        message.contains(&f.bag.eye_readable()) && message.contains(&f.other.eye_readable()),
        "{message}"
    );
    match &refusal.event {
        Event::ScanRefused {
            expected,
            scanned_code,
            reason,
            by,
            location,
            ..
        } => {
            assert_eq!(*expected, f.bag);
            assert_eq!(*scanned_code, Some(f.other));
            assert_eq!(reason, "wrong_unit");
            assert_eq!(by.as_str(), "operator-1");
            assert_eq!(location.as_str(), "cpc-kyoto/freezer-2");
        }
        other => panic!("{other:?}"),
    }
    // The refusal is on both units' timelines.
    apply_all(&mut f.state, &[refusal.event]);
    assert_eq!(
        f.state
            .trace(&f.bag)
            .unwrap()
            .timeline
            .last()
            .unwrap()
            .type_name(),
        "scan.refused"
    );
    assert_eq!(
        f.state
            .trace(&f.other)
            .unwrap()
            .timeline
            .last()
            .unwrap()
            .type_name(),
        "scan.refused"
    );
}

#[test]
fn refuses_another_division_of_the_same_donation() {
    let f = fixture();
    let sibling = with_division(f.bag, 4);
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Store,
        f.bag,
        &label(sibling),
        t(1),
    ));
    assert!(
        matches!(refusal.error, CustodyError::WrongUnit { .. }),
        "{}",
        refusal.error
    );
}

#[test]
fn refuses_a_unit_at_the_wrong_step() {
    let f = fixture();
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Receive,
        f.bag,
        &label(f.bag),
        t(1),
    ));
    assert_eq!(
        refusal.error.to_string(),
        format!(
            "STOP: unit {} cannot be scanned at step receive: it is available, and this step needs a unit that is in transit. Check the previous step was recorded",
            f.bag
        )
    );
}

#[test]
fn refuses_an_expired_unit() {
    let f = fixture();
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Process,
        f.bag,
        &label(f.bag),
        t(48),
    ));
    let message = refusal.error.to_string();
    assert!(
        message.contains("EXPIRED at 2026-03-03T00:00:00.000000Z"),
        "{message}"
    );
    assert!(matches!(&refusal.event, Event::ScanRefused { reason, .. } if reason == "expired"));
}

#[test]
fn refuses_a_din_from_another_or_an_unknown_facility() {
    let f = fixture();
    let hospital = UnitCode::new(
        Din::new(fin(HOSPITAL_FIN), 26, 1).unwrap(),
        product("S1234100"),
    );
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Store,
        f.bag,
        &label(hospital),
        t(1),
    ));
    assert!(
        refusal
            .error
            .to_string()
            .contains("WRONG FACILITY for step store. The label was issued by facility A9991"),
        "{}",
        refusal.error
    );
    let foreign = UnitCode::new(
        Din::new(fin(FOREIGN_FIN), 26, 1).unwrap(),
        product("S1234100"),
    );
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Store,
        f.bag,
        &label(foreign),
        t(1),
    ));
    assert!(
        matches!(refusal.error, CustodyError::UnknownFacility { .. }),
        "{}",
        refusal.error
    );
}

#[test]
fn passes_the_codec_position_and_rule_for_malformed_codes() {
    let f = fixture();
    let good = label(f.bag);
    // Lowercase, wrong flags (the check value), truncated, garbage and empty.
    for bad in [
        good.to_lowercase(),
        good.replacen(
            &f.bag.din().to_string(),
            &f.bag.din().to_string().replace('A', "B"),
            1,
        ),
        good[..10].to_string(),
        "hello".to_string(),
        String::new(),
    ] {
        let refusal = refused(scan(&f.state, CustodyStep::Store, f.bag, &bad, t(1)));
        assert!(
            matches!(refusal.error, CustodyError::Unreadable { .. }),
            "{bad:?}: {}",
            refusal.error
        );
        assert!(matches!(
            &refusal.event,
            Event::ScanRefused {
                scanned_code: None,
                ..
            }
        ));
    }
    let refusal = refused(scan(
        &f.state,
        CustodyStep::Store,
        f.bag,
        &good.to_lowercase(),
        t(1),
    ));
    assert!(
        refusal.error.to_string().contains("position"),
        "{}",
        refusal.error
    );
    // A DIN alone is not enough: several containers share a DIN.
    let din_only = f
        .bag
        .din()
        .with_flags(cellops_isbt::Flags::CHECK_VALUE)
        .to_string();
    let refusal = refused(scan(&f.state, CustodyStep::Store, f.bag, &din_only, t(1)));
    assert!(
        refusal.error.to_string().contains("holds no product code"),
        "{}",
        refusal.error
    );
}
