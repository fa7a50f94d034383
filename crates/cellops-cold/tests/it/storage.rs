use crate::common::*;
use cellops_cold::*;

#[test]
fn positions_parse_and_print_the_same() {
    let p = pos("dewar-01/R2/B1/P4");
    assert_eq!(p.to_string(), "dewar-01/R2/B1/P4");
    for bad in [
        "dewar-01/R2/B1",
        "dewar-01/R0/B1/P1",
        "dewar 1/R1/B1/P1",
        "dewar-01/2/B1/P1",
    ] {
        assert!(Position::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn put_away_refuses_wrong_occupied_and_missing_positions() {
    let mut w = World::new();
    let units = w.units(&[days(100.0), days(100.0)]);
    let cmd = |scanned: &str, expected: Option<&str>, unit| PutAway {
        unit,
        scanned_position: scanned.to_string(),
        expected_position: expected.map(pos),
        patient: None,
        expires_at: days(100.0),
        site: site(),
        by: user("op"),
        at: t(2.0),
    };
    let suggested = suggest_position(&w.cold, &storage_id()).unwrap();
    assert_eq!(suggested.to_string(), "dewar-01/R1/B1/P1");
    // Scanning another position than the assigned one is refused, with the refusal to record.
    let r = decide_put_away(
        &w.cold,
        &cmd("dewar-01/R1/B1/P2", Some("dewar-01/R1/B1/P1"), units[0]),
    )
    .unwrap_err();
    assert_eq!(r.error.reason_code(), "wrong_position");
    assert!(
        r.error.to_string().contains("dewar-01/R1/B1/P1"),
        "{}",
        r.error
    );
    assert!(matches!(r.event, ColdEvent::StorageScanRefused { .. }));
    // A position outside the dewar's shape.
    let r = decide_put_away(&w.cold, &cmd("dewar-01/R3/B1/P1", None, units[0])).unwrap_err();
    assert_eq!(r.error.reason_code(), "no_such_position");
    let e = decide_put_away(
        &w.cold,
        &cmd("dewar-01/R1/B1/P1", Some("dewar-01/R1/B1/P1"), units[0]),
    )
    .unwrap();
    w.apply(&e);
    let r = decide_put_away(&w.cold, &cmd("dewar-01/R1/B1/P1", None, units[1])).unwrap_err();
    assert_eq!(r.error.reason_code(), "position_occupied");
    let r = decide_put_away(&w.cold, &cmd("dewar-01/R1/B1/P2", None, units[0])).unwrap_err();
    assert_eq!(r.error.reason_code(), "already_stored");
    assert_eq!(
        suggest_position(&w.cold, &storage_id())
            .unwrap()
            .to_string(),
        "dewar-01/R1/B1/P2"
    );
}

#[test]
fn retrieval_needs_the_right_position_and_follows_first_expiry_first_out() {
    let mut w = World::new();
    let units = w.units(&[days(200.0), days(100.0)]);
    w.put_away(units[0], "dewar-01/R1/B1/P1", days(200.0), t(2.0));
    w.put_away(units[1], "dewar-01/R1/B1/P2", days(100.0), t(2.0));
    let r = w
        .retrieve(
            units[0],
            "dewar-01/R1/B1/P2",
            RetrievePurpose::Use,
            days(1.0),
        )
        .unwrap_err();
    assert_eq!(r.error.reason_code(), "unit_not_at_position");
    // The later-expiring unit is refused while an earlier one is issuable.
    let r = w
        .retrieve(
            units[0],
            "dewar-01/R1/B1/P1",
            RetrievePurpose::Use,
            days(1.0),
        )
        .unwrap_err();
    assert_eq!(r.error.reason_code(), "fefo_violation");
    assert!(
        r.error.to_string().contains("dewar-01/R1/B1/P2"),
        "{}",
        r.error
    );
    // A transfer is no use: no FEFO check.
    w.retrieve(
        units[0],
        "dewar-01/R1/B1/P1",
        RetrievePurpose::Transfer,
        days(1.0),
    )
    .unwrap();
    // An override with a reason is allowed and recorded.
    let e = decide_retrieve(
        &w.cold,
        &Retrieve {
            unit: units[0],
            scanned_position: "dewar-01/R1/B1/P1".into(),
            purpose: RetrievePurpose::Use,
            fefo_override: Some("physician asked for the unit with the higher count".into()),
            site: site(),
            by: user("op"),
            at: days(1.0),
        },
    )
    .unwrap();
    assert!(matches!(
        &e,
        ColdEvent::Retrieved {
            fefo_override: Some(_),
            ..
        }
    ));
    let e = w
        .retrieve(
            units[1],
            "dewar-01/R1/B1/P2",
            RetrievePurpose::Use,
            days(1.0),
        )
        .unwrap();
    w.apply(&e);
    assert!(w.cold.stored(&units[1]).is_none());
    // Once the first-expiring unit is gone, the other is next.
    w.retrieve(
        units[0],
        "dewar-01/R1/B1/P1",
        RetrievePurpose::Use,
        days(1.0),
    )
    .unwrap();
}

#[test]
fn expired_units_and_units_past_the_storage_limit_are_only_discarded() {
    let mut w = World::new();
    let units = w.units(&[days(30.0), days(1000.0)]);
    w.put_away(units[0], "dewar-01/R1/B1/P1", days(30.0), t(2.0));
    w.put_away(units[1], "dewar-01/R1/B1/P2", days(1000.0), t(2.0));
    let r = w
        .retrieve(
            units[0],
            "dewar-01/R1/B1/P1",
            RetrievePurpose::Use,
            days(31.0),
        )
        .unwrap_err();
    assert_eq!(r.error.reason_code(), "expired");
    w.retrieve(
        units[0],
        "dewar-01/R1/B1/P1",
        RetrievePurpose::Discard,
        days(31.0),
    )
    .unwrap();
    // The dewar's validated storage time is 365 days.
    let r = w
        .retrieve(
            units[1],
            "dewar-01/R1/B1/P2",
            RetrievePurpose::Ship,
            days(366.0),
        )
        .unwrap_err();
    assert_eq!(r.error.reason_code(), "storage_limit_exceeded");
    let review = storage_review(&w.cold, days(340.0), 30);
    assert_eq!(review.len(), 2);
    assert_eq!(review[0].1, ReviewReason::Expired);
    assert_eq!(review[1].1, ReviewReason::StorageLimitSoon);
}

fn reading(minutes: f64, c: f64) -> Reading {
    Reading {
        at: t(minutes / 60.0),
        temperature_c: c,
    }
}

#[test]
fn a_sustained_warm_probe_raises_an_alarm_and_leaves_an_excursion_on_stored_units() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    w.put_away(units[0], "dewar-01/R1/B1/P1", days(100.0), t(0.5));
    // A short spike (5 min, lid open) is under the 10-minute delay: no alarm.
    let events = decide_readings(
        &w.cold,
        &storage_id(),
        &[
            reading(60.0, -180.0),
            reading(65.0, -140.0),
            reading(70.0, -180.0),
        ],
    )
    .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    w.apply_all(&events);
    // Sustained: alarm after 10 minutes above −150 °C.
    let events = decide_readings(
        &w.cold,
        &storage_id(),
        &[
            reading(75.0, -145.0),
            reading(80.0, -140.0),
            reading(85.0, -135.0),
        ],
    )
    .unwrap();
    assert!(matches!(
        events.last(),
        Some(ColdEvent::AlarmRaised {
            kind: AlarmKind::HighTemperature,
            ..
        })
    ));
    w.apply_all(&events);
    // Put-away into a dewar in alarm is refused; so is use of what is inside.
    let more = w.units(&[days(100.0)]);
    let r = decide_put_away(
        &w.cold,
        &PutAway {
            unit: more[0],
            scanned_position: "dewar-01/R1/B1/P2".into(),
            expected_position: None,
            patient: None,
            expires_at: days(100.0),
            site: site(),
            by: user("op"),
            at: t(1.5),
        },
    )
    .unwrap_err();
    assert_eq!(r.error.reason_code(), "storage_in_alarm");
    assert!(decide_acknowledge(&w.cold, &storage_id(), " ", &user("op"), t(1.5)).is_err());
    w.apply(
        &decide_acknowledge(&w.cold, &storage_id(), "topped up LN2", &user("op"), t(1.5)).unwrap(),
    );
    // Back in range: cleared, and an excursion on the stored unit.
    let events = decide_readings(&w.cold, &storage_id(), &[reading(95.0, -170.0)]).unwrap();
    w.apply_all(&events);
    assert!(w.cold.storage(&storage_id()).unwrap().alarm.is_none());
    let blocked = check_usable(&w.cold, &units[0]).unwrap_err();
    assert_eq!(blocked.reason_code(), "excursion_unassessed");
    let ex = w.cold.unassessed_excursions(&units[0]);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].as_str(), "dewar-01.1");
    let episode = &w.cold.excursion(ex[0]).unwrap().episode;
    assert_eq!(episode.temperature_c_max, Some(-135.0));
    // Duplicate or older readings are refused.
    assert!(decide_readings(&w.cold, &storage_id(), &[reading(95.0, -170.0)]).is_err());
}

#[test]
fn a_silent_probe_is_a_no_data_alarm_and_a_data_gap_excursion() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    w.put_away(units[0], "dewar-01/R1/B1/P1", days(100.0), t(0.5));
    w.apply_all(&decide_readings(&w.cold, &storage_id(), &[reading(60.0, -180.0)]).unwrap());
    let events = decide_readings(&w.cold, &storage_id(), &[reading(180.0, -180.0)]).unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        ColdEvent::AlarmRaised {
            kind: AlarmKind::NoData,
            ..
        }
    )));
    w.apply_all(&events);
    let (_, ex) = w.cold.excursions_of(&units[0])[0];
    assert_eq!(ex.episode.kind, ExcursionKind::DataGap);
}
