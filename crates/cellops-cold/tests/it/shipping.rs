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
            limits: ExcursionLimits::CRYO_DEFAULT,
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

#[test]
fn an_excursion_blocks_the_units_until_qa_signs_an_assessment() {
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
    let e = decide_logger_upload(
        &w.cold,
        &shipment,
        &trace,
        "ab12",
        "generic",
        &user("nurse"),
        t(14.0),
    )
    .unwrap();
    w.apply(&e);
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
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "excursion_unassessed"
    );
    // The assessment alone does not unblock: it must be e-signed.
    let seq = w.apply(
        &decide_assess(
            &w.cold,
            &ex,
            AssessmentDecision::Accept,
            "45 min above −150 °C, max −125 °C; within stability data",
            &user("qa"),
            t(15.0),
        )
        .unwrap(),
    );
    assert!(check_usable(&w.cold, &units[0]).is_err());
    assert!(!w.cold.sign_assessment(seq + 100, user("qa"), t(15.1)));
    assert!(w.cold.sign_assessment(seq, user("qa"), t(15.1)));
    check_usable(&w.cold, &units[0]).unwrap();
    assert_eq!(
        decide_assess(
            &w.cold,
            &ex,
            AssessmentDecision::Reject,
            "second thoughts",
            &user("qa"),
            t(16.0)
        )
        .unwrap_err()
        .reason_code(),
        "already_assessed"
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
    w.apply(
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
    w.cold.sign_assessment(seq, user("qa"), t(3.1));
    assert_eq!(
        check_usable(&w.cold, &units[0]).unwrap_err().reason_code(),
        "excursion_rejected"
    );
}
