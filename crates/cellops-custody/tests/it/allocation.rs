//! DIN allocation: next number per (FIN, year), never reused, only for the site's own FIN.

use crate::common::*;
use cellops_custody::*;
use cellops_isbt::{DIN_SEQUENCE_MAX, Din};

fn command(
    site_name: &str,
    fin_text: &str,
    count: u32,
    at: cellops_domain::Timestamp,
) -> AllocateDins {
    AllocateDins {
        site: site(site_name),
        fin: fin(fin_text),
        count,
        by: user("admin"),
        at,
    }
}

#[test]
fn allocates_consecutive_numbers_per_facility_and_year() {
    let mut state = network();
    let events = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 3, t(0))).unwrap();
    apply_all(&mut state, &events);
    let dins: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::DinAllocated { din, .. } => din.to_string(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(dins, ["A999226000001", "A999226000002", "A999226000003"]);
    let next = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 1, t(1))).unwrap();
    assert!(matches!(&next[0], Event::DinAllocated { sequence: 4, .. }));
    // A new year starts again at 1; the other facility has its own sequence.
    let next_year = t(24 * 366);
    assert_eq!(nominal_year_of(next_year), 27);
    let events =
        decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 1, next_year)).unwrap();
    assert!(matches!(
        &events[0],
        Event::DinAllocated {
            sequence: 1,
            nominal_year: 27,
            ..
        }
    ));
    let events =
        decide_allocate_dins(&state, &command("hospital-a", HOSPITAL_FIN, 1, t(0))).unwrap();
    assert!(matches!(
        &events[0],
        Event::DinAllocated { sequence: 1, .. }
    ));
    assert_eq!(state.allocator().allocated_count(), 3);
}

#[test]
fn refuses_another_fin_an_unknown_site_and_bad_counts() {
    let state = network();
    let err =
        decide_allocate_dins(&state, &command("cpc-kyoto", HOSPITAL_FIN, 1, t(0))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "site cpc-kyoto may allocate DINs only for its own facility number A9992, not A9991 (rule: DINs are allocated by the facility that labels the unit)"
    );
    let err = decide_allocate_dins(&state, &command("elsewhere", CPC_FIN, 1, t(0))).unwrap_err();
    assert!(matches!(err, CustodyError::SiteNotConfigured { .. }));
    for count in [0, ALLOCATION_COUNT_MAX + 1] {
        let err =
            decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, count, t(0))).unwrap_err();
        assert!(matches!(err, CustodyError::AllocationCount { .. }), "{err}");
    }
}

#[test]
fn refuses_sequence_overflow_and_allocates_nothing() {
    let mut state = network();
    let near_end = Din::new(fin(CPC_FIN), 26, DIN_SEQUENCE_MAX - 1).unwrap();
    apply_all(
        &mut state,
        &[Event::DinAllocated {
            din: near_end,
            fin: fin(CPC_FIN),
            nominal_year: 26,
            sequence: DIN_SEQUENCE_MAX - 1,
            site: site("cpc-kyoto"),
            by: user("admin"),
            at: t(0),
        }],
    );
    let err = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 2, t(1))).unwrap_err();
    assert!(
        err.to_string()
            .contains("no DIN sequence numbers left for facility A9992 in year 26"),
        "{err}"
    );
    let last = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 1, t(1))).unwrap();
    apply_all(&mut state, &last);
    assert!(matches!(
        &last[0],
        Event::DinAllocated {
            sequence: DIN_SEQUENCE_MAX,
            ..
        }
    ));
    let err = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 1, t(2))).unwrap_err();
    assert!(matches!(err, CustodyError::DinSequenceExhausted { .. }));
}

#[test]
fn a_replayed_allocation_is_caught_by_the_invariants() {
    let mut state = network();
    let events = decide_allocate_dins(&state, &command("cpc-kyoto", CPC_FIN, 1, t(0))).unwrap();
    state.apply(&events[0]);
    state.check_invariants().unwrap();
    state.apply(&events[0]);
    let err = state.check_invariants().unwrap_err();
    assert!(err.contains("allocated more than once"), "{err}");
}

#[test]
fn units_need_allocated_dins_of_the_network() {
    let state = network();
    let code = UnitCode::new(Din::new(fin(CPC_FIN), 26, 5).unwrap(), product("S1234100"));
    let create = |code| CreateUnit {
        code,
        patient: None,
        expires_at: t(48),
        site: site("cpc-kyoto"),
        location: loc("cpc-kyoto/collection"),
        by: user("collector-1"),
        at: t(0),
    };
    let err = decide_create_unit(&state, &create(code)).unwrap_err();
    assert!(matches!(err, CustodyError::DinNotAllocated { .. }), "{err}");
    let foreign = UnitCode::new(
        Din::new(fin(FOREIGN_FIN), 26, 5).unwrap(),
        product("S1234100"),
    );
    let err = decide_create_unit(&state, &create(foreign)).unwrap_err();
    assert!(
        err.to_string()
            .contains("A9999 is not one of this network's facilities"),
        "{err}"
    );
}
