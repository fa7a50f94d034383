//! Whole flows: autologous CAR-T from apheresis to infusion, and an allogeneic lot split into
//! 50 doses, infused into several patients, then recalled by lot and by reagent lot.

use crate::common::*;
use cellops_custody::*;

#[test]
fn autologous_flow_from_collection_to_infusion() {
    let mut state = network();
    // Collection at the hospital: leukapheresis, labelled with a hospital DIN.
    let apheresis = collect(
        &mut state,
        "hospital-a",
        HOSPITAL_FIN,
        "S1234100",
        Some("subj-0001"),
        "collector-1",
        t(0),
    );
    // Ship fresh to the CPC.
    hand_off(
        &mut state,
        apheresis,
        "collector-1",
        "courier-1",
        "hospital-a",
        t(1),
    );
    scan_ok(
        &mut state,
        CustodyStep::Ship,
        apheresis,
        "hospital-a",
        "courier-1",
        t(1),
    );
    assert_eq!(
        state.unit(&apheresis).unwrap().status(),
        UnitStatus::InTransit
    );
    hand_off(
        &mut state,
        apheresis,
        "courier-1",
        "operator-1",
        "cpc-kyoto",
        t(6),
    );
    scan_ok(
        &mut state,
        CustodyStep::Receive,
        apheresis,
        "cpc-kyoto",
        "operator-1",
        t(6),
    );
    assert_eq!(state.unit(&apheresis).unwrap().site().as_str(), "cpc-kyoto");

    // Split into two culture parts, with the vector lot; QC sample; formulate both parts.
    let parts = [with_division(apheresis, 0), with_division(apheresis, 1)];
    derive(
        &mut state,
        Derivation::Split,
        &[apheresis],
        &parts,
        &["lv-2026-001"],
        "operator-1",
        t(8),
    );
    assert_eq!(
        state.unit(&apheresis).unwrap().status(),
        UnitStatus::Consumed
    );
    let qc = UnitCode::new(parts[0].din(), product("S9999100"));
    derive(
        &mut state,
        Derivation::Sample,
        &[parts[0]],
        &[qc],
        &[],
        "qc-1",
        t(200),
    );
    assert_eq!(
        state.unit(&parts[0]).unwrap().status(),
        UnitStatus::Available
    );
    let final_bag = UnitCode::new(apheresis.din(), product("S5678100"));
    derive(
        &mut state,
        Derivation::Formulate,
        &parts,
        &[final_bag],
        &[],
        "operator-1",
        t(240),
    );
    assert_eq!(
        state.unit(&final_bag).unwrap().patient(),
        Some(&subject("subj-0001"))
    );

    // Ship back and issue at the hospital.
    hand_off(
        &mut state,
        final_bag,
        "operator-1",
        "courier-2",
        "cpc-kyoto",
        t(300),
    );
    scan_ok(
        &mut state,
        CustodyStep::Ship,
        final_bag,
        "cpc-kyoto",
        "courier-2",
        t(300),
    );
    hand_off(
        &mut state,
        final_bag,
        "courier-2",
        "nurse-1",
        "hospital-a",
        t(310),
    );
    scan_ok(
        &mut state,
        CustodyStep::Receive,
        final_bag,
        "hospital-a",
        "nurse-1",
        t(310),
    );
    scan_ok(
        &mut state,
        CustodyStep::Issue,
        final_bag,
        "hospital-a",
        "nurse-1",
        t(320),
    );

    // Infusion is refused before the bedside check.
    let order = OrderId::parse("order-0001").unwrap();
    let early = decide_infusion(
        &state,
        &RecordInfusion {
            order: order.clone(),
            by: user("nurse-1"),
            at: t(320),
        },
    );
    assert!(matches!(early, Err(CustodyError::NotVerified { .. })));
    infuse(&mut state, "order-0001", "subj-0001", final_bag, t(321));
    assert_eq!(
        state.unit(&final_bag).unwrap().status(),
        UnitStatus::Infused
    );
    assert_eq!(state.infused_unit(&order), Some(final_bag));

    // The trace links the bag back to the apheresis and shows every hand-off.
    let trace = state.trace(&final_bag).unwrap();
    assert_eq!(trace.ancestors, vec![parts[0], parts[1], apheresis]);
    assert!(trace.descendants.is_empty());
    let kinds: Vec<&str> = trace.timeline.iter().map(Event::type_name).collect();
    assert_eq!(
        kinds,
        [
            "unit.derived",
            "custody.handed_off",
            "scan.accepted",
            "custody.handed_off",
            "scan.accepted",
            "scan.accepted",
            "bedside.verified",
            "infusion.recorded"
        ]
    );
    let root_trace = state.trace(&apheresis).unwrap();
    assert_eq!(root_trace.descendants.len(), 4);
    assert!(root_trace.descendants.contains(&qc));

    // Recall from the apheresis or from the vector lot finds the patient; the QC sample is
    // still in circulation (both parts were used up by the formulation).
    let recall = state.recall_by_unit(&apheresis).unwrap();
    assert_eq!(
        recall.patients.into_iter().collect::<Vec<_>>(),
        vec![subject("subj-0001")]
    );
    assert_eq!(recall.in_circulation, vec![qc]);
    let by_lot = state.recall_by_reagent_lot(&ReagentLot::parse("lv-2026-001").unwrap());
    assert_eq!(by_lot.infusions.len(), 1);
    assert_eq!(by_lot.infusions[0].code, final_bag);
    assert!(
        state
            .recall_by_reagent_lot(&ReagentLot::parse("other").unwrap())
            .units
            .is_empty()
    );
}

#[test]
fn allogeneic_lot_split_into_50_doses_recalled_by_lot_and_reagent_lot() {
    let mut state = network();
    let donor = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S4321000",
        None,
        "collector-2",
        t(0),
    );
    let lot = UnitCode::new(donor.din(), product("S4321000"));
    assert_eq!(lot, donor);
    let doses: Vec<UnitCode> = (0..50).map(|i| with_division(lot, i)).collect();
    derive(
        &mut state,
        Derivation::Split,
        &[lot],
        &doses,
        &["cas3-r7", "medium-9"],
        "operator-1",
        t(10),
    );
    // A second, unrelated lot made with another reagent lot.
    let other = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S4321000",
        None,
        "collector-2",
        t(1),
    );
    let other_doses: Vec<UnitCode> = (0..3).map(|i| with_division(other, i)).collect();
    derive(
        &mut state,
        Derivation::Split,
        &[other],
        &other_doses,
        &["medium-9"],
        "operator-1",
        t(11),
    );

    // Five doses go to five patients at the hospital.
    for (i, &dose) in doses.iter().take(5).enumerate() {
        let at = t(100 + i as i64);
        hand_off(&mut state, dose, "operator-1", "courier-1", "cpc-kyoto", at);
        scan_ok(
            &mut state,
            CustodyStep::Ship,
            dose,
            "cpc-kyoto",
            "courier-1",
            at,
        );
        hand_off(
            &mut state,
            dose,
            "courier-1",
            "nurse-1",
            "hospital-a",
            at.plus_us(HOUR_US),
        );
        scan_ok(
            &mut state,
            CustodyStep::Receive,
            dose,
            "hospital-a",
            "nurse-1",
            at.plus_us(HOUR_US),
        );
        infuse(
            &mut state,
            &format!("order-{i}"),
            &format!("subj-{i}"),
            dose,
            at.plus_us(2 * HOUR_US),
        );
    }
    // One dose of the other lot to a sixth patient.
    let d = other_doses[0];
    hand_off(
        &mut state,
        d,
        "operator-1",
        "courier-1",
        "cpc-kyoto",
        t(120),
    );
    scan_ok(
        &mut state,
        CustodyStep::Ship,
        d,
        "cpc-kyoto",
        "courier-1",
        t(120),
    );
    hand_off(&mut state, d, "courier-1", "nurse-1", "hospital-a", t(121));
    scan_ok(
        &mut state,
        CustodyStep::Receive,
        d,
        "hospital-a",
        "nurse-1",
        t(121),
    );
    infuse(&mut state, "order-x", "subj-x", d, t(122));

    let expected: Vec<SubjectId> = (0..5).map(|i| subject(&format!("subj-{i}"))).collect();
    let by_unit = state.recall_by_unit(&lot).unwrap();
    assert_eq!(by_unit.units.len(), 51);
    assert_eq!(by_unit.in_circulation.len(), 45);
    assert_eq!(
        by_unit.patients.iter().cloned().collect::<Vec<_>>(),
        expected
    );
    let by_din = state.recall_by_din(&lot.din());
    assert_eq!(by_din, by_unit);

    let by_cas3 = state.recall_by_reagent_lot(&ReagentLot::parse("cas3-r7").unwrap());
    assert_eq!(
        by_cas3.patients.iter().cloned().collect::<Vec<_>>(),
        expected
    );
    assert_eq!(by_cas3.units.len(), 50);
    let by_medium = state.recall_by_reagent_lot(&ReagentLot::parse("medium-9").unwrap());
    assert_eq!(by_medium.patients.len(), 6);
    assert!(by_medium.patients.contains(&subject("subj-x")));
    assert_eq!(by_medium.units.len(), 53);
}

#[test]
fn derivation_rules_refuse_bad_shapes_and_mixed_patients() {
    let mut state = network();
    let a = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-a"),
        "c",
        t(0),
    );
    let b = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-b"),
        "c",
        t(0),
    );
    let pooled_din = allocate(&mut state, "cpc-kyoto", CPC_FIN, t(1));
    let pooled = UnitCode::new(pooled_din, product("S1234100"));
    let command = |operation, parents: Vec<UnitCode>, children: Vec<UnitCode>| Derive {
        operation,
        parents,
        children: children
            .into_iter()
            .map(|code| ChildUnit {
                code,
                expires_at: t(100),
            })
            .collect(),
        reagent_lots: vec![],
        site: site("cpc-kyoto"),
        location: loc("cpc-kyoto/isolator-1"),
        by: user("operator-1"),
        at: t(2),
    };
    let err =
        decide_derive(&state, &command(Derivation::Pool, vec![a, b], vec![pooled])).unwrap_err();
    assert!(matches!(err, CustodyError::MixesPatients { .. }), "{err}");
    assert!(err.to_string().contains("subj-a") && err.to_string().contains("subj-b"));
    let err = decide_derive(
        &state,
        &command(Derivation::Split, vec![a], vec![with_division(a, 0)]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("exactly 1 parent and at least 2 children"),
        "{err}"
    );
    let err = decide_derive(
        &state,
        &command(
            Derivation::Split,
            vec![a],
            vec![with_division(b, 0), with_division(b, 1)],
        ),
    )
    .unwrap_err();
    assert!(
        matches!(err, CustodyError::ChildDinMismatch { .. }),
        "{err}"
    );
    let err = decide_derive(
        &state,
        &command(
            Derivation::Split,
            vec![a],
            vec![with_division(a, 0), with_division(a, 0)],
        ),
    )
    .unwrap_err();
    assert!(matches!(err, CustodyError::DuplicateCode { .. }), "{err}");
    let err = decide_derive(&state, &command(Derivation::Aliquot, vec![a], vec![b])).unwrap_err();
    assert!(
        matches!(
            err,
            CustodyError::ChildDinMismatch { .. } | CustodyError::UnitExists { .. }
        ),
        "{err}"
    );
    // A new DIN for a pooled child must have been allocated.
    let unallocated = UnitCode::new(
        cellops_isbt::Din::new(fin(CPC_FIN), 26, 999).unwrap(),
        product("S1234100"),
    );
    let c = collect(
        &mut state,
        "cpc-kyoto",
        CPC_FIN,
        "S1234100",
        Some("subj-a"),
        "c",
        t(0),
    );
    let err = decide_derive(
        &state,
        &command(Derivation::Pool, vec![a, c], vec![unallocated]),
    )
    .unwrap_err();
    assert!(matches!(err, CustodyError::DinNotAllocated { .. }), "{err}");
    let events =
        decide_derive(&state, &command(Derivation::Pool, vec![a, c], vec![pooled])).unwrap();
    apply_all(&mut state, &events);
    assert_eq!(state.unit(&pooled).unwrap().parents(), &[a, c]);
    // Used-up parents cannot be used again.
    let err = decide_derive(
        &state,
        &command(Derivation::Sample, vec![a], vec![with_division(a, 3)]),
    )
    .unwrap_err();
    assert!(matches!(err, CustodyError::NotUsable { .. }), "{err}");
    // Hand-off rules.
    let bad = HandOff {
        code: pooled,
        from: user("someone-else"),
        to: user("courier-1"),
        site: site("cpc-kyoto"),
        location: loc("cpc-kyoto/dock"),
        condition: ReceiptCondition {
            acceptable: true,
            temperature_c: None,
            note: String::new(),
        },
        at: t(3),
    };
    let err = decide_hand_off(&state, &bad).unwrap_err();
    assert!(
        err.to_string().contains("in the custody of operator-1"),
        "{err}"
    );
    // Expiry and destruction.
    assert!(matches!(
        decide_expire(&state, &b, t(1)),
        Err(CustodyError::NotYetExpired { .. })
    ));
    let expired = decide_expire(&state, &b, t(48)).unwrap();
    apply_all(&mut state, &expired);
    assert_eq!(state.unit(&b).unwrap().status(), UnitStatus::Expired);
    assert!(decide_destroy(&state, &b, "  ", &user("qa-1"), t(49)).is_err());
    let destroyed = decide_destroy(&state, &b, "expired before use", &user("qa-1"), t(49)).unwrap();
    apply_all(&mut state, &destroyed);
    assert_eq!(state.unit(&b).unwrap().status(), UnitStatus::Destroyed);
}
