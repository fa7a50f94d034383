//! The order flow's refusals, each named and recorded, on one patient walked step by step
//! through the demo network: bad orders, steps that only their module may record, starting
//! material past its hold time, shipping before release, the bedside hard stops, another
//! hospital, other sites' eyes; then the trace shows the infusion.

use axum::http::StatusCode;
use cellops_demo::bank::Bank;
use cellops_demo::flow::{Patient, Product, Scenario, scan_text};
use cellops_demo::network::*;
use cellops_ledger::Backend;
use cellops_ledger::sqlite::Sqlite;
use cellops_server::provision::demo_password;
use serde_json::{Value, json};

fn count(net: &Network<Sqlite>, event_type: &str) -> usize {
    let records =
        tokio::task::block_in_place(|| net.state().ledger.read(|b| b.records(1, 100_000))).unwrap();
    records
        .iter()
        .filter(|r| r.event_type == event_type)
        .count()
}

/// Advances `p` until the step due next is `step`.
async fn walk_to(net: &mut Network<Sqlite>, bank: &mut Bank, p: &mut Patient, step: &str) {
    while p.next_step() != step {
        assert!(!p.done(), "never reached {step}");
        net.advance_to(p.due).await;
        if let Err(e) = p.advance(net, bank).await {
            panic!("{e:#}");
        }
    }
    net.advance_to(p.due).await;
}

async fn milestone(
    net: &mut Network<Sqlite>,
    user: &str,
    order: &str,
    site: &str,
    m: &str,
) -> cellops_demo::client::Reply {
    let mut body = Network::<Sqlite>::signature(user);
    body["site"] = json!(site);
    body["milestone"] = json!(m);
    net.try_post(user, &format!("/api/orders/{order}/milestones"), body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_of_the_order_flow_is_named_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let mut net = Network::<Sqlite>::open(&url, demo_epoch(), 3)
        .await
        .unwrap();
    let mut bank = Bank::default();
    let [kyoto, osaka] = HOSPITALS;
    // The courier's qualification lapses within the weeks this test runs: renewed first.
    assert!(
        cellops_demo::training::requalify_expiring(&mut net, 60)
            .await
            .unwrap()
            >= 1
    );

    // Bad orders: a dose above the product's maximum, a window already over.
    let r = net
        .post(
            "enrol",
            kyoto.physician,
            "/api/patients",
            json!({"site": kyoto.site}),
        )
        .await
        .unwrap();
    let subject = r["subject"].as_str().unwrap().to_string();
    assert!(subject.starts_with("S-"), "pseudonymous: {subject}");
    let order = |dose: f64, from_h: i64, to_h: i64, net: &Network<Sqlite>| {
        json!({"site": kyoto.site, "subject": subject, "product": "prime-car-t", "manufacturer": CPC,
               "dose_cells": dose, "dose_basis": "per_body",
               "window_earliest": net.in_hours(from_h), "window_latest": net.in_hours(to_h)})
    };
    let r = net
        .try_post(
            kyoto.physician,
            "/api/orders",
            order(5e9, 24, 24 * 90, &net),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(
        (r.code(), r.body["error"]["field"].as_str()),
        ("dose_out_of_range", Some("dose_cells"))
    );
    let r = net
        .try_post(kyoto.physician, "/api/orders", order(1e8, -48, -24, &net))
        .await
        .unwrap();
    assert_eq!(r.code(), "treatment_window", "{:?}", r.body);
    assert_eq!(count(&net, "order.refused"), 2);

    // A patient of the demo plan, walked to the CPC's receipt.
    let mut p = Patient::new(Product::BmMsc, kyoto, Scenario::default(), net.now());
    walk_to(&mut net, &mut bank, &mut p, "receive_at_cpc").await;
    let order_id = p.order.clone();
    // The steps other modules perform cannot be entered by hand; the refusal is recorded.
    for m in [
        "manufacturing_started",
        "released",
        "shipped_to_hospital",
        "dose_allocated",
    ] {
        let r = milestone(&mut net, OPERATOR, &order_id, CPC, m).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m}: {:?}",
            r.body
        );
        assert!(
            r.message().contains("cannot be entered by hand"),
            "{}",
            r.message()
        );
    }
    assert_eq!(count(&net, "order.refused"), 6);
    // Marrow held beyond 24 h: refused at receipt, recorded; the CPC rejects the material
    // and the order goes back to collection.
    net.advance_hours(30.0).await;
    let r = milestone(&mut net, OPERATOR, &order_id, CPC, "received_at_cpc").await;
    assert_eq!(r.code(), "hold_time_exceeded", "{:?}", r.body);
    let r = milestone(&mut net, OPERATOR, &order_id, CPC, "batch_failed").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["next"], "a new collection");
    p.collect_again(net.now());
    walk_to(&mut net, &mut bank, &mut p, "ship").await;

    // Nothing leaves the CPC before release: pack a unit of an unreleased batch.
    let mut q = Patient::new(Product::PrimeCarT, osaka, Scenario::default(), net.now());
    walk_to(&mut net, &mut bank, &mut q, "release").await;
    let r = net
        .try_post(
            COURIER,
            "/api/shipments",
            json!({"site": CPC, "shipment": "shp-early", "to_site": osaka.site,
                   "units": [scan_text(&q.product_unit)], "shipper": SHIPPER, "logger": LOGGER,
                   "transit_hours": 6.0}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().contains("not released"), "{}", r.message());

    // A shipment with an excursion QA has not closed: the cold chain blocks the thaw (and so
    // bedside and infusion) until QA investigates, assesses and closes its deviation.
    let mut r = Patient::new(
        Product::PrimeCarT,
        osaka,
        Scenario {
            excursion: true,
            excursion_left_open: true,
            ..Scenario::default()
        },
        net.now(),
    );
    walk_to(&mut net, &mut bank, &mut r, "infuse").await;
    let blocked = milestone(&mut net, osaka.nurses[0], &r.order, osaka.site, "thawed").await;
    assert_eq!(blocked.status, StatusCode::CONFLICT, "{:?}", blocked.body);
    assert!(
        blocked.message().contains("excursion"),
        "{}",
        blocked.message()
    );
    let excursions = net
        .get("excursions", QA, &format!("/api/excursions?site={CPC}"))
        .await
        .unwrap();
    let open: Vec<String> = excursions["excursions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains(&r.product_unit))
        .map(|e| e["excursion"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(open.len(), 1, "{excursions:#}");
    let base = format!("/api/excursions/{}", open[0]);
    net.post(
        "investigate",
        QA,
        &format!("{base}/investigate"),
        json!({"findings": "lid opened at the hub"}),
    )
    .await
    .unwrap();
    net.post(
        "assess",
        QA,
        &format!("{base}/assess"),
        json!({"decision": "accept", "justification": "brief rise, far below the reject limit"}),
    )
    .await
    .unwrap();
    net.post(
        "close",
        QA,
        &format!("{base}/close"),
        Network::<Sqlite>::signature(QA),
    )
    .await
    .unwrap();
    let thawed = milestone(&mut net, osaka.nurses[0], &r.order, osaka.site, "thawed").await;
    assert_eq!(thawed.status, StatusCode::OK, "{:?}", thawed.body);

    // The first patient's product reaches the hospital and is thawed.
    walk_to(&mut net, &mut bank, &mut p, "infuse").await;
    let path = format!("/api/orders/{order_id}");
    let r = net
        .try_post(
            kyoto.nurses[0],
            &format!("{path}/infusion"),
            json!({"site": kyoto.site, "volume_ml": 50.0, "route": "intravenous"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "infusion before thaw and bedside: {:?}",
        r.body
    );
    let r = milestone(&mut net, kyoto.nurses[0], &order_id, kyoto.site, "thawed").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let scan = scan_text(&p.product_unit);
    let bedside = |site: &str, wristband: &str, second: &str| -> Value {
        json!({"site": site, "location": format!("{site}/ward-7/bed-3"),
               "first": {"wristband": p.subject, "unit": scan},
               "second": {"user_id": second, "password": demo_password(second),
                          "wristband": wristband, "unit": scan}})
    };
    // The second nurse scans another patient's wristband: hard stop, recorded.
    let r = net
        .try_post(
            kyoto.nurses[0],
            &format!("{path}/bedside"),
            bedside(kyoto.site, "S-OTHERPATNT", kyoto.nurses[1]),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().starts_with("STOP"), "{}", r.message());
    assert!(count(&net, "bedside.mismatch") >= 1);
    // The same person twice is not a two-person check.
    let r = net
        .try_post(
            kyoto.nurses[0],
            &format!("{path}/bedside"),
            bedside(kyoto.site, &p.subject, kyoto.nurses[0]),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // The patient scanned at the wrong hospital: Osaka's nurses cannot verify Kyoto's order.
    let r = net
        .try_post(
            osaka.nurses[0],
            &format!("{path}/bedside"),
            bedside(osaka.site, &p.subject, osaka.nurses[1]),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), "wrong_hospital", "{:?}", r.body);
    assert!(
        r.message().contains("treated at hosp-kyoto"),
        "{}",
        r.message()
    );
    // Other sites do not see the order: the licensee company, the other hospital.
    let token = net.token("lic-admin").await.unwrap();
    let r = net
        .client
        .call("GET", &path, None, Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let token = net.token(osaka.nurses[0]).await.unwrap();
    let r = net
        .client
        .call("GET", &path, None, Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // The right patient: verified by two nurses, infused, followed up.
    let r = net
        .post(
            "bedside",
            kyoto.nurses[0],
            &format!("{path}/bedside"),
            bedside(kyoto.site, &p.subject, kyoto.nurses[1]),
        )
        .await
        .unwrap();
    assert_eq!(r["stage"], "verified");
    let r = net
        .post(
            "infusion",
            kyoto.nurses[0],
            &format!("{path}/infusion"),
            json!({"site": kyoto.site, "volume_ml": 50.0, "route": "hepatic artery"}),
        )
        .await
        .unwrap();
    assert_eq!(r["stage"], "infused");
    assert_eq!(r["collected_units"].as_array().unwrap().len(), 2, "{r:#}");
    // The trace of the product unit shows its custody through to the infusion.
    let r = net
        .get(
            "trace",
            kyoto.nurses[0],
            &format!("/api/units/{}/trace", p.product_unit),
        )
        .await
        .unwrap();
    let infusions: Vec<&Value> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "infusion.recorded")
        .collect();
    assert_eq!(infusions.len(), 1, "{:?}", r["timeline"]);
    assert_eq!(infusions[0]["order"], order_id.as_str());
    assert_eq!(infusions[0]["patient"], p.subject.as_str());
    net.verify_ledger().await.unwrap();
}
