//! Rules of automated culture through the HTTP API: the four-eyes verification of operator
//! steps, and the harvest that makes its unit in custody (chain of identity unbroken from
//! the starting unit to the harvested product).

use crate::batch::{PRIME_COURSES, approved_prime, trained_operator, trained_verifier, verifier};
use crate::support::{PASSWORD, TestApp};
use crate::training::take_course;
use axum::http::StatusCode;
use cellops_process::shipped::SHIPPED_RECIPES;
use serde_json::json;

const DAY_US: i64 = 86_400_000_000;

/// Every record of the test's ledger, in order.
fn records(app: &TestApp) -> Vec<cellops_ledger::Record> {
    use cellops_ledger::Backend;
    tokio::task::block_in_place(|| app.state.ledger.read(|b| b.records(1, 100_000))).unwrap()
}

/// The shipped PRIME CAR-T recipe as version 1.1.0 whose label verification is a second
/// person's check of the fill (`verifies = "formulate-fill"`).
fn prime_with_four_eyes() -> String {
    let shipped = SHIPPED_RECIPES
        .iter()
        .find(|(file, _)| *file == "prime-car-t.toml")
        .unwrap()
        .1;
    // The shipped recipe may declare it already; the test makes its own version either way.
    let shipped = shipped.replace("verifies = \"formulate-fill\"\n", "");
    let shipped = shipped.as_str();
    let verify = "id = \"verify-labels\"";
    let at = shipped.find(verify).unwrap();
    let (head, tail) = shipped.split_at(at);
    let tail = tail.replacen(
        "esignature = \"verified\"",
        "esignature = \"verified\"\nverifies = \"formulate-fill\"",
        1,
    );
    let text = format!("{head}{tail}").replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1);
    assert!(text.contains("verifies = \"formulate-fill\"") && text.contains("\"1.1.0\""));
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_person_verifies_and_the_performer_is_refused_and_recorded() {
    let app = TestApp::new();
    trained_operator(&app).await;
    let trainer = app.login("trainer").await;
    for course in PRIME_COURSES {
        take_course(&app, &trainer, "trainer", "op2", course, false).await;
    }
    let (op, qa) = approved_prime(&app).await;
    // A malformed four-eyes step is refused at registration, naming the field and the rule.
    let bad =
        prime_with_four_eyes().replace("verifies = \"formulate-fill\"", "verifies = \"freeze\"");
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "text": bad, "file": "prime-4eyes.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.message().contains("prime-4eyes.toml")
            && r.message()
                .contains(".verifies: `freeze` is not an earlier operator or sampling step"),
        "{}",
        r.message()
    );
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "text": prime_with_four_eyes(), "file": "prime-4eyes.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.1.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let op2 = app.login("op2").await;
    app.post("/api/auth/esig-policy", json!({}), &op2).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "version": "1.1.0",
                   "starting_unit": "A999026000001-S1234100", "batch": "b-4eyes",
                   "simulation": {"seed": 3, "sample_period_s": 3600}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The demo operator fills and labels, then stops: the check of its own fill is not its
    // to confirm.
    let r = app
        .post(
            "/api/batches/b-4eyes/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "awaiting_verification", "{:#}", r.body);
    assert_eq!(r.body["due_step"]["id"], "verify-labels", "{:#}", r.body);

    // The performer tries anyway: 403 naming the rule, recorded, and no signature left.
    let r = app
        .post(
            "/api/batches/b-4eyes/steps/verify-labels/start",
            json!({"lots": {}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let signatures = app.count("esig.signed");
    let r = app
        .post(
            "/api/batches/b-4eyes/steps/verify-labels/complete",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "four_eyes", "{:?}", r.body);
    assert!(
        r.message().contains("op performed step `formulate-fill`")
            && r.message().contains("rule: four-eyes"),
        "{}",
        r.message()
    );
    assert_eq!(app.count("esig.signed"), signatures);
    assert_eq!(app.count("culture.step_refused"), 1);
    let refusal = records(&app)
        .into_iter()
        .find(|r| r.event_type == "culture.step_refused")
        .unwrap();
    assert_eq!(refusal.stream, "batch/b-4eyes");
    let payload = refusal.payload_json();
    assert_eq!(payload["rule"], "four_eyes");
    assert_eq!(payload["by"], "op");
    assert_eq!(payload["step"], "verify-labels");
    assert_eq!(payload["verifies"], "formulate-fill");
    // QA sees the attempt in the review-by-exception list and the batch record.
    let r = app.get("/api/batches/b-4eyes/review", &qa).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let refused: Vec<_> = r.body["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "refused_step")
        .collect();
    assert_eq!(refused.len(), 1, "{:#}", r.body);
    assert_eq!(refused[0]["by"], "op");
    assert_eq!(refused[0]["rule"], "four_eyes");
    let html = app.get("/api/batches/b-4eyes/record.html", &qa).await;
    let html = html.body.as_str().unwrap();
    assert!(
        html.contains("step refused")
            && html.contains("op refused at verify-labels (rule four_eyes)"),
        "the batch record lists the refusal"
    );

    // The demo operator with a verifier: a wrong password signs nothing, the right one
    // completes the batch with op2's verification.
    let r = app
        .post(
            "/api/batches/b-4eyes/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op",
                   "verifier": {"user_id": "op2", "password": "not the password"}}),
            &op,
        )
        .await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("esig.signed"), signatures);
    let r = app
        .post(
            "/api/batches/b-4eyes/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op",
                   "verifier": {"user_id": "op2", "password": PASSWORD}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "completed", "{:#}", r.body);
    let auditor = app.login("auditor").await;
    let r = app
        .get(
            "/api/training/batch-check?site=cpc&stream=batch/b-4eyes",
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["all_qualified"], true, "{:#}", r.body);
    // The record names the verifier: op2 confirmed exactly one step, with the
    // cryopreservation qualification (the label verification); op did the rest.
    let steps = r.body["steps"].as_array().unwrap();
    let by_op2: Vec<_> = steps.iter().filter(|s| s["performer"] == "op2").collect();
    assert_eq!(by_op2.len(), 1, "{by_op2:?}");
    assert_eq!(by_op2[0]["event_type"], "batch.step_completed");
    assert_eq!(by_op2[0]["qualification"], "cpc-cryopreservation");
    assert!(
        steps
            .iter()
            .all(|s| s["performer"] == "op" || s["performer"] == "op2"),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_harvest_makes_the_product_unit_in_custody_from_the_in_process_unit() {
    let app = TestApp::new();
    trained_operator(&app).await;
    trained_verifier(&app).await;
    let (op, _qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post("/api/dins", json!({"site": "cpc", "count": 1}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let din = r.body["dins"][0].as_str().unwrap().to_string();
    let collected = format!("{din}-S1000100");
    let in_process = format!("{din}-S1500100");
    let expires = app.state.clock.now().plus_us(40 * DAY_US);
    let r = app
        .post(
            "/api/units",
            json!({"code": collected, "patient": "subj-0042", "expires_at": expires,
                   "site": "cpc", "location": "receipt"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let start = json!({"site": "cpc", "product": "prime-car-t", "starting_unit": collected,
                       "batch": "b-harvest", "simulation": {"seed": 3, "sample_period_s": 3600},
                       "harvest": {"product_code": "S2000100", "shelf_life_hours": 8760}});
    // Bad harvest settings are refused before anything is recorded, naming the field.
    let mut bad = start.clone();
    bad["harvest"]["product_code"] = json!("S20");
    let r = app.post("/api/batches", bad, &op).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert_eq!(
        r.body["error"]["field"], "harvest.product_code",
        "{:?}",
        r.body
    );
    let mut bad = start.clone();
    bad["harvest"]["shelf_life_hours"] = json!(0);
    let r = app.post("/api/batches", bad, &op).await;
    assert_eq!(
        r.body["error"]["field"], "harvest.shelf_life_hours",
        "{:?}",
        r.body
    );
    let mut bad = start.clone();
    bad["starting_unit"] = json!(format!("{din}-S1234100"));
    let r = app.post("/api/batches", bad, &op).await;
    assert_eq!(r.body["error"]["field"], "starting_unit", "{:?}", r.body);
    assert!(r.message().contains("is not in custody"), "{}", r.message());
    assert_eq!(app.count("culture.batch_opened"), 0);

    let r = app.post("/api/batches", start, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The culture is seeded: the starting unit becomes the in-process unit.
    let r = app
        .post(
            "/api/units/derive",
            json!({"operation": "formulate", "parents": [collected],
                   "children": [{"code": in_process, "expires_at": expires}],
                   "site": "cpc", "location": "culture-device"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-harvest/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op", "verifier": verifier()}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "completed", "{:#}", r.body);
    let product = format!("{din}-S2000100");
    assert_eq!(r.body["harvested_units"], json!([product]), "{:#}", r.body);

    // Custody holds the product, made from the in-process unit, from the collected unit:
    // one chain, for the same patient, with no manual derivation.
    let r = app.get(&format!("/api/units/{product}/trace"), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["ancestors"],
        json!([in_process, collected]),
        "{:#}",
        r.body
    );
    assert_eq!(r.body["unit"]["patient"], "subj-0042", "{:#}", r.body);
    assert_eq!(r.body["unit"]["status"], "available", "{:#}", r.body);
    assert_eq!(r.body["unit"]["location"], "culture-device", "{:#}", r.body);
    let r = app
        .get(&format!("/api/units/{in_process}/trace"), &op)
        .await;
    assert_eq!(r.body["unit"]["status"], "consumed", "{:#}", r.body);
    // The harvest record and the derivation are one append: the derivation follows the
    // harvest record in the ledger.
    let records = records(&app);
    let harvest = records
        .iter()
        .position(|r| r.event_type == "culture.units_harvested")
        .unwrap();
    let derived = records
        .iter()
        .rposition(|r| r.event_type == "unit.derived")
        .unwrap();
    assert!(
        derived > harvest,
        "derived at {derived}, harvest at {harvest}"
    );
    let payload = records[harvest].payload_json();
    assert_eq!(payload["in_process_unit"], in_process);
    assert_eq!(payload["units"], json!([product]));
}
