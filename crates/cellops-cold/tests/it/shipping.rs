use crate::common::*;
use cellops_cold::*;
use cellops_domain::SiteId;

fn hosp() -> SiteId {
    SiteId::parse("hosp").unwrap()
}

/// A qualified shipper charged at `charged_h`, and a calibrated logger.
fn equip(w: &mut World, charged_h: f64) {
    let shipper = ShipperId::parse("ds-01").unwrap();
    w.apply(
        &decide_qualify_shipper(
            &shipper,
            "CX100",
            "QR-2026-07",
            days(180.0),
            240.0,
            &site(),
            &user("admin"),
            t(0.0),
        )
        .unwrap(),
    );
    w.apply(&decide_charge_shipper(&w.cold, &shipper, &user("op"), t(charged_h)).unwrap());
    w.apply(
        &decide_register_logger(
            &LoggerId::parse("LG-0001").unwrap(),
            "CAL-77",
            days(90.0),
            300,
            &user("admin"),
            t(0.0),
        )
        .unwrap(),
    );
}

fn pack(
    w: &World,
    units: &[cellops_custody::UnitCode],
    transit_hours: f64,
    at: f64,
) -> Result<ColdEvent, ColdError> {
    pack_with(w, units, transit_hours, at, ExcursionLimits::CRYO_DEFAULT)
}

fn pack_with(
    w: &World,
    units: &[cellops_custody::UnitCode],
    transit_hours: f64,
    at: f64,
    limits: ExcursionLimits,
) -> Result<ColdEvent, ColdError> {
    decide_pack(
        &w.cold,
        &PackShipment {
            shipment: ShipmentId::parse("shp-1").unwrap(),
            units: units.to_vec(),
            shipper: ShipperId::parse("ds-01").unwrap(),
            logger: LoggerId::parse("LG-0001").unwrap(),
            from_site: site(),
            to_site: hosp(),
            transit_hours,
            margin_hours: 24.0,
            limits,
            by: user("op"),
            at: t(at),
        },
    )
}

#[test]
fn a_shipment_is_planned_only_with_enough_hold_and_valid_qualifications() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    // 240 h hold charged at 0: at 100 h there are 140 h left; 120 + 24 does not fit.
    let err = pack(&w, &units, 120.0, 100.0).unwrap_err();
    assert_eq!(err.reason_code(), "hold_too_short");
    // Qualification expires at day 180: a shipment arriving after it is refused.
    let err = pack(&w, &units, 48.0, 24.0 * 179.0).unwrap_err();
    assert!(
        matches!(
            err,
            ColdError::ShipperQualificationExpired { .. } | ColdError::HoldTooShort { .. }
        ),
        "{err}"
    );
    // A stored unit must be retrieved first.
    w.put_away(units[0], "dewar-01/R1/B1/P1", days(100.0), t(1.0));
    assert_eq!(
        pack(&w, &units, 48.0, 2.0).unwrap_err().reason_code(),
        "still_stored"
    );
    let e = w
        .retrieve(units[0], "dewar-01/R1/B1/P1", RetrievePurpose::Ship, t(2.0))
        .unwrap();
    w.apply(&e);
    let e = pack(&w, &units, 48.0, 2.0).unwrap();
    w.apply(&e);
    // The charge is used: the shipper cannot go out again before a recharge.
    let other = w.units(&[days(100.0)]);
    let second = decide_pack(
        &w.cold,
        &PackShipment {
            shipment: ShipmentId::parse("shp-2").unwrap(),
            units: other,
            shipper: ShipperId::parse("ds-01").unwrap(),
            logger: LoggerId::parse("LG-0001").unwrap(),
            from_site: site(),
            to_site: hosp(),
            transit_hours: 24.0,
            margin_hours: 24.0,
            limits: ExcursionLimits::CRYO_DEFAULT,
            by: user("op"),
            at: t(3.0),
        },
    )
    .unwrap_err();
    assert_eq!(second.reason_code(), "shipper_charge_used");
}

/// QA's e-signature over the assessment in record `seq` (as the server's projection does
/// when it reads the `esig.signed` record `seq + 1`).
fn sign(w: &mut World, seq: u64, at: f64) {
    assert!(w.cold.sign_assessment(seq, seq + 1, user("qa"), t(at)));
}

#[test]
fn an_excursion_opens_a_deviation_that_blocks_the_units_until_qa_closes_it() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    w.apply(&pack(&w, &units, 12.0, 1.0).unwrap());
    let shipment = ShipmentId::parse("shp-1").unwrap();
    assert!(
        check_usable(&w.cold, &units[0]).is_ok(),
        "packed, not dispatched"
    );
    w.apply(&decide_dispatch(&w.cold, &shipment, &user("op"), t(1.0)).unwrap());
    // Dispatched without logger data: blocked (incomplete data).
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "logger_data_missing"
    );
    let condition = ShipmentCondition {
        acceptable: true,
        temperature_c: Some(-160.0),
        note: String::new(),
    };
    assert_eq!(
        decide_receive(
            &w.cold,
            &shipment,
            &site(),
            &condition,
            &user("nurse"),
            t(13.0)
        )
        .unwrap_err()
        .reason_code(),
        "wrong_destination"
    );
    w.apply(
        &decide_receive(
            &w.cold,
            &shipment,
            &hosp(),
            &condition,
            &user("nurse"),
            t(13.0),
        )
        .unwrap(),
    );
    let csv = demo::excursion_logger_csv(t(1.0));
    let trace = import_csv(&csv, &LoggerFormat::Generic(GenericCsv::default())).unwrap();
    let events = decide_logger_upload(
        &w.cold,
        &shipment,
        &trace,
        "ab12",
        "generic",
        &user("nurse"),
        t(14.0),
    )
    .unwrap();
    // The upload and one deviation per excursion, recorded together.
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(&events[1], ColdEvent::DeviationOpened { excursion, .. } if excursion.as_str() == "shp-1.1")
    );
    w.apply_all(&events);
    assert!(
        decide_logger_upload(
            &w.cold,
            &shipment,
            &trace,
            "ab12",
            "generic",
            &user("nurse"),
            t(14.0)
        )
        .is_err()
    );
    let blocked = w.cold.unassessed_excursions(&units[0]);
    assert_eq!(blocked.len(), 1);
    let ex = blocked[0].clone();
    let deviation = &w.cold.excursion(&ex).unwrap().deviation;
    assert_eq!(deviation.state, DeviationState::Open);
    assert_eq!(deviation.opened_at, Some(t(14.0)));
    let err = check_usable(&w.cold, &units[0]).unwrap_err();
    assert_eq!(err.reason_code(), "excursion_unassessed");
    assert!(err.to_string().contains("deviation open"), "{err}");
    let assess = |w: &World, decision, at| {
        decide_assess(
            &w.cold,
            &ex,
            decision,
            "45 min above −150 °C, max −125 °C; within stability data",
            &user("qa"),
            t(at),
        )
    };
    // investigate → assess → close, in that order.
    assert_eq!(
        assess(&w, AssessmentDecision::Accept, 14.5)
            .unwrap_err()
            .reason_code(),
        "deviation_state"
    );
    assert_eq!(
        decide_close(&w.cold, &ex, &user("qa"), t(14.5))
            .unwrap_err()
            .reason_code(),
        "deviation_state"
    );
    assert_eq!(
        decide_investigate(&w.cold, &ex, "  ", &user("qa"), t(14.6))
            .unwrap_err()
            .reason_code(),
        "reason"
    );
    w.apply(
        &decide_investigate(
            &w.cold,
            &ex,
            "shipper tipped over at hour 6 (courier report); logger inside the canister",
            &user("qa"),
            t(14.6),
        )
        .unwrap(),
    );
    assert_eq!(
        w.cold.excursion(&ex).unwrap().deviation.state,
        DeviationState::Investigating
    );
    assert!(check_usable(&w.cold, &units[0]).is_err());
    let seq = w.apply(&assess(&w, AssessmentDecision::Accept, 15.0).unwrap());
    assert_eq!(
        w.cold.excursion(&ex).unwrap().deviation.state,
        DeviationState::Assessed
    );
    // Neither the assessment nor its signature alone unblocks: the deviation must close.
    assert!(check_usable(&w.cold, &units[0]).is_err());
    assert_eq!(
        decide_close(&w.cold, &ex, &user("qa"), t(15.05))
            .unwrap_err()
            .reason_code(),
        "assessment_unsigned"
    );
    assert!(
        !w.cold
            .sign_assessment(seq + 100, seq + 101, user("qa"), t(15.1))
    );
    sign(&mut w, seq, 15.1);
    assert!(check_usable(&w.cold, &units[0]).is_err());
    let closed = decide_close(&w.cold, &ex, &user("qa"), t(15.2)).unwrap();
    assert!(matches!(
        &closed,
        ColdEvent::DeviationClosed { decision: AssessmentDecision::Accept, assessment_seq, signature_seq, .. }
            if *assessment_seq == seq && *signature_seq == seq + 1
    ));
    w.apply(&closed);
    check_usable(&w.cold, &units[0]).unwrap();
    assert!(w.cold.unassessed_excursions(&units[0]).is_empty());
    assert_eq!(
        assess(&w, AssessmentDecision::Reject, 16.0)
            .unwrap_err()
            .reason_code(),
        "already_assessed"
    );
    assert_eq!(
        decide_close(&w.cold, &ex, &user("qa"), t(16.0))
            .unwrap_err()
            .reason_code(),
        "deviation_state"
    );
}

#[test]
fn an_excursion_above_the_reject_limit_can_only_be_rejected() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    w.apply(&pack(&w, &units, 12.0, 1.0).unwrap());
    let shipment = ShipmentId::parse("shp-1").unwrap();
    w.apply(&decide_dispatch(&w.cold, &shipment, &user("op"), t(1.0)).unwrap());
    let csv = "timestamp,temperature_c\n2026-03-01T01:00:00Z,-180\n2026-03-01T01:05:00Z,-100\n2026-03-01T01:10:00Z,-180\n";
    let trace = import_csv(csv, &LoggerFormat::Generic(GenericCsv::default())).unwrap();
    w.apply_all(
        &decide_logger_upload(
            &w.cold,
            &shipment,
            &trace,
            "cd34",
            "generic",
            &user("op"),
            t(2.0),
        )
        .unwrap(),
    );
    let ex = w.cold.unassessed_excursions(&units[0])[0].clone();
    w.apply(&decide_investigate(&w.cold, &ex, "logger reviewed", &user("qa"), t(2.5)).unwrap());
    let err = decide_assess(
        &w.cold,
        &ex,
        AssessmentDecision::Accept,
        "fine",
        &user("qa"),
        t(3.0),
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), "reject_limit_exceeded");
    let seq = w.apply(
        &decide_assess(
            &w.cold,
            &ex,
            AssessmentDecision::Reject,
            "−100 °C",
            &user("qa"),
            t(3.0),
        )
        .unwrap(),
    );
    sign(&mut w, seq, 3.1);
    w.apply(&decide_close(&w.cold, &ex, &user("qa"), t(3.2)).unwrap());
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "excursion_rejected"
    );
}

/// Packs with `limits`, dispatches at 1 h; returns the shipment id.
fn dispatched(
    w: &mut World,
    units: &[cellops_custody::UnitCode],
    limits: ExcursionLimits,
) -> ShipmentId {
    w.apply(&pack_with(w, units, 12.0, 1.0, limits).unwrap());
    let shipment = ShipmentId::parse("shp-1").unwrap();
    w.apply(&decide_dispatch(&w.cold, &shipment, &user("op"), t(1.0)).unwrap());
    shipment
}

/// A logger trace every `step_min` minutes from `from_h` to `to_h` hours at −180 °C,
/// skipping the minutes in `hole` (from, to).
fn trace(from_h: f64, to_h: f64, step_min: f64, hole: (f64, f64)) -> ImportedTrace {
    let mut samples = Vec::new();
    let mut m = from_h * 60.0;
    while m <= to_h * 60.0 {
        if !(hole.0 < m && m < hole.1) {
            samples.push(Reading {
                at: t(m / 60.0),
                temperature_c: -180.0,
            });
        }
        m += step_min;
    }
    ImportedTrace {
        serial: None,
        samples,
        warnings: Vec::new(),
    }
}

#[test]
fn a_gap_longer_than_the_configured_maximum_is_a_finding_that_blocks_until_closed() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    // The logger samples every 5 min; a 15-minute maximum is configured.
    let limits = ExcursionLimits {
        gap_minutes_max: Some(15),
        ..ExcursionLimits::CRYO_DEFAULT
    };
    // A maximum shorter than the logger's interval is refused at packing.
    let err = pack_with(
        &w,
        &units,
        12.0,
        1.0,
        ExcursionLimits {
            gap_minutes_max: Some(4),
            ..ExcursionLimits::CRYO_DEFAULT
        },
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), "invalid_number");
    assert!(err.to_string().contains("gap_minutes_max"), "{err}");
    let shipment = dispatched(&mut w, &units, limits);
    // A 15-minute hole (steps of 20 min between samples at 180 and 200) and every
    // temperature in range: not a pass.
    let t1 = trace(1.0, 13.0, 5.0, (180.0, 200.0));
    let events = decide_logger_upload(
        &w.cold,
        &shipment,
        &t1,
        "ef56",
        "generic",
        &user("op"),
        t(13.5),
    )
    .unwrap();
    let ColdEvent::LoggerUploaded { excursions, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(excursions.len(), 1, "{excursions:?}");
    assert_eq!(excursions[0].kind, ExcursionKind::DataGap);
    assert_eq!(excursions[0].start, t(3.0));
    assert_eq!(excursions[0].end, t(200.0 / 60.0));
    assert_eq!(events.len(), 2, "the gap opened its deviation");
    w.apply_all(&events);
    let err = check_usable(&w.cold, &units[0]).unwrap_err();
    assert_eq!(err.reason_code(), "excursion_unassessed");
    // A 12-minute step is within the configured 15 minutes (the default, two 5-min
    // intervals, calls it a gap).
    let t2 = trace(1.0, 13.0, 12.0, (0.0, 0.0));
    let ten = detect_excursions(
        &t2.samples,
        &limits,
        300,
        (Some(t(1.0)), Some(t(13.0))),
        "x",
        1,
    );
    assert!(ten.is_empty(), "{ten:?}");
    let default = detect_excursions(
        &t2.samples,
        &ExcursionLimits::CRYO_DEFAULT,
        300,
        (None, None),
        "x",
        1,
    );
    assert_eq!(
        default.len(),
        t2.samples.len() - 1,
        "every step is a gap by default"
    );
    assert!(default.iter().all(|e| e.kind == ExcursionKind::DataGap));
}

#[test]
fn data_ending_long_before_receipt_is_a_gap() {
    // Uploaded after receipt: the upload finds the missing end itself.
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    let shipment = dispatched(&mut w, &units, ExcursionLimits::CRYO_DEFAULT);
    let condition = ShipmentCondition {
        acceptable: true,
        temperature_c: None,
        note: String::new(),
    };
    w.apply(
        &decide_receive(
            &w.cold,
            &shipment,
            &hosp(),
            &condition,
            &user("nurse"),
            t(13.0),
        )
        .unwrap(),
    );
    assert!(
        decide_receipt_gap(&w.cold, &shipment, t(13.0)).is_empty(),
        "no data yet"
    );
    // The logger stopped at hour 7 of a 12-hour transit.
    let stopped = trace(1.0, 7.0, 5.0, (0.0, 0.0));
    let events = decide_logger_upload(
        &w.cold,
        &shipment,
        &stopped,
        "aa",
        "generic",
        &user("nurse"),
        t(14.0),
    )
    .unwrap();
    w.apply_all(&events);
    let ex = w.cold.unassessed_excursions(&units[0]);
    assert_eq!(ex.len(), 1);
    let e = w.cold.excursion(ex[0]).unwrap();
    assert_eq!(e.episode.kind, ExcursionKind::DataGap);
    assert_eq!((e.episode.start, e.episode.end), (t(7.0), t(13.0)));

    // Uploaded in transit, received later: the receipt records the gap.
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    let shipment = dispatched(&mut w, &units, ExcursionLimits::CRYO_DEFAULT);
    let events = decide_logger_upload(
        &w.cold,
        &shipment,
        &stopped,
        "bb",
        "generic",
        &user("op"),
        t(7.0),
    )
    .unwrap();
    assert_eq!(events.len(), 1, "no finding up to the upload: {events:?}");
    w.apply_all(&events);
    check_usable(&w.cold, &units[0]).unwrap();
    assert!(
        decide_receipt_gap(&w.cold, &shipment, t(7.05)).is_empty(),
        "within two intervals"
    );
    let gap = decide_receipt_gap(&w.cold, &shipment, t(13.0));
    assert_eq!(gap.len(), 2, "{gap:?}");
    assert!(matches!(&gap[0], ColdEvent::ExcursionOpened { episode, .. }
        if episode.kind == ExcursionKind::DataGap && episode.excursion.as_str() == "shp-1.1"));
    assert!(matches!(&gap[1], ColdEvent::DeviationOpened { .. }));
    w.apply(
        &decide_receive(
            &w.cold,
            &shipment,
            &hosp(),
            &condition,
            &user("nurse"),
            t(13.0),
        )
        .unwrap(),
    );
    w.apply_all(&gap);
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "excursion_unassessed"
    );
}

#[test]
fn the_watchdog_flags_shipments_whose_temperature_is_not_known() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    w.apply(&pack(&w, &units, 12.0, 1.0).unwrap());
    let shipment = ShipmentId::parse("shp-1").unwrap();
    // Packed, not dispatched: nothing to watch.
    assert!(logger_watchdog(&w.cold, t(5.0), 15).is_empty());
    w.apply(&decide_dispatch(&w.cold, &shipment, &user("op"), t(1.0)).unwrap());
    assert!(
        logger_watchdog(&w.cold, t(1.2), 15).is_empty(),
        "12 min since dispatch"
    );
    let flagged = logger_watchdog(&w.cold, t(1.5), 15);
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].reason, SilenceReason::NoDataSinceDispatch);
    assert_eq!(flagged[0].known_until, t(1.0));
    assert!((flagged[0].silent_minutes - 30.0).abs() < 1e-9);
    assert!(!flagged[0].overdue);
    assert!(
        logger_watchdog(&w.cold, t(14.0), 15)[0].overdue,
        "past the planned arrival"
    );
    // Data up to 5 h: known until then; flagged again once it is 15 min old.
    let events = decide_logger_upload(
        &w.cold,
        &shipment,
        &trace(1.0, 5.0, 5.0, (0.0, 0.0)),
        "cc",
        "generic",
        &user("op"),
        t(5.1),
    )
    .unwrap();
    w.apply_all(&events);
    assert!(logger_watchdog(&w.cold, t(5.2), 15).is_empty());
    let flagged = logger_watchdog(&w.cold, t(6.0), 15);
    assert_eq!(flagged[0].reason, SilenceReason::DataEnded);
    assert_eq!(flagged[0].known_until, t(5.0));
    // Received: the receipt's own gap finding takes over; the watchdog is done with it.
    let condition = ShipmentCondition {
        acceptable: true,
        temperature_c: None,
        note: String::new(),
    };
    w.apply(
        &decide_receive(
            &w.cold,
            &shipment,
            &hosp(),
            &condition,
            &user("nurse"),
            t(13.0),
        )
        .unwrap(),
    );
    assert!(logger_watchdog(&w.cold, t(20.0), 15).is_empty());
}

#[test]
fn the_watchdog_keeps_a_received_shipment_without_data() {
    let mut w = World::new();
    let units = w.units(&[days(100.0)]);
    equip(&mut w, 0.0);
    let shipment = dispatched(&mut w, &units, ExcursionLimits::CRYO_DEFAULT);
    let condition = ShipmentCondition {
        acceptable: true,
        temperature_c: None,
        note: String::new(),
    };
    w.apply(
        &decide_receive(
            &w.cold,
            &shipment,
            &hosp(),
            &condition,
            &user("nurse"),
            t(13.0),
        )
        .unwrap(),
    );
    let flagged = logger_watchdog(&w.cold, t(13.0), 10_000);
    assert_eq!(flagged.len(), 1, "whatever the silence allowed");
    assert_eq!(flagged[0].reason, SilenceReason::ReceivedWithoutData);
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "logger_data_missing"
    );
}
