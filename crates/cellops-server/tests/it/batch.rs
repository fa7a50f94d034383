//! Automated culture: recipe approval, batches on simulated devices, deviations, telemetry
//! storage (SQLite and PostgreSQL) and the electronic batch record.

use crate::support::{PASSWORD, TestApp};
use crate::training::{add_training_users, approved_curriculum, take_course};
use axum::http::StatusCode;
use cellops_device::{CultureDevice, Program, ProgramRef, SimulatedDevice};
use cellops_ledger::postgres::Postgres;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::telemetry::{PutOutcome, TelemetryChunk, with_store};
use cellops_ledger::{Backend, Ledger, LedgerConfig};
use cellops_process::recipe::model::DeviceOperation;
use cellops_server::event_catalog;
use cellops_server::routes::batch::{BatchModel, store_samples};
use serde_json::json;
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The courses that grant every qualification the PRIME CAR-T recipe's steps declare
/// (receipt, in-process sampling, device operation, viral vector, cryopreservation).
pub(crate) const PRIME_COURSES: &[&str] = &[
    "basic-gmp-documentation",
    "basic-cell-culture-qc",
    "adv-automated-culture-device",
    "adv-viral-vector",
    "adv-cryopreservation-transport",
];

/// Adds the trainers and `op2` (operator at cpc, untrained), has QA approve the
/// clinical-culturist curriculum, and trains `op` for every PRIME CAR-T step, all through
/// the training API: enrolment, attendance, signed assessments, certificates.
pub(crate) async fn trained_operator(app: &TestApp) {
    add_training_users(app);
    let trainer = app.login("trainer").await;
    approved_curriculum(app, &trainer).await;
    for course in PRIME_COURSES {
        take_course(app, &trainer, "trainer", "op", course, false).await;
    }
}

/// Trains `op2` for every PRIME CAR-T step and has them acknowledge the e-signature policy:
/// the second person of the recipe's four-eyes label verification.
pub(crate) async fn trained_verifier(app: &TestApp) {
    let trainer = app.login("trainer").await;
    for course in PRIME_COURSES {
        take_course(app, &trainer, "trainer", "op2", course, false).await;
    }
    let op2 = app.login("op2").await;
    app.post("/api/auth/esig-policy", json!({}), &op2).await;
}

/// The `verifier` of a simulate body: `op2` with their password.
pub(crate) fn verifier() -> serde_json::Value {
    json!({"user_id": "op2", "password": PASSWORD})
}

pub(crate) async fn approved_prime(app: &TestApp) -> (String, String) {
    let op = app.login("op").await;
    let qa = app.login("qa").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "shipped": "prime-car-t.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (op, qa)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_starts_only_from_a_recipe_qa_approved() {
    let app = TestApp::new();
    let op = app.login("op").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "shipped": "prime-car-t.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let start = json!({"site": "cpc", "product": "prime-car-t", "version": "1.0.0", "starting_unit": "A999026000001-S1234100"});
    let r = app.post("/api/batches", start.clone(), &op).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.message().contains("not approved"), "{}", r.message());
    // An operator may not approve.
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // A malformed recipe is refused naming the line.
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc", "text": "format_version = 1\nproduct = 3\n", "file": "bad.toml"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().contains("bad.toml"), "{}", r.message());
    // QA approves that exact version with an e-signature.
    let qa = app.login("qa").await;
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": "wrong password", "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_ne!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/recipes/prime-car-t/1.0.0/approve",
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["recipe"]["approval"]["signer"], "qa");
    let r = app.post("/api/batches", start, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "Running");
    assert_eq!(r.body["due_step"]["id"], "receive-apheresis");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_prime_batch_runs_to_harvest_with_record_and_review() {
    let app = TestApp::new();
    trained_operator(&app).await;
    trained_verifier(&app).await;
    let (op, qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000001-S1234100", "batch": "b-1", "simulation": {"seed": 3, "sample_period_s": 900}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-1/simulate",
            json!({"to_completion": true, "password": PASSWORD, "user_id": "op", "verifier": verifier()}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "completed", "{:#}", r.body);
    assert_eq!(r.body["status"], "Completed");
    let units = r.body["harvested_units"].as_array().unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0], "A999026000001-S1234100-D01");
    assert!(
        r.body["predicted_harvest_at"].is_string(),
        "{:#}",
        r.body["prediction"]
    );
    // The auditor asks "was every step of batch b-1 done by a qualified person" and the
    // record answers: each operator and sampling step names its performer and the
    // qualification checked at the time, and the training record confirms it.
    let auditor = app.login("auditor").await;
    let r = app
        .get(
            "/api/training/batch-check?site=cpc&stream=batch/b-1",
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["all_qualified"], true, "{:#}", r.body);
    let steps = r.body["steps"].as_array().unwrap();
    // op did every step but the second-person label verification, which op2 confirmed.
    let by_op2: Vec<_> = steps.iter().filter(|s| s["performer"] == "op2").collect();
    assert_eq!(by_op2.len(), 1, "{steps:?}");
    assert!(
        steps
            .iter()
            .all(|s| s["performer"] == "op" || s["performer"] == "op2"),
        "{steps:?}"
    );
    let checked: std::collections::BTreeSet<String> = steps
        .iter()
        .map(|s| s["qualification"].as_str().unwrap().to_string())
        .collect();
    let recipe = cellops_process::shipped::shipped_recipes()
        .unwrap()
        .into_iter()
        .find(|r| r.product() == "prime-car-t")
        .unwrap();
    let declared: std::collections::BTreeSet<String> = recipe
        .phases()
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| s.kind.qualification().map(str::to_string))
        .collect();
    assert_eq!(checked, declared);
    assert_eq!(app.count("qualification.refused"), 0);
    // Every phase ended with a telemetry summary; operator steps were e-signed.
    assert_eq!(app.count("culture.phase_telemetry_summarized"), 5);
    assert!(app.count("esig.signed") >= 3);
    // The batch record, and its review by exception signed by QA.
    let html = app.get("/api/batches/b-1/record.html", &qa).await;
    let text = html.body.as_str().unwrap().to_string();
    assert!(text.contains("Electronic batch record b-1"));
    assert!(text.contains("lot SIM-tubing-set"));
    assert!(text.contains("<svg"));
    let pdf = app.get("/api/batches/b-1/record.pdf", &qa).await;
    assert!(pdf.body.as_str().unwrap().starts_with("%PDF-1.4"));
    let review = app.get("/api/batches/b-1/review", &qa).await;
    assert!(review.body["exceptions"].is_array());
    let r = app
        .post(
            "/api/batches/b-1/review",
            json!({"password": PASSWORD}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let status = app.get("/api/batches/b-1", &qa).await;
    assert_eq!(status.body["review_signed"], "Reviewed");
    // Telemetry is readable and decodes.
    let t = app
        .get(
            "/api/batches/b-1/telemetry?signal=temperature_c&limit=10",
            &qa,
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    assert_eq!(t.body["samples"].as_array().unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_limit_result_holds_the_batch_until_qa_closes_the_deviation() {
    let app = TestApp::new();
    trained_operator(&app).await;
    let (op, qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000002-S1234100", "batch": "b-2", "device": "prodigy-7"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The recipe asks for an e-signature: without a password the step is not confirmed.
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/complete",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/receive-apheresis/complete",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/batches/b-2/steps/receipt-count/start", json!({}), &op)
        .await;
    let r = app
        .post(
            "/api/batches/b-2/steps/receipt-count/results",
            json!({"results": {"viability_percent": 55.0, "cd3_total_viable_cells": 2.0e9}}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let status = app.get("/api/batches/b-2", &op).await;
    let dev = status.body["on_hold_by"][0].as_str().unwrap().to_string();
    assert_eq!(status.body["open_deviations"][0], dev.as_str());
    let blocked = app
        .state
        .read_model(|m: &mut BatchModel| m.open_deviations("b-2").unwrap());
    assert_eq!(blocked.len(), 1);
    // On hold: the next step is refused.
    let r = app.post("/api/batches/b-2/steps/install-kit/start", json!({"lots": {"tubing-set": "T1", "cd4-cd8-microbeads": "M1", "culture-medium": "C1"}}), &op).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // Workflow: investigation → CAPA → QA closes with e-signature; an operator cannot close.
    let base = format!("/api/batches/b-2/deviations/{dev}");
    assert_eq!(
        app.post(&format!("{base}/investigate"), json!({}), &op)
            .await
            .status,
        StatusCode::OK
    );
    let r = app.post(&format!("{base}/capa"), json!({"root_cause": "sample taken from the line, not the bag", "capa": "retrain on receipt sampling"}), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(&format!("{base}/close"), json!({"password": PASSWORD}), &op)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.post("/api/auth/esig-policy", json!({}), &qa).await;
    let r = app
        .post(
            &format!("{base}/close"),
            json!({"password": PASSWORD, "user_id": "qa"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let blocked = app
        .state
        .read_model(|m: &mut BatchModel| m.open_deviations("b-2").unwrap());
    assert!(blocked.is_empty());
    let r = app.post("/api/batches/b-2/steps/install-kit/start", json!({"lots": {"tubing-set": "T1", "cd4-cd8-microbeads": "M1", "culture-medium": "C1"}}), &op).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Review list names the out-of-limit value and the deviation.
    let review = app.get("/api/batches/b-2/review", &qa).await;
    let kinds: Vec<&str> = review.body["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"deviation") && kinds.contains(&"out_of_limit"),
        "{kinds:?}"
    );
    // Abort: nothing runs after it.
    let r = app
        .post(
            "/api/batches/b-2/abort",
            json!({"reason": "donor consent withdrawn"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-2/steps/install-kit/complete",
            json!({"password": PASSWORD}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_power_loss_opens_a_deviation_and_stops_the_demo_operator() {
    let app = TestApp::new();
    trained_operator(&app).await;
    let (op, _qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    app.post(
        "/api/batches",
        json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000003-S1234100", "batch": "b-3", "simulation": {"seed": 5, "sample_period_s": 600}}),
        &op,
    )
    .await;
    let r = app
        .post(
            "/api/batches/b-3/simulate",
            json!({"hours": 30, "password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.body["stopped"], "time_reached", "{:#}", r.body);
    let r = app
        .post(
            "/api/batches/b-3/faults",
            json!({"fault": "power_loss", "duration_h": 2}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post("/api/batches/b-3/faults", json!({"fault": "meteor"}), &op)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/batches/b-3/simulate",
            json!({"hours": 10, "password": PASSWORD}),
            &op,
        )
        .await;
    assert_eq!(r.body["stopped"], "device_faulted", "{:#}", r.body);
    let devs = r.body["deviations"].as_array().unwrap();
    assert!(
        devs.iter().any(|d| d["source"]["description"]
            .as_str()
            .is_some_and(|t| t.contains("power_loss"))),
        "{devs:?}"
    );
}

/// Telemetry store behaviour, the same on both backends.
fn telemetry_story<B: Backend>(url: &str) {
    let clock = Arc::new(cellops_domain::SimClock::new(
        cellops_domain::Timestamp::from_unix_us(1_764_000_000_000_000).unwrap(),
    ));
    let ledger = Ledger::<B>::open(url, clock, LedgerConfig::new(event_catalog())).unwrap();
    let origin = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut device =
        SimulatedDevice::new("dev-a", cellops_twin::Product::PrimeCarT, 9, origin, 1).unwrap();
    device
        .start_program(&Program {
            reference: ProgramRef {
                batch: "b".into(),
                step: "expansion".into(),
            },
            operation: DeviceOperation::Expansion,
            set_points: BTreeMap::new(),
            duration_hours: 5.0,
        })
        .unwrap();
    device
        .advance_to(origin + time::Duration::minutes(20))
        .unwrap();
    let samples = device.read_samples(0, 100_000).unwrap();
    let stored = store_samples(&ledger, "dev-a", "b", &samples).unwrap();
    assert_eq!(stored, samples.len() as u64);
    // A resend after a reconnect (overlapping the stored samples) stores nothing twice.
    assert_eq!(store_samples(&ledger, "dev-a", "b", &samples).unwrap(), 0);
    device
        .advance_to(origin + time::Duration::minutes(25))
        .unwrap();
    let more = device
        .read_samples(samples.len() as u64 - 50, 100_000)
        .unwrap();
    let new = store_samples(&ledger, "dev-a", "b", &more).unwrap();
    assert_eq!(new, more.len() as u64 - 50);
    let totals = ledger.read(|b| with_store(b, |s| s.totals())).unwrap();
    assert_eq!(totals.samples, (samples.len() + more.len() - 50) as u64);
    let per_sample = totals.bytes as f64 / totals.samples as f64;
    assert!(per_sample <= 16.0, "{per_sample} bytes per sample");
    // The identical chunk is a duplicate; different content over stored numbers is refused.
    let chunks = ledger
        .read(|b| with_store(b, |s| s.chunks("dev-a", 1, 10)))
        .unwrap();
    let first = chunks[0].clone();
    assert_eq!(
        ledger
            .read(|b| with_store(b, |s| s.put_chunk(&first)))
            .unwrap(),
        PutOutcome::Duplicate
    );
    let mut forged: TelemetryChunk = first.clone();
    forged.data[5] ^= 1;
    forged.sha256 = sha2::Sha256::digest(&forged.data).into();
    let err = ledger
        .read(|b| with_store(b, |s| s.put_chunk(&forged)))
        .unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    let mut bad_hash = first;
    bad_hash.first_seq = 1_000_000;
    bad_hash.last_seq = 1_000_001;
    bad_hash.sha256 = [0; 32];
    let err = ledger
        .read(|b| with_store(b, |s| s.put_chunk(&bad_hash)))
        .unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
}

#[test]
fn telemetry_is_stored_compactly_and_idempotently_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    telemetry_story::<Sqlite>(&format!("sqlite://{}", dir.path().join("t.db").display()));
}

#[test]
fn telemetry_is_stored_compactly_and_idempotently_on_postgres() {
    let admin = std::env::var("CELLOPS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("cellops_batch_{}", std::process::id());
    let mut client =
        postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL at 127.0.0.1:5432");
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    telemetry_story::<Postgres>(&format!("{base}/{name}"));
    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

/// The refusals recorded at site cpc, oldest first (as the auditor reads them).
async fn refusals(app: &TestApp) -> Vec<serde_json::Value> {
    let auditor = app.login("auditor").await;
    let r = app.get("/api/training/refusals?site=cpc", &auditor).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["refusal"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unqualified_operator_is_refused_at_every_step_and_each_refusal_is_recorded() {
    let app = TestApp::new();
    trained_operator(&app).await;
    let trainer = app.login("trainer").await;
    take_course(
        &app,
        &trainer,
        "trainer",
        "op2",
        "basic-gmp-documentation",
        false,
    )
    .await;
    let (op, _qa) = approved_prime(&app).await;
    let op2 = app.login("op2").await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    app.post("/api/auth/esig-policy", json!({}), &op2).await;
    // Opening a batch declares no qualification; its steps do.
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc", "product": "prime-car-t", "starting_unit": "A999026000004-S1234100", "batch": "b-q", "device": "prodigy-9"}),
            &op2,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-q/steps/receive-apheresis/start",
            json!({}),
            &op2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "not_qualified");
    assert!(
        r.message()
            .contains("op2 does not hold qualification cpc-receipt"),
        "{}",
        r.message()
    );
    let recorded = refusals(&app).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["user"], "op2");
    assert_eq!(recorded[0]["action"], "qualification:cpc-receipt");
    assert_eq!(recorded[0]["qualification"], "cpc-receipt");
    assert_eq!(recorded[0]["reason"], "never_granted");
    assert_eq!(recorded[0]["context"], "batch/b-q step receive-apheresis");
    let status = app.get("/api/batches/b-q", &op).await;
    assert_eq!(status.body["active_step"], serde_json::Value::Null);
    assert_eq!(app.count("batch.step_started"), 0);
    // The qualified operator starts it; the unqualified one cannot confirm it, and the
    // refused confirmation leaves no e-signature behind.
    let r = app
        .post(
            "/api/batches/b-q/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let signed = app.count("esig.signed");
    let r = app
        .post(
            "/api/batches/b-q/steps/receive-apheresis/complete",
            json!({"password": PASSWORD, "user_id": "op2"}),
            &op2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(app.count("esig.signed"), signed);
    let r = app
        .post(
            "/api/batches/b-q/steps/receive-apheresis/complete",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.count("esig.signed"), signed + 1);
    // Sampling: neither the start nor the results are taken from someone unqualified.
    let r = app
        .post(
            "/api/batches/b-q/steps/receipt-count/start",
            json!({}),
            &op2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.message().contains("cpc-ipc-sampling"), "{}", r.message());
    let r = app
        .post("/api/batches/b-q/steps/receipt-count/start", json!({}), &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let results = json!({"results": {"viability_percent": 95.0, "cd3_total_viable_cells": 2.0e9}});
    let r = app
        .post(
            "/api/batches/b-q/steps/receipt-count/results",
            results.clone(),
            &op2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .post("/api/batches/b-q/steps/receipt-count/results", results, &op)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let recorded = refusals(&app).await;
    let contexts: Vec<&str> = recorded
        .iter()
        .map(|r| r["context"].as_str().unwrap())
        .collect();
    assert_eq!(
        contexts,
        [
            "batch/b-q step receive-apheresis",
            "batch/b-q step receive-apheresis",
            "batch/b-q step receipt-count",
            "batch/b-q step receipt-count",
        ]
    );
    assert!(recorded.iter().all(|r| r["user"] == "op2"));
    // Refused attempts never became steps: every step on record was done by op, qualified.
    let auditor = app.login("auditor").await;
    let r = app
        .get(
            "/api/training/batch-check?site=cpc&stream=batch/b-q",
            &auditor,
        )
        .await;
    assert_eq!(r.body["all_qualified"], true, "{:#}", r.body);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{steps:#?}");
    assert!(steps.iter().all(|s| s["performer"] == "op"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_or_expired_qualification_is_refused_at_the_time_of_the_action() {
    let app = TestApp::new();
    trained_operator(&app).await;
    let (op, _qa) = approved_prime(&app).await;
    app.post("/api/auth/esig-policy", json!({}), &op).await;
    for batch in ["b-s", "b-e"] {
        let r = app
            .post(
                "/api/batches",
                json!({"site": "cpc", "product": "prime-car-t", "starting_unit": format!("A999026000005-{batch}"), "batch": batch, "device": format!("prodigy-{batch}")}),
                &op,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    // b-e: receipt done now, while op holds every qualification.
    let r = app
        .post(
            "/api/batches/b-e/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-e/steps/receive-apheresis/complete",
            json!({"password": PASSWORD, "user_id": "op"}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Suspended: refused, naming the suspension; reinstated: allowed again.
    let trainer = app.login("trainer").await;
    let qualification = json!({"site": "cpc", "user": "op", "qualification": "cpc-receipt", "reason": "observed breach of gowning procedure"});
    let r = app
        .post("/api/training/suspensions", qualification.clone(), &trainer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-s/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        r.message()
            .contains("op's qualification cpc-receipt is suspended since"),
        "{}",
        r.message()
    );
    let recorded = refusals(&app).await;
    assert_eq!(recorded.last().unwrap()["reason"], "suspended");
    let r = app
        .post("/api/training/reinstatements", qualification, &trainer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches/b-s/steps/receive-apheresis/start",
            json!({}),
            &op,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // A year and a day later, in-process sampling (valid 365 days) has expired; receipt
    // (valid 730 days) has not.
    app.advance_hours(366 * 24);
    let op = app.login("op").await;
    let r = app
        .post("/api/batches/b-e/steps/receipt-count/start", json!({}), &op)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        r.message()
            .contains("op's qualification cpc-ipc-sampling expired on"),
        "{}",
        r.message()
    );
    let recorded = refusals(&app).await;
    let last = recorded.last().unwrap();
    assert_eq!(last["reason"], "expired");
    assert!(last["expired_at"].is_string(), "{last}");
    assert_eq!(last["context"], "batch/b-e step receipt-count");
    // The auditor's answer is about the time of each step: b-e's receipt was done while op
    // was qualified, so it stays qualified although the training record changed since.
    let auditor = app.login("auditor").await;
    let r = app
        .get(
            "/api/training/batch-check?site=cpc&stream=batch/b-e",
            &auditor,
        )
        .await;
    assert_eq!(r.body["all_qualified"], true, "{:#}", r.body);
    assert_eq!(r.body["steps"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_operators_training_decides_who_may_run_the_msc_batch() {
    let app = TestApp::demo();
    let tanaka = app.demo_login("op-tanaka").await;
    let suzuki = app.demo_login("op-suzuki").await;
    let qa = app.demo_login("qa-ito").await;
    let r = app
        .post(
            "/api/recipes",
            json!({"site": "cpc-kyoto", "shipped": "bm-msc.toml"}),
            &tanaka,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/recipes/bm-msc/1.0.0/approve",
            json!({"password": cellops_server::provision::demo_password("qa-ito"), "user_id": "qa-ito"}),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/api/batches",
            json!({"site": "cpc-kyoto", "product": "bm-msc", "starting_unit": "A999026000006-S1234100", "batch": "msc-1", "simulation": {"seed": 2, "sample_period_s": 1800}}),
            &suzuki,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // op-suzuki failed the aseptic media fill: receipt and counting go, plating is refused.
    let app = &app;
    let simulate = |token: &str, user: &str| {
        let body = json!({"hours": 24, "password": cellops_server::provision::demo_password(user), "user_id": user});
        let token = token.to_string();
        async move { app.post("/api/batches/msc-1/simulate", body, &token).await }
    };
    let r = simulate(&suzuki, "op-suzuki").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        r.message()
            .contains("op-suzuki does not hold qualification cpc-aseptic-processing"),
        "{}",
        r.message()
    );
    let status = app.get("/api/batches/msc-1", &tanaka).await;
    assert_eq!(
        status.body["due_step"]["id"], "plate-marrow",
        "{:#}",
        status.body
    );
    // op-tanaka holds it and goes on.
    let r = simulate(&tanaka, "op-tanaka").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stopped"], "time_reached", "{:#}", r.body);
    let auditor = app.demo_login("auditor-ueda").await;
    let r = app
        .get(
            "/api/training/batch-check?site=cpc-kyoto&stream=batch/msc-1",
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["all_qualified"], true, "{:#}", r.body);
    let by = |user: &str| {
        r.body["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["performer"] == user)
            .map(|s| s["qualification"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        by("op-suzuki"),
        ["cpc-ipc-sampling", "cpc-receipt"].map(String::from).into()
    );
    assert!(by("op-tanaka").contains("cpc-aseptic-processing"));
}
