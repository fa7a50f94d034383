//! Booking and scheduling over HTTP on the demo network (sites `cpc` and `hosp`; the
//! simulated clock starts on Monday 2025-11-24): bookings reserve capacity by ledger
//! records, infeasible requests get 409 with the binding constraint and alternatives, the
//! read model is rebuilt from the ledger, and replanning records what moved.

use crate::support::*;
use axum::http::StatusCode;
use cellops_ledger::Backend;
use cellops_server::ServerConfig;
use cellops_server::projection::Projection;
use cellops_server::routes::schedule::ScheduleModel;
use serde_json::{Value, json};

fn request(date: &str, order: Option<&str>) -> Value {
    let mut v = json!({"product": "prime-car-t", "hospital": "hosp", "collection_date": date});
    if let Some(o) = order {
        v["order"] = json!(o);
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feasible_booking_reserves_capacity_once() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    let r = app
        .post("/api/bookings", request("2025-11-25", Some("o1")), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body["booking"];
    assert_eq!(b["id"], "bk-o1");
    assert_eq!(b["collection"], "2025-11-25");
    let stages: Vec<&str> = b["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["collection", "culture", "qc", "ship"]);
    assert_eq!(app.count("schedule.booked"), 1);
    // The answer states the risk: the chance the dates hold, and what a repeat would give.
    let risk = &r.body["risk"];
    let on_time = risk["p_on_time"].as_f64().unwrap();
    let first_time_right = risk["p_first_time_right"].as_f64().unwrap();
    assert!(0.5 < on_time && on_time < first_time_right && first_time_right < 1.0);
    assert_eq!(risk["if_failed"]["known"], b["stages"][1]["end"]);
    assert_eq!(risk["if_oos"]["known"], b["stages"][2]["end"]);
    assert_eq!(risk["if_oos"]["within_window"], true);
    assert!(risk["if_oos"]["delay_days"].as_i64().unwrap() >= 7);
    // A retry for the same order finds the booking instead of booking twice.
    let again = app
        .post("/api/bookings", request("2025-11-25", Some("o1")), &nurse)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["booking"], *b);
    assert_eq!(app.count("schedule.booked"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_slot_is_refused_with_the_binding_constraint_and_alternatives() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    let first = app
        .post("/api/bookings", request("2025-11-26", Some("o1")), &nurse)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let r = app
        .post("/api/bookings", request("2025-11-26", Some("o2")), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["feasible"], false);
    assert_eq!(r.body["binding"]["constraint"], "capacity");
    assert_eq!(r.body["binding"]["resource"], "hosp/collection_chair");
    assert_eq!(
        r.message(),
        "no collection_chair capacity at hosp on 2025-11-26 for stage collection"
    );
    let alternatives = r.body["alternatives"].as_array().unwrap();
    assert!(!alternatives.is_empty());
    assert!(
        alternatives
            .iter()
            .all(|a| a["risk"]["p_on_time"].as_f64().is_some()),
        "{alternatives:?}"
    );
    assert_eq!(app.count("schedule.booked"), 1, "nothing reserved");
    // The first alternative can be booked as offered.
    let alt = alternatives[0]["collection"].as_str().unwrap();
    assert_ne!(alt, "2025-11-26");
    let ok = app
        .post("/api/bookings", request(alt, Some("o2")), &nurse)
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    assert_eq!(ok.body["booking"]["infusion"], alternatives[0]["infusion"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_days_bad_input_and_foreign_sites_are_refused() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    // Saturday: no apheresis.
    let r = app
        .post("/api/bookings", request("2025-11-29", None), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.message(),
        "no collection_chair at hosp on 2025-11-29 (closed that day)"
    );
    let mut bad = request("2025-11-25", None);
    bad["product"] = json!("car-t");
    let r = app.post("/api/bookings", bad, &nurse).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "product");
    let r = app
        .post("/api/bookings", request("2025-11-20", None), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().contains("in the past"), "{}", r.message());
    // An operator at the CPC may not book for the hospital.
    let op = app.login("op").await;
    let r = app
        .post("/api/bookings", request("2025-11-25", None), &op)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A check reserves nothing.
    let r = app
        .post("/api/bookings/check", request("2025-11-25", None), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["feasible"], true,
        "a JSON boolean, as POST /api/bookings says"
    );
    assert_eq!(app.count("schedule.booked"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bookings_are_listed_per_site_and_cancelled_with_a_reason() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    let op = app.login("op").await;
    for (d, o) in [("2025-11-25", "a"), ("2025-11-27", "b")] {
        let r = app.post("/api/bookings", request(d, Some(o)), &nurse).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = app.get("/api/bookings?site=hosp", &nurse).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["bookings"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get("/api/bookings?site=hosp", &op).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.get("/api/bookings?site=cpc", &op).await;
    assert_eq!(
        r.body["bookings"].as_array().unwrap().len(),
        2,
        "the CPC sees all"
    );
    let r = app
        .post("/api/bookings/bk-a/cancel", json!({"reason": " "}), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/bookings/bk-a/cancel",
            json!({"reason": "patient withdrew"}),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        app.get("/api/bookings?site=hosp", &nurse).await.body["bookings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The freed chair can be booked again.
    let r = app
        .post("/api/bookings", request("2025-11-25", Some("c")), &nurse)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .post(
            "/api/bookings/bk-zzz/cancel",
            json!({"reason": "x"}),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn gantt_and_replan_and_a_rebuilt_read_model_agree() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    let op = app.login("op").await;
    for (d, o) in [
        ("2025-11-25", "a"),
        ("2025-11-26", "b"),
        ("2025-11-27", "c"),
    ] {
        let r = app.post("/api/bookings", request(d, Some(o)), &nurse).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    assert_eq!(
        app.get("/api/schedule/gantt", &nurse).await.status,
        StatusCode::FORBIDDEN
    );
    let g = app.get("/api/schedule/gantt", &op).await;
    assert_eq!(g.status, StatusCode::OK);
    let devices = g.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "cpc/culture_device")
        .unwrap()
        .clone();
    assert_eq!(devices["bars"].as_array().unwrap().len(), 3);

    let before = app.get("/api/bookings?site=hosp", &nurse).await.body["bookings"].clone();
    let infusion_b = before
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "bk-b")
        .unwrap()["infusion"]
        .clone();
    // The courier of booking b will be two days late.
    let r = app
        .post(
            "/api/schedule/replan",
            json!({"kind": "courier_late", "booking": "bk-b", "days": 2, "reason": "road closed"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["changes"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body
    );
    assert_eq!(r.body["changes"][0]["order"], "bk-b");
    assert_eq!(r.body["changes"][0]["reason"], "courier late by 2 d");
    assert_eq!(r.body["changes"][0]["infusion_shift_days"], 2);
    assert_eq!(app.count("schedule.replanned"), 1);
    let after = app.get("/api/bookings?site=hosp", &nurse).await.body["bookings"].clone();
    let infusion_after = after
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "bk-b")
        .unwrap()["infusion"]
        .clone();
    assert_ne!(infusion_after, infusion_b);
    // Bad disruptions name the field.
    let r = app
        .post(
            "/api/schedule/replan",
            json!({"kind": "flood", "reason": "x"}),
            &op,
        )
        .await;
    assert_eq!(r.body["error"]["field"], "kind");
    let r = app
        .post("/api/schedule/replan", json!({"kind": "breakdown", "resource": "cpc/x", "from": "2025-12-01", "to": "2025-12-02", "reason": "x"}), &op)
        .await;
    assert_eq!(r.body["error"]["field"], "resource");
    assert_eq!(
        app.post(
            "/api/schedule/replan",
            json!({"kind": "oos", "booking": "bk-a", "date": "2025-12-20", "reason": "x"}),
            &nurse
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // The read model is a function of the ledger: replaying the records gives the same Gantt.
    let mut rebuilt = ScheduleModel::demo(&ServerConfig {
        facilities: vec![
            (
                cellops_domain::SiteId::parse("cpc").unwrap(),
                cellops_isbt::Fin::parse("A9990").unwrap(),
            ),
            (
                cellops_domain::SiteId::parse("hosp").unwrap(),
                cellops_isbt::Fin::parse("A9991").unwrap(),
            ),
        ],
        ..ServerConfig::default()
    });
    let records = app.state.ledger.read(|b| b.records(1, 10_000)).unwrap();
    for r in &records {
        rebuilt.apply(r);
    }
    let g2 = app.get("/api/schedule/gantt", &op).await;
    assert_eq!(
        serde_json::to_value(rebuilt.planner().gantt()).unwrap(),
        g2.body["resources"]
    );
}

/// The staffing needs of one booking's stage, by action.
fn needs_of<'a>(report: &'a Value, booking: &str, stage: &str) -> Vec<&'a Value> {
    report["report"]["needs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["booking"] == booking && n["stage"] == stage)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_staffing_check_finds_a_qualified_operator_for_each_planned_stage_or_lists_the_gap() {
    let app = TestApp::new();
    let nurse = app.login("nurse").await;
    // o1 now; o2 a year on, when op's one-year qualifications will have run out mid-culture.
    for (date, order) in [("2025-11-25", "o1"), ("2026-11-16", "o2")] {
        let r = app
            .post("/api/bookings", request(date, Some(order)), &nurse)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let admin = app.login("admin").await;
    let check = |from: &str, to: &str| {
        let path = format!("/api/schedule/staffing?from={from}&to={to}");
        let admin = admin.clone();
        let app = &app;
        async move { app.get(&path, &admin).await }
    };
    // Nobody is trained yet: every need of o1 is a gap.
    let r = check("2025-11-24", "2025-12-31").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["report"]["all_staffed"], false);
    let culture = needs_of(&r.body, "bk-o1", "culture");
    let actions: Vec<&str> = culture
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    // The recipe's declared step qualifications (the shipped recipe: none is approved yet).
    assert_eq!(
        actions,
        [
            "qualification:cpc-cryopreservation",
            "qualification:cpc-device-operation",
            "qualification:cpc-ipc-sampling",
            "qualification:cpc-receipt",
            "qualification:cpc-viral-vector-handling",
        ]
    );
    assert!(
        culture
            .iter()
            .all(|n| n["staffed"] == false && n["site"] == "cpc")
    );
    assert!(
        needs_of(&r.body, "bk-o2", "culture").is_empty(),
        "outside the period"
    );
    // op is trained through the training API: o1's culture is staffed.
    crate::batch::trained_operator(&app).await;
    let r = check("2025-11-24", "2025-12-31").await;
    for need in needs_of(&r.body, "bk-o1", "culture") {
        assert_eq!(need["staffed"], true, "{need}");
        assert_eq!(need["qualified_people"], json!(["op"]));
    }
    // QC needs a QC analyst at the CPC and collection a trained collector at the hospital:
    // still gaps, each naming the qualification it lacks.
    let qc = needs_of(&r.body, "bk-o1", "qc");
    let lacking: Vec<(&str, &str)> = qc
        .iter()
        .map(|n| {
            (
                n["action"].as_str().unwrap(),
                n["qualification"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lacking,
        [
            ("qc.result.flow-viability", "qc-analytical"),
            ("qc.result.sterility", "qc-microbiology")
        ]
    );
    assert!(qc.iter().all(|n| n["staffed"] == false));
    let collection = needs_of(&r.body, "bk-o1", "collection");
    assert_eq!(collection[0]["site"], "hosp");
    assert_eq!(collection[0]["qualification"], "hosp-apheresis-collection");
    assert_eq!(collection[0]["staffed"], false);
    assert!(r.body["report"]["gaps"].as_u64().unwrap() >= 3);
    // A year on: op's in-process sampling (valid 365 days) expires during o2's culture, so
    // that need is a gap with the reason; receipt (valid 730 days) is still covered.
    let r = check("2026-11-10", "2026-12-20").await;
    let culture = needs_of(&r.body, "bk-o2", "culture");
    let need = |action: &str| {
        *culture
            .iter()
            .find(|n| n["action"] == action)
            .unwrap_or_else(|| panic!("{action}: {culture:?}"))
    };
    let sampling = need("qualification:cpc-ipc-sampling");
    assert_eq!(sampling["staffed"], false, "{sampling}");
    assert_eq!(sampling["not_qualified"][0][0], "op");
    assert!(
        sampling["not_qualified"][0][1]
            .as_str()
            .unwrap()
            .contains("op's qualification cpc-ipc-sampling expired on 2026-11-2"),
        "{sampling}"
    );
    assert_eq!(need("qualification:cpc-receipt")["staffed"], true);
    // Bad periods are refused naming the field.
    let r = check("2026-12-20", "2026-11-10").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "to");
    let r = check("someday", "2026-11-10").await;
    assert_eq!(r.body["error"]["field"], "from");
}
