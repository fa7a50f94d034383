use crate::support::*;
use crate::training::{add_training_users, approved_curriculum, take_course};
use axum::http::StatusCode;
use serde_json::json;

/// The custody-handling qualification (the basic GMP course) for `trainees`, through the
/// training API.
async fn trained_in_custody(app: &TestApp, trainees: &[&str]) {
    add_training_users(app);
    let trainer = app.login("trainer").await;
    approved_curriculum(app, &trainer).await;
    for trainee in trainees {
        take_course(
            app,
            &trainer,
            "trainer",
            trainee,
            "basic-gmp-documentation",
            false,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_is_labelled_scanned_traced_and_a_wrong_unit_is_a_hard_stop() {
    let app = TestApp::new();
    let collector = app.login("collector").await;
    let r = app
        .post("/api/dins", json!({"site": "hosp", "count": 2}), &collector)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let dins: Vec<String> = r.body["dins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(dins.len(), 2);
    assert_ne!(dins[0], dins[1], "DINs are never reused");
    assert!(dins[0].starts_with("A9991"), "{dins:?}");
    // A site without a configured facility number cannot allocate.
    let admin = app.login("admin").await;
    let r = app
        .post(
            "/api/dins",
            json!({"site": "cpc-elsewhere", "count": 1}),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let ours = format!("{}-S1234100", dins[0]);
    let other = format!("{}-S1234100", dins[1]);
    for (code, patient) in [(&ours, "subj-0001"), (&other, "subj-0002")] {
        let r = app
            .post(
                "/api/units",
                json!({"code": code, "patient": patient, "expires_at": "2025-12-31T00:00:00.000000Z",
                       "site": "hosp", "location": "apheresis-room-1"}),
                &collector,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    // A custody scan is a GMP step: refused (and recorded) until the collector is trained.
    let scan = json!({"step": "ship", "expected_unit": ours, "scanned": format!("={}00=<S1234100", dins[0]),
                      "site": "hosp", "location": "dock-1"});
    let r = app.post("/api/scans", scan.clone(), &collector).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.message().contains("custody-handling"), "{}", r.message());
    assert_eq!(app.count("qualification.refused"), 1);
    trained_in_custody(&app, &["collector", "nurse"]).await;
    // Scanning the other patient's bag where ours is expected: refused, and recorded.
    let r = app
        .post(
            "/api/scans",
            json!({"step": "ship", "expected_unit": ours, "scanned": format!("={}00=<S1234100", dins[1]),
                   "site": "hosp", "location": "dock-1"}),
            &collector,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(app.count("scan.refused"), 1);
    let message = r.message();
    assert!(
        message.contains(&dins[0][7..]) && message.contains(&dins[1][7..]),
        "names expected and scanned: {message}"
    );
    // The expected bag is accepted.
    let r = app
        .post(
            "/api/scans",
            json!({"step": "ship", "expected_unit": ours, "scanned": format!("={}00=<S1234100", dins[0]),
                   "site": "hosp", "location": "dock-1"}),
            &collector,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("scan.accepted"), 1);

    // Aliquot the bag with a reagent lot; a recall of that lot finds both aliquots.
    let children: Vec<String> = ["Aa", "Ab"]
        .iter()
        .map(|d| format!("{}-S12341{d}", dins[1]))
        .collect();
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "aliquot", "parents": [other],
                   "children": children.iter().map(|c| json!({"code": c, "expires_at": "2025-12-30T00:00:00.000000Z"})).collect::<Vec<_>>(),
                   "reagent_lots": ["dmso-2025-117"], "site": "hosp", "location": "lab-2"}),
            &collector,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let qa_admin = app.login("admin").await;
    let r = app
        .get("/api/recall?reagent_lot=dmso-2025-117", &qa_admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["units"].as_array().unwrap().len(), 2, "{:?}", r.body);
    // The nurse takes custody of the first aliquot from the collector.
    let nurse = app.login("nurse").await;
    let r = app
        .post(
            &format!("/api/units/{}/handoffs", children[0]),
            json!({"from": "collector", "site": "hosp", "location": "ward-5",
                   "condition": {"acceptable": true, "temperature_c": 4.2, "note": "seal intact"}}),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("custody.handed_off"), 1);
    // Handing off from someone who does not hold the unit is refused.
    let r = app
        .post(
            &format!("/api/units/{}/handoffs", children[0]),
            json!({"from": "collector", "site": "hosp", "location": "ward-5",
                   "condition": {"acceptable": true, "temperature_c": null, "note": ""}}),
            &nurse,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);

    // Tracing shows the unit and every recorded fact about it.
    let t = app
        .get(&format!("/api/units/{ours}/trace"), &collector)
        .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    let types: Vec<&str> = t.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"unit.created"), "{types:?}");
    assert!(
        types.contains(&"scan.accepted") && types.contains(&"scan.refused"),
        "{types:?}"
    );
    let t = app
        .get(&format!("/api/units/{other}/trace"), &collector)
        .await;
    assert_eq!(
        t.body["descendants"].as_array().unwrap().len(),
        2,
        "{:?}",
        t.body
    );
    // A recall by unit answers with the units and patients affected (none infused yet).
    let qa = app.login("qa").await;
    let r = app.get(&format!("/api/recall?unit={ours}"), &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["units"].as_array().unwrap().len(), 1);
    let r = app.get(&format!("/api/recall?unit={other}"), &qa).await;
    assert_eq!(
        r.body["units"].as_array().unwrap().len(),
        3,
        "the bag and its two aliquots"
    );
    let r = app.get("/api/recall", &qa).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .get(&format!("/api/recall?unit={ours}"), &collector)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_reconcile_only_when_every_printed_label_is_accounted_for() {
    let app = TestApp::new();
    let collector = app.login("collector").await;
    let r = app
        .post("/api/dins", json!({"site": "hosp", "count": 1}), &collector)
        .await;
    let din = r.body["dins"][0].as_str().unwrap().to_string();
    let unit = format!("{din}-S1234100");
    let r = app
        .post(
            "/api/units",
            json!({"code": unit, "patient": "subj-0009", "expires_at": "2025-12-31T00:00:00.000000Z",
                   "site": "hosp", "location": "apheresis-room-1"}),
            &collector,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let print = |copies: u32, reason: Option<&str>| {
        json!({"batch": "col-2025-0042", "unit": unit, "copies": copies,
               "description": "Apheresis T cells, autologous", "site": "hosp", "reason": reason})
    };
    let r = app
        .post("/api/labels/print", print(2, None), &collector)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body.as_str().unwrap_or("").starts_with("%PDF"),
        "a PDF comes back"
    );
    let r = app
        .post("/api/labels/print", print(1, None), &collector)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "reason");
    let r = app
        .post(
            "/api/labels/print",
            print(1, Some("label smudged")),
            &collector,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let count = |n: u32, reason: Option<&str>| json!({"batch": "col-2025-0042", "unit": unit, "count": n, "site": "hosp", "reason": reason});
    let r = app
        .post("/api/labels/apply", count(2, None), &collector)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["outstanding"], 1);
    assert_eq!(r.body["reconciled"], false);
    let r = app
        .post("/api/labels/apply", count(5, None), &collector)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than printed"
    );
    let r = app
        .post("/api/labels/destroy", count(1, None), &collector)
        .await;
    assert_eq!(r.body["error"]["field"], "reason");
    let r = app
        .post(
            "/api/labels/destroy",
            count(1, Some("smudged original")),
            &collector,
        )
        .await;
    assert_eq!(r.body["reconciled"], true, "{:?}", r.body);
    let r = app
        .get("/api/labels/reconciliation?batch=col-2025-0042", &collector)
        .await;
    assert_eq!(
        (
            r.body["printed"].as_u64(),
            r.body["applied"].as_u64(),
            r.body["destroyed"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(app.count("label.printed"), 2);
}
